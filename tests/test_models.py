"""The dense builder and any builder: architecture, parameter counts, losses, what the engine reads off a model, training."""

import json

import keras
import numpy as np
import pytest

import common
import explorer.config.defaults
import explorer.config.models
import explorer.engine.groups
import explorer.engine.training
import explorer.models.dense
import explorer.models.trials
import explorer.models.variants

from conftest import dense_trial, dense_variant, real_mnist_or_skip, train_and_evaluate


def build(**fields):
    return explorer.models.dense.dense_network(explorer.config.models.validate_config("m", fields))


@pytest.mark.parametrize(
    ("hidden_units", "dropout", "parameters"),
    [
        ([128], 0.0, 101_770),  # 784*128 + 128 + 128*10 + 10
        ([512, 512], 0.2, 669_706),  # dropout adds no parameters
        ([], 0.0, 7_850),  # softmax regression: 784*10 + 10
        ([300, 100], 0.0, 266_610),  # LeCun et al. 1998's 784-300-100-10
    ],
)
def test_parameter_counts_of_known_architectures(hidden_units, dropout, parameters):
    assert build(hidden_units=hidden_units, dropout=dropout).count_params() == parameters


def test_layers_follow_the_configuration():
    model = build(hidden_units=[64, 32], activation=["tanh", "relu"], dropout=0.5, output_activation="sigmoid")
    assert model.name == "m"
    described = [(layer.name, type(layer).__name__) for layer in model.layers]
    assert described == [
        ("hidden_1", "Dense"),
        ("dropout_1", "Dropout"),
        ("hidden_2", "Dense"),
        ("dropout_2", "Dropout"),
        ("output", "Dense"),
    ]
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [64, 32, 10]
    assert model.get_layer("hidden_1").activation is keras.activations.tanh
    assert model.get_layer("output").activation is keras.activations.sigmoid


@pytest.mark.parametrize(
    ("output_activation", "loss", "from_logits"),
    [
        ("softmax", "categorical_crossentropy", False),
        ("linear", "categorical_crossentropy", True),
        ("sigmoid", "binary_crossentropy", False),
    ],
)
def test_each_output_activation_gets_its_loss(output_activation, loss, from_logits):
    model = build(output_activation=output_activation)
    described = explorer.models.variants.describe_model(model, dense_variant("m"))
    assert (described["loss"], described["from_logits"]) == (loss, from_logits)
    if from_logits:
        assert isinstance(model.loss, keras.losses.CategoricalCrossentropy) and model.loss.from_logits


def test_mean_squared_error_can_be_chosen():
    assert build(loss="mean_squared_error").loss == "mean_squared_error"


@pytest.mark.backend
def test_outputs_have_the_range_of_their_activation():
    x = np.random.default_rng(0).random((16, 784), dtype=np.float32) * 8
    softmax = keras.ops.convert_to_numpy(build(output_activation="softmax")(x))
    sigmoid = keras.ops.convert_to_numpy(build(output_activation="sigmoid")(x))
    linear = keras.ops.convert_to_numpy(build(output_activation="linear")(x))
    np.testing.assert_allclose(softmax.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all((sigmoid > 0) & (sigmoid < 1)) and not np.allclose(sigmoid.sum(axis=1), 1.0)
    assert linear.min() < 0  # logits are unbounded


def test_compile_uses_the_configured_optimizer_and_learning_rate():
    model = build(optimizer="sgd", learning_rate=0.05)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.05)


@pytest.mark.backend
@pytest.mark.parametrize("output_activation", ["softmax", "linear", "sigmoid"])
def test_every_output_activation_learns_the_synthetic_digits(tmp_path, synthetic_mnist, output_activation):
    data = common.prepare_data(*synthetic_mnist, validation_split=0.1, seed=0)
    trial = dense_trial(
        "m", {"hidden_units": [32], "output_activation": output_activation, "epochs": 3, "batch_size": 32}
    )
    result = train_and_evaluate(trial, data, tmp_path, context={}, verbose=0)
    assert result["test_accuracy"] > 0.9  # chance is 0.1
    # The test figures are read from the one prediction pass: they are what evaluate() says.
    evaluated = keras.models.load_model(tmp_path / "model.keras").evaluate(
        data.x_test, data.y_test, batch_size=64, verbose=0, return_dict=True
    )
    assert result["test_accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-6)
    assert result["test_loss"] == pytest.approx(evaluated["loss"], rel=1e-5)


@pytest.mark.parametrize(("samples", "batch_size"), [(6_000, 1_000), (10_000, 1_000), (5_400, 900), (200, 200), (1, 1)])
def test_validation_and_test_batches_split_evenly_where_they_can(samples, batch_size):
    assert explorer.engine.training.eval_batch_size(samples) == batch_size


@pytest.mark.backend
def test_training_writes_consistent_files(tmp_path, synthetic_mnist):
    data = common.prepare_data(*synthetic_mnist, validation_split=0.1, seed=0)
    trial = dense_trial("small", {"hidden_units": [16], "epochs": 2, "batch_size": 64}, seed=5)
    result = train_and_evaluate(trial, data, tmp_path, context={"note": "x"}, verbose=0)

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "curves.png",
        "first_layer_epochs.npz",  # its 16 units after epochs 1 and 2 (the last)
        "history.csv",
        "model.keras",
        "result.json",
        "test_predictions.npy",
    ]
    assert json.loads((tmp_path / "result.json").read_text()) == result
    assert result["note"] == "x" and result["seed"] == 5 and result["parameters"] == 784 * 16 + 16 + 16 * 10 + 10
    history = common.read_history(tmp_path / "history.csv")
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert len(history["loss"]) == result["epochs_run"] == 2
    assert history["val_accuracy"][-1] == pytest.approx(result["val_accuracy"])
    predictions = np.load(tmp_path / "test_predictions.npy")
    assert np.mean(predictions == data.test_labels) == pytest.approx(result["test_accuracy"], abs=1e-6)
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert reloaded.count_params() == result["parameters"]
    np.testing.assert_array_equal(reloaded.predict(data.x_test, verbose=0).argmax(axis=1), predictions)


@pytest.mark.backend
def test_the_same_seed_gives_the_same_numbers(tmp_path, synthetic_mnist):
    data = common.prepare_data(*synthetic_mnist, validation_split=0.1, seed=0)
    fields = {"hidden_units": [16], "epochs": 2, "dropout": 0.3}
    first = train_and_evaluate(dense_trial("m", fields, 11), data, tmp_path / "a", context={}, verbose=0)
    keras.utils.set_random_seed(999)  # whatever ran before must not matter
    second = train_and_evaluate(dense_trial("m", fields, 11), data, tmp_path / "b", context={}, verbose=0)
    other = train_and_evaluate(dense_trial("m", fields, 12), data, tmp_path / "c", context={}, verbose=0)
    assert (first["test_loss"], first["test_accuracy"]) == (second["test_loss"], second["test_accuracy"])
    assert first["test_loss"] != other["test_loss"]


@pytest.mark.slow
def test_real_mnist_784_128_10_reaches_96_percent_in_two_epochs(tmp_path):
    train, test, _ = common.load_mnist(real_mnist_or_skip(), log=lambda line: None)
    data = common.prepare_data(train, test, validation_split=0.1, seed=42)
    trial = dense_trial("dense_128_relu", {"hidden_units": [128], "epochs": 2, "batch_size": 32}, seed=42)
    result = train_and_evaluate(trial, data, tmp_path, context={}, verbose=0)
    assert result["samples"] == {"train": 54_000, "validation": 6_000, "test": 10_000}
    assert result["test_accuracy"] >= 0.96
