"""The FLOPs counted for a model (`explorer.models.flops`): the rule by hand for dense stacks, XLA's
count for the rest on JAX, unknown on TensorFlow, and the rule against XLA's count of the same step."""

import dataclasses

import pytest

import common
import explorer.engine.estimate
import explorer.models.flops as flops

from conftest import dense_trial

keras = common.keras


def dense_stack(*widths, dropout=0.0, frozen_first=False):
    """A compiled Sequential of Dense layers `widths[0] -> ... -> widths[-1]`, Dropout after each
    hidden layer when `dropout`; its first Dense layer frozen when `frozen_first`."""
    layers = [keras.Input((widths[0],))]
    for number, units in enumerate(widths[1:-1]):
        layers.append(keras.layers.Dense(units, activation="relu", trainable=not (frozen_first and number == 0)))
        layers += [keras.layers.Dropout(dropout)] if dropout else []
    layers.append(keras.layers.Dense(widths[-1], activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def convnet():
    """keras-io's mnist_convnet in miniature, on the flat 784 pixels the engine feeds."""
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Reshape((28, 28, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),  # 26 x 26 x 4 outputs of 9 multiply-adds each
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def test_softmax_regression_trains_without_its_inputs_gradient():
    counted = flops.layer_flops(dense_stack(784, 10))
    # 7,840 multiply-adds: 2 FLOPs each forward, 2 for the weights' gradient, none for the pixels'.
    assert (counted.forward, counted.train, counted.counted_by) == (2 * 7_840, 4 * 7_840, "layers")


def test_a_hidden_layer_adds_its_inputs_gradient_after_the_first_layer():
    first, second = 784 * 128, 128 * 10
    counted = flops.layer_flops(dense_stack(784, 128, 10))
    assert counted.forward == 2 * (first + second) == 203_264
    assert counted.train == 4 * first + 6 * second == 409_088
    assert counted.per_epoch(54_000, 6_000) == 409_088 * 54_000 + 203_264 * 6_000


def test_dropout_is_free_and_nested_models_are_counted_through():
    plain = flops.layer_flops(dense_stack(784, 64, 64, 10))
    assert flops.layer_flops(dense_stack(784, 64, 64, 10, dropout=0.5)) == plain
    inner = keras.Sequential([keras.Input((784,)), keras.layers.Dense(64, activation="relu")])
    outer = keras.Sequential([keras.Input((784,)), inner, keras.layers.Dense(64), keras.layers.Dense(10)])
    assert flops.layer_flops(outer) == plain


def test_a_frozen_first_layer_trains_nothing_and_passes_no_gradient_back():
    counted = flops.layer_flops(dense_stack(784, 128, 10, frozen_first=True))
    # Forward through both; backward only the last layer's weights: no trainable layer before it.
    assert counted.train == counted.forward + 2 * 128 * 10


def test_the_rule_counts_nothing_partially():
    assert flops.layer_flops(convnet()) is None  # a convolution: not its Dense layer alone
    over_rows = keras.Sequential([keras.Input((28, 28)), keras.layers.Dense(10)])
    assert flops.layer_flops(over_rows) is None  # a Dense applied to each of 28 rows
    assert flops.layer_flops(keras.Sequential([keras.layers.Dense(10)])) is None  # unbuilt: no shapes


@pytest.mark.backend
def test_a_convnet_is_counted_by_xla_on_jax_and_unknown_on_tensorflow():
    counted = flops.model_flops(convnet(), batch_size=32)
    if keras.backend.backend() != "jax":
        assert counted is None
        return
    conv, dense = 26 * 26 * 4 * 9, 26 * 26 * 4 * 10
    assert counted.counted_by == "XLA"
    assert counted.forward >= 2 * (conv + dense)  # at least the products, forward
    assert counted.train >= counted.forward + 2 * (conv + dense)  # and the weights' gradients


@pytest.mark.backend
@pytest.mark.parametrize("widths", [(784, 10), (784, 128, 10), (784, 512, 512, 10)])
@pytest.mark.parametrize("batch_size", [128, 256])
def test_the_rule_is_within_ten_percent_of_xlas_count_of_the_training_step(widths, batch_size):
    if keras.backend.backend() != "jax":
        pytest.skip("XLA's cost analysis is read on JAX only")
    model = dense_stack(*widths)
    ours = flops.layer_flops(model)
    train_step, test_step = explorer.models.keras_compat.compiled_step_flops(model, batch_size)
    ratios = train_step / (ours.train * batch_size), test_step / (ours.forward * batch_size)
    print(
        f"XLA/ours for {'-'.join(map(str, widths))} at batch {batch_size}: train {ratios[0]:.3f}, test {ratios[1]:.3f}"
    )
    # XLA counts the biases, activations, loss and Adam's update too: a little more, never less.
    assert 1.0 <= ratios[0] <= 1.1 and 1.0 <= ratios[1] <= 1.1


def test_a_model_of_unknown_flops_is_left_out_of_the_estimate_and_says_so():
    known = dense_trial("known", {"hidden_units": [8]})
    unknown = dataclasses.replace(known, facts=dataclasses.replace(known.facts, flops=None))
    assert unknown.facts.flops_per_epoch(1_000, 100) is None
    both = explorer.engine.estimate.estimate_sweep([[known, unknown]], 1_000, 100)
    assert both.flops == known.facts.flops_per_epoch(1_000, 100) * 20
    assert "1 model(s) of unknown FLOPs left out" in both.line()
    plan = explorer.engine.estimate.plan_text([[known, unknown]], 1_000, 100)
    assert "unknown GFLOP/epoch" in plan
