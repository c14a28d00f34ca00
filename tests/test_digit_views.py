"""Figures inside the digits: first-layer weights and the digits two networks classify differently."""

import numpy as np

import explorer.views.digits


def test_first_layer_shows_up_to_64_units_each_on_its_own_centred_scale():
    kernel = np.random.default_rng(0).normal(size=(784, 100)).astype(np.float32)
    figure = explorer.views.digits.plot_first_layer(kernel, "wide")
    images = [ax.images[0] for ax in figure.axes if ax.images]
    assert len(images) == 64 and figure.get_suptitle() == "wide (the first 64 of 100 units)"
    assert images[5].get_array().shape == (28, 28)
    low, high = images[5].get_clim()
    assert low == -high == -np.abs(kernel[:, 5]).max()
    np.testing.assert_array_equal(images[5].get_array(), kernel[:, 5].reshape(28, 28))


def test_a_layer_of_ten_units_is_shown_as_class_templates():
    figure = explorer.views.digits.plot_first_layer(np.ones((784, 10), np.float32), "softmax regression")
    titles = [ax.get_title() for ax in figure.axes if ax.images]
    assert titles == [f"digit {digit}" for digit in range(10)] and figure.get_suptitle() == "softmax regression"


def test_discordant_digits_both_ways_with_their_counts():
    labels = np.arange(100) % 10
    images = np.zeros((100, 28, 28), np.uint8)
    wide, narrow = labels.copy(), labels.copy()
    narrow[[1, 2, 3, 51]] = 0  # wide alone right on four digits
    wide[[7]] = 3  # narrow alone right on one
    wide[[9]], narrow[[9]] = 1, 2  # both wrong: not discordant
    figure = explorer.views.digits.plot_discordant(images, labels, {"wide": wide, "narrow": narrow}, "x")
    heading, first, second = figure.subfigs
    assert heading.get_suptitle() == "x"
    assert first.get_suptitle().startswith("wide right, narrow wrong: 4 digits (4 shown")
    assert second.get_suptitle().startswith("narrow right, wide wrong: 1 digit (1 shown")
    titles = [ax.get_title() for ax in first.axes if ax.images]
    assert titles == ["true 1\nsaid 0", "true 2\nsaid 0", "true 3\nsaid 0", "true 1\nsaid 0"]
    assert [ax.get_title() for ax in second.axes if ax.images] == ["true 7\nsaid 3"]
    same = explorer.views.digits.plot_discordant(images, labels, {"a": labels, "b": labels})
    assert all(subfigure.axes[0].texts[0].get_text() == "none" for subfigure in same.subfigs[1:])
