"""The techniques beyond a network's shape: each field adds its layer, constraint, loss setting or
schedule to the Keras model, reads back into the summary's columns, and the augmentation moves
digits as it says (and only while training)."""

import math

import numpy as np
import pytest

import common
import explorer.config.options
import explorer.data.loading
import explorer.engine.sweep
from explorer.analysis.stats import factor_groups
from explorer.config.defaults import WARMUP_FRACTION
from explorer.config.grids import expand_grids
from explorer.config.models import validate_config, validate_configs
from explorer.models.augment import RandomAffine, affine_resample
from explorer.models.dense import dense_network
from explorer.models.variants import describe_model

from conftest import dense_variant

keras = common.keras

EVERY_TECHNIQUE = {
    "hidden_units": [16, 8],
    "dropout": 0.2,
    "augment": {"rotation": 7, "shift": 1.5, "zoom": 0.05},
    "batch_norm": True,
    "label_smoothing": 0.1,
    "lr_schedule": "warmup_cosine",
    "weight_decay": 0.01,
    "max_norm": 3,
    "early_stopping": 4,
}


def layers_of(fields, training_steps=1000):
    model = dense_network(validate_config("m", fields), training_steps)
    return model, [type(layer).__name__ for layer in model.layers]


def test_the_default_network_has_none_of_the_techniques():
    model, kinds = layers_of({"hidden_units": [16]}, training_steps=None)
    assert kinds == ["Dense", "Dense"]
    assert model.layers[0].kernel_constraint is None and model.loss == "categorical_crossentropy"
    assert isinstance(model.optimizer, keras.optimizers.Adam) and model.optimizer.weight_decay is None
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)


def test_augment_puts_random_affine_first_with_its_amounts():
    model, kinds = layers_of({"hidden_units": [16], "augment": "standard"})
    assert kinds == ["RandomAffine", "Dense", "Dense"]
    assert (model.layers[0].rotation, model.layers[0].shift, model.layers[0].zoom) == (10.0, 2.0, 0.1)


def test_batch_norm_sits_between_each_hidden_dense_layer_and_its_activation():
    model, kinds = layers_of({"hidden_units": [16, 8], "activation": ["relu", "tanh"], "batch_norm": True})
    assert kinds == ["Dense", "BatchNormalization", "Activation"] * 2 + ["Dense"]
    assert [layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [False, False, True]
    assert [layer.get_config()["activation"] for layer in model.layers[2:6:3]] == ["relu", "tanh"]


def test_max_norm_constrains_the_hidden_kernels_only():
    model, _ = layers_of({"hidden_units": [16, 8], "max_norm": 2.5})
    constraints = [layer.kernel_constraint for layer in model.layers]
    assert [type(c).__name__ for c in constraints] == ["MaxNorm", "MaxNorm", "NoneType"]
    assert constraints[0].max_value == 2.5


@pytest.mark.parametrize("output, from_logits", [("softmax", False), ("linear", True), ("sigmoid", False)])
def test_label_smoothing_goes_to_the_cross_entropy(output, from_logits):
    model, _ = layers_of({"hidden_units": [8], "output_activation": output, "label_smoothing": 0.2})
    assert model.loss.label_smoothing == pytest.approx(0.2) and model.loss.from_logits is from_logits


@pytest.mark.parametrize("schedule", ["cosine", "warmup_cosine"])
def test_a_schedule_lasts_the_training_steps_it_is_given(schedule):
    model, _ = layers_of({"hidden_units": [8], "learning_rate": 0.01, "lr_schedule": schedule}, training_steps=400)
    rate = model.optimizer._learning_rate  # the schedule object itself; the property gives its value now
    warmup = round(WARMUP_FRACTION * 400) if schedule == "warmup_cosine" else 0
    assert isinstance(rate, keras.optimizers.schedules.CosineDecay)
    assert rate.decay_steps + warmup == 400
    assert float(rate(warmup)) == pytest.approx(0.01) and float(rate(400)) == pytest.approx(0.0, abs=1e-9)
    if warmup:
        assert float(rate(0)) == 0.0 and float(rate(warmup // 2)) == pytest.approx(0.005, rel=0.05)


def test_a_schedule_without_its_steps_is_refused():
    with pytest.raises(ValueError, match="lr_schedule 'cosine' needs training_steps"):
        layers_of({"lr_schedule": "cosine"}, training_steps=None)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_weight_decay_is_keras_decoupled_one_in_every_optimizer(optimizer):
    model, _ = layers_of({"hidden_units": [8], "optimizer": optimizer, "weight_decay": 0.05})
    assert model.optimizer.weight_decay == pytest.approx(0.05)


def test_early_stopping_is_the_variants_patience():
    assert dense_variant("m", {"early_stopping": 3}).early_stopping == 3
    assert dense_variant("m").early_stopping == 0


def test_every_technique_reads_back_from_the_model():
    config = validate_config("m", EVERY_TECHNIQUE)
    variant = dense_variant("m", EVERY_TECHNIQUE)
    described = describe_model(dense_network(config, 1000), variant)
    assert described["architecture"] == "dense"
    assert {key: described[key] for key in EVERY_TECHNIQUE} == {
        "hidden_units": [16, 8],
        "dropout": 0.2,
        "augment": "rotate 7°, shift 1.5 px, zoom 0.05",
        "batch_norm": True,
        "label_smoothing": pytest.approx(0.1),
        "lr_schedule": "warmup_cosine",
        "weight_decay": pytest.approx(0.01),
        "max_norm": 3.0,
        "early_stopping": 4,
    }
    assert described["activation"] == "relu" and described["learning_rate"] == pytest.approx(1e-3)


def test_the_engine_gives_a_schedule_the_steps_of_the_training_it_runs(tmp_path):
    variant = dense_variant("m", {"hidden_units": [8], "lr_schedule": "cosine", "epochs": 3, "batch_size": 64})
    assert variant.takes_training_steps
    options = explorer.config.options.make_options({"quick": True})
    (given,) = explorer.engine.run_variants.with_training_steps([variant], options)
    train, _ = explorer.data.loading.planned_digits(None, seed=options.seed, validation_split=0.1, quick=True)
    assert given.build().optimizer._learning_rate.decay_steps == 3 * math.ceil(train / 64)


def digits(count=4, seed=0):
    return np.random.default_rng(seed).random((count, 784)).astype("float32")


def test_resampling_without_a_move_gives_the_digit_back():
    images, zeros, ones = digits(), np.zeros(4, "float32"), np.ones(4, "float32")
    np.testing.assert_array_equal(np.asarray(affine_resample(images, zeros, ones, zeros, zeros)), images)


def test_a_whole_pixel_shift_moves_the_digit_and_brings_in_black():
    images, zeros, ones = digits(), np.zeros(4, "float32"), np.ones(4, "float32")
    moved = np.asarray(affine_resample(images, zeros, ones, zeros, 2 * ones)).reshape(4, 28, 28)
    expected = np.zeros((4, 28, 28), "float32")
    expected[:, :, 2:] = images.reshape(4, 28, 28)[:, :, :-2]
    np.testing.assert_allclose(moved, expected, atol=1e-6)


def test_a_quarter_turn_is_numpys_rot90():
    images, zeros, ones = digits(), np.zeros(4, "float32"), np.ones(4, "float32")
    turned = np.asarray(affine_resample(images, ones * math.pi / 2, ones, zeros, zeros)).reshape(4, 28, 28)
    square = images.reshape(4, 28, 28)
    assert min(np.abs(turned - np.rot90(square, k, axes=(1, 2))).max() for k in (1, 3)) < 1e-5


def test_a_zoom_about_the_centre_keeps_the_centre_pixel_and_spreads_the_rest():
    image = np.zeros((1, 28, 28), "float32")
    image[0, 10, 10] = 1.0  # 3.5 pixels up and left of the centre (13.5, 13.5)
    zeros, ones = np.zeros(1, "float32"), np.ones(1, "float32")
    zoomed = np.asarray(affine_resample(image.reshape(1, 784), zeros, 2 * ones, zeros, zeros)).reshape(28, 28)
    assert zoomed.sum() == pytest.approx(4.0, rel=1e-5)  # twice the size: four times the area
    assert zoomed[6:8, 6:8].min() > 0 and zoomed[10, 10] == 0


def test_random_affine_moves_only_training_digits_each_its_own_way():
    layer = RandomAffine(rotation=10, shift=2, zoom=0.1, seed=3)
    images = np.repeat(digits(1), 8, axis=0)
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    moved = np.asarray(layer(images, training=True))
    assert moved.shape == images.shape and not np.allclose(moved, images)
    assert len({row.tobytes() for row in moved}) == 8  # one move per digit, not one per batch
    assert 0.5 < moved.sum() / images.sum() < 1.5  # moved, not lost


def test_random_affine_survives_saving(tmp_path):
    model, _ = layers_of({"hidden_units": [8], "augment": "light"})
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[0], RandomAffine) and loaded.layers[0].get_config()["shift"] == 1.0
    np.testing.assert_allclose(loaded.predict(digits(), verbose=0), model.predict(digits(), verbose=0), atol=1e-6)


def test_a_grid_varies_the_techniques_with_readable_names():
    grid = {"grid": {"g": {"hidden_units": [[8]], "augment": ["none", "light"], "batch_norm": [False, True]}}}
    configs = validate_configs(expand_grids(grid))
    assert [config.name for config in configs] == [
        "g-aug_none-no_bn",
        "g-aug_none-bn",
        "g-aug_light-no_bn",
        "g-aug_light-bn",
    ]
    assert [(config.augment is not None, config.batch_norm) for config in configs] == [
        (False, False),
        (False, True),
        (True, False),
        (True, True),
    ]


def test_the_summary_treats_each_technique_as_a_factor():
    reference = {"name": "plain", "status": "ok", "hidden_units": [8], "augment": "none", "lr_schedule": "constant"}
    rows = [
        reference,
        {**reference, "name": "augmented", "augment": "standard"},
        {**reference, "name": "scheduled", "lr_schedule": "cosine"},
        {**reference, "name": "both", "augment": "standard", "lr_schedule": "cosine"},
    ]
    groups = factor_groups(rows, "plain")
    assert {field: [row["name"] for row in members] for field, members in groups.items()} == {
        "augment": ["plain", "augmented"],
        "lr_schedule": ["plain", "scheduled"],
    }
