"""The engine takes builders: any compiled Keras model trains, is described from its own layers,
fingerprinted by its configuration, and a bad builder is refused in one line before training."""

import io
import json
from pathlib import Path

import numpy as np
import pytest

import common
import explorer.engine.groups
import explorer.errors
import explorer.models.trials
import explorer.models.variants
import model_builder_loop
import model_builder_seq

from conftest import dense_variant, train_and_evaluate

keras = common.keras
layers = keras.layers


def sequential(*hidden, output="softmax", loss="categorical_crossentropy", optimizer="adam"):
    model = keras.Sequential([keras.Input(shape=(common.INPUT_DIM,)), *hidden, layers.Dense(10, activation=output)])
    model.compile(optimizer=optimizer, loss=loss)
    return model


def test_columns_are_read_from_the_models_layers():
    model = sequential(
        layers.Dense(64, activation="tanh"),
        layers.Dropout(0.25),
        layers.Dense(32, activation="relu"),
        layers.Dropout(0.25),
    )
    variant = common.Variant("mixed", lambda: model, epochs=3, batch_size=16)
    assert explorer.models.variants.describe_model(model, variant) == {
        "architecture": "dense",
        "hidden_units": [64, 32],
        "activation": ["tanh", "relu"],
        "dropout": 0.25,
        "output_activation": "softmax",
        "loss": "categorical_crossentropy",
        "from_logits": False,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "epochs": 3,
        "batch_size": 16,
        # The techniques, none of them used.
        "augment": "none",
        "batch_norm": False,
        "max_norm": 0.0,
        "label_smoothing": 0.0,
        "lr_schedule": "constant",
        "weight_decay": 0.0,
        "early_stopping": 0,
    }


def test_a_network_without_hidden_layers_has_no_hidden_activation():
    model = sequential()
    described = explorer.models.variants.describe_model(model, common.Variant("regression", lambda: model))
    assert described["hidden_units"] == [] and described["activation"] is None and described["dropout"] == 0.0


def with_gaussian_noise():
    model = sequential(layers.Dense(16, activation="relu"), layers.GaussianNoise(0.1))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="categorical_crossentropy")
    return model


@pytest.mark.backend
def test_a_model_that_is_not_a_dense_stack_trains_with_its_columns_marked(tmp_path, synthetic_mnist):
    data = common.prepare_data(*synthetic_mnist, validation_split=0.1, seed=0)
    variant = common.Variant("noisy", with_gaussian_noise, epochs=2, batch_size=32)
    (trial,) = explorer.models.trials.plan_trials([variant], seed=3)
    result = train_and_evaluate(trial, data, tmp_path, context={}, verbose=0)
    assert result["status"] == "ok" and result["test_accuracy"] > 0.5
    assert result["config"]["architecture"] == "other" and result["config"]["hidden_units"] is None
    assert (result["config"]["optimizer"], result["config"]["learning_rate"]) == ("sgd", 0.05)
    assert result["parameters"] == keras.models.load_model(tmp_path / "model.keras").count_params()


@pytest.mark.backend
def test_the_engine_measures_accuracy_whatever_the_builder_compiled(tmp_path, synthetic_mnist):
    def with_its_own_metric():
        model = sequential(layers.Dense(16, activation="relu"), output="linear", loss="mean_squared_error")
        model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mae"])
        return model

    data = common.prepare_data(*synthetic_mnist, validation_split=0.1, seed=0)
    (trial,) = explorer.models.trials.plan_trials([common.Variant("mse", with_its_own_metric, 2, 32)], seed=3)
    result = train_and_evaluate(trial, data, tmp_path, context={}, verbose=0)
    predictions = np.load(tmp_path / "test_predictions.npy")
    assert result["test_accuracy"] == pytest.approx(np.mean(predictions == data.test_labels), abs=1e-6)
    assert set(common.read_history(tmp_path / "history.csv")) == {
        "accuracy",
        "loss",
        "val_accuracy",
        "val_loss",
        "seconds",
    }


def test_fingerprints_ignore_keras_automatic_names_and_see_everything_else():
    first, again = sequential(layers.Dense(8)), sequential(layers.Dense(8))
    assert first.layers[0].name != again.layers[0].name  # Keras numbered them: dense_3, dense_5, ...
    assert explorer.models.variants.model_fingerprint(first) == explorer.models.variants.model_fingerprint(again)
    for other in (
        sequential(layers.Dense(9)),
        sequential(layers.Dense(8, activation="relu")),
        sequential(layers.Dense(8), optimizer=keras.optimizers.Adam(learning_rate=0.01)),
        sequential(layers.Dense(8), loss="binary_crossentropy"),
    ):
        assert explorer.models.variants.model_fingerprint(other) != explorer.models.variants.model_fingerprint(first)


def not_compiled():
    return keras.Sequential([keras.Input(shape=(784,)), layers.Dense(10)])


def without_input():
    model = keras.Sequential([layers.Dense(10)])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def raising():
    raise RuntimeError("the builder broke\nsecond line")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            raising,
            r"variant 'bad': its builder raised RuntimeError: the builder broke \(at test_builders.py:\d+, in raising\)$",
        ),
        (lambda: "a model", r"variant 'bad': its builder returned str; expected a compiled keras.Model"),
        (not_compiled, r"variant 'bad': the model is not compiled; call model.compile"),
        (
            without_input,
            r"variant 'bad': the model's input and output shapes are unknown \(start it with keras.Input\)",
        ),
        (
            lambda: sequential(loss="sparse_categorical_crossentropy"),
            r"loss 'sparse_categorical_crossentropy' wants integer labels.*use 'categorical_crossentropy'",
        ),
    ],
)
def test_a_bad_builder_is_refused_in_one_line(build, message):
    with pytest.raises(explorer.errors.ConfigError, match=message) as caught:
        explorer.models.variants.check_variants([common.Variant("bad", build)])
    assert "\n" not in str(caught.value)
    if build is raising:  # the learner's own error stays attached, with its traceback
        assert isinstance(caught.value.__cause__, RuntimeError) and caught.value.__cause__.__traceback__


def test_a_model_of_the_wrong_shape_is_refused():
    def wrong_input():
        model = keras.Sequential([keras.Input(shape=(28, 28)), layers.Flatten(), layers.Dense(10)])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        return model

    with pytest.raises(explorer.errors.ConfigError, match=r"expected one input of shape \(None, 784\)"):
        explorer.models.variants.check_variants([common.Variant("images", wrong_input)])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"epochs": 0}, r"variant 'v': epochs = 0 is not allowed; expected a whole number from 1 to 1,000"),
        ({"batch_size": 2.5}, r"variant 'v': batch_size = 2.5 is not allowed"),
        ({"name": "../v"}, r"configuration name '../v' is not allowed"),
    ],
)
def test_a_variants_name_epochs_and_batch_size_are_checked(fields, message):
    variant = common.Variant(**{"name": "v", "build": sequential, **fields})
    with pytest.raises(explorer.errors.ConfigError, match=message):
        explorer.models.variants.check_variants([variant])


def test_two_variants_of_one_name_are_refused():
    with pytest.raises(explorer.errors.ConfigError, match="variant 'v' is given twice"):
        explorer.models.variants.check_variants([common.Variant("v", sequential), common.Variant("v", sequential)])


@pytest.mark.backend
def test_both_scripts_build_the_same_networks_with_the_same_initial_weights():
    loop = model_builder_loop.variants_from(model_builder_loop.CONFIGS)
    seq = list(model_builder_seq.VARIANTS)
    assert [v.name for v in seq] == [v.name for v in loop]
    for from_seq, from_loop in zip(seq, loop, strict=True):
        assert (from_seq.epochs, from_seq.batch_size) == (from_loop.epochs, from_loop.batch_size)
        built = []
        for variant in (from_seq, from_loop):
            keras.utils.set_random_seed(11)
            built.append(explorer.models.variants.build_model(variant))
        configs = [
            json.dumps(explorer.models.variants.normalised_config(model), sort_keys=True, default=str)
            for model in built
        ]
        assert configs[0] == configs[1], from_seq.name
        for seq_weight, loop_weight in zip(*(model.get_weights() for model in built), strict=True):
            np.testing.assert_array_equal(seq_weight, loop_weight)


def test_a_dense_configuration_and_its_keras_twin_share_a_fingerprint():
    def written_out():
        model = sequential(layers.Dense(64, activation="relu"), layers.Dropout(0.1))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="categorical_crossentropy")
        return model

    twin = common.Variant("twin", written_out)
    from_config = dense_variant("twin", {"hidden_units": [64], "dropout": 0.1})
    assert (
        explorer.models.variants.inspect_variant(twin).fingerprint
        == explorer.models.variants.inspect_variant(from_config).fingerprint
    )


@pytest.mark.parametrize(
    ("fields", "first", "later"),
    [
        ({"hidden_units": [128]}, 784 * 128, 128 * 10),
        ({"hidden_units": [512, 512], "dropout": 0.2}, 784 * 512, 512 * 512 + 512 * 10),
        ({"hidden_units": []}, 784 * 10, 0),
    ],
)
def test_flops_are_counted_from_the_layer_shapes(fields, first, later):
    facts = explorer.models.variants.inspect_variant(dense_variant("m", fields))
    # 54,000 training digits forward and backward (6 FLOPs per multiply-add, 4 in the first layer,
    # whose input needs no gradient), 6,000 validation digits forward (2): 784-128-10 costs 23.3
    # GFLOP per epoch.
    per_epoch = first * (4 * 54_000 + 2 * 6_000) + later * (6 * 54_000 + 2 * 6_000)
    assert facts.flops.counted_by == "layers"
    assert facts.flops_per_epoch(54_000, 6_000) == per_epoch
    if fields["hidden_units"] == [128]:
        assert facts.flops_per_epoch(54_000, 6_000) == 23_310_336_000


def test_results_record_flops(tmp_path, synthetic_mnist):
    data = common.prepare_data(*synthetic_mnist, validation_split=0.1, seed=0)
    (trial,) = explorer.models.trials.plan_trials([dense_variant("m", {"hidden_units": [16], "epochs": 2})], seed=1)
    result = train_and_evaluate(trial, data, tmp_path, context={}, verbose=0)
    forward = 2 * (784 * 16 + 16 * 10)
    per_epoch = (2 * forward + 2 * 16 * 10) * len(data.x_train) + forward * len(data.x_val)
    assert (result["flops_per_epoch"], result["train_flops"]) == (per_epoch, 2 * per_epoch)


@pytest.mark.backend
def test_each_networks_summary_is_keras_own_as_in_a_fresh_session():
    variants = [
        common.Variant("narrow", lambda: sequential(layers.Dense(32))),
        common.Variant("deep", lambda: sequential(layers.Dense(64), layers.Dense(64))),
    ]
    narrow, deep = explorer.models.variants.check_variants(variants)
    assert narrow.summary.startswith('Model: "narrow"') and deep.summary.startswith('Model: "deep"')
    # Layer names start again in each summary, though the facts' weight paths stay distinct for fusion.
    assert "dense (Dense)" in narrow.summary and "dense (Dense)" in deep.summary and "dense_2 (Dense)" in deep.summary
    assert "Total params: 25,450" in narrow.summary
    assert not set(narrow.weight_paths) & set(deep.weight_paths)


class RefusesToTrain(keras.layers.Layer):
    """A layer that works at inference and raises when traced for training."""

    def call(self, inputs, training=False):
        if training:
            raise ValueError("this layer cannot train")
        return inputs


def cannot_train():
    model = keras.Sequential([keras.Input(shape=(784,)), RefusesToTrain(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def test_a_network_whose_training_step_cannot_be_traced_is_refused_at_the_check_by_its_name(tmp_path):
    with pytest.raises(
        explorer.errors.ConfigError, match=r"variant 'stuck': its training step cannot be traced"
    ) as caught:
        explorer.models.variants.check_variants([common.Variant("stuck", cannot_train)])
    assert "this layer cannot train" in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.__cause__ is not None  # the whole error, chained, for Python's traceback
    # From the command line: one line, and the full traceback kept in the file it names.
    stream = io.StringIO()
    assert explorer.errors.report_error(caught.value, stream) == explorer.errors.EXIT_BAD_INPUT
    line = stream.getvalue()
    assert line.count("\n") == 1 and "Traceback" not in line
    kept = Path(line.split("(full traceback: ")[1].rstrip(")\n"))
    assert "this layer cannot train" in kept.read_text() and "Traceback" in kept.read_text()
    kept.unlink()
