"""Early stopping (`Variant.early_stopping`): it stops once validation loss has not improved for
its patience, keeps the best epoch's weights (the test figures and model.keras are theirs), never
fuses, and survives an interruption, even one after the epoch it stopped after."""

import dataclasses
import json

import numpy as np
import pytest

import common
import explorer.engine.callbacks
from explorer.data.prepare import PreparedData
from explorer.engine.estimate import plan_text
from explorer.engine.groups import train_and_record
from explorer.engine.local import group_title
from explorer.engine.training import GroupSetup, train_group
from explorer.models.trials import Trial, plan_groups, trial_key
from explorer.models.variants import Variant, inspect_variant
from explorer.store.folders import FUSED_FOLDER, GROUP_RECORD
from explorer.store.group_checkpoint import GroupCheckpoint
from explorer.store.resume import plan_resume
from explorer.store.schema import read_history

from conftest import dense_trial, make_synthetic_digits

keras = common.keras
PATIENCE, EPOCHS, SEED = 2, 12, 3


@pytest.fixture(scope="module")
def data() -> PreparedData:
    """100 training digits, 40% of them with a random label, and 100 clean validation and test
    digits: a network at a high learning rate soon learns the noise, and validation loss rises."""
    (x, y), (x_test, y_test) = make_synthetic_digits(200, 1), make_synthetic_digits(100, 2)
    rng = np.random.default_rng(0)
    noisy = rng.random(100) < 0.4
    y = y.copy()
    y[:100][noisy] = rng.integers(0, 10, noisy.sum())
    split = [
        (pixels(x[:100]), one_hot(y[:100])),
        (pixels(x[100:]), one_hot(y[100:])),
        (pixels(x_test), one_hot(y_test)),
    ]
    return PreparedData(*(array for pair in split for array in pair), x_test, y_test)


def pixels(images: np.ndarray) -> np.ndarray:
    return (images.reshape(len(images), -1) / 255).astype("float32")


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(10, dtype="float32")[labels]


def build() -> keras.Model:
    model = keras.Sequential(
        [keras.Input((784,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    return model


def trial(epochs: int = EPOCHS, patience: int = PATIENCE) -> Trial:
    variant = Variant("noisy", build, epochs=epochs, batch_size=10, early_stopping=patience)
    return Trial(variant, inspect_variant(variant), SEED)


def setup(folder, *callbacks) -> GroupSetup:
    return GroupSetup.in_folder(folder, [trial()], verbose=0, callbacks=callbacks)


def train(folder, data: PreparedData, one: Trial | None = None) -> dict:
    (result,) = train_and_record([one or trial()], data, setup(folder), [{}])
    return result


def saved_weights(folder) -> list[np.ndarray]:
    return keras.models.load_model(folder / "noisy" / "model.keras").get_weights()


@pytest.fixture(scope="module")
def whole(data, tmp_path_factory):
    """The trial trained without interruption: its folder and result."""
    folder = tmp_path_factory.mktemp("whole")
    return folder, train(folder, data)


class EpochCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_it_stops_after_its_patience_and_keeps_the_best_epochs_weights(whole, data, tmp_path):
    folder, result = whole
    history = read_history(folder / "noisy" / "history.csv")
    best = int(np.argmin(history["val_loss"])) + 1
    assert result["status"] == "ok" and result["early_stopping"] == PATIENCE
    assert result["stopped_epoch"] == best + PATIENCE == result["epochs_run"] == len(history["loss"]) < EPOCHS
    assert result["best_epoch"] == best and result["val_loss"] == pytest.approx(history["val_loss"][best - 1])
    assert not (folder / "noisy" / "checkpoint").exists()
    # The kept weights are the best epoch's: those of the same trial trained for `best` epochs.
    reference = train(tmp_path, data, trial(epochs=best, patience=0))
    assert reference["best_epoch"] == best and reference["stopped_epoch"] is None
    for kept, expected in zip(saved_weights(folder), saved_weights(tmp_path), strict=True):
        np.testing.assert_allclose(kept, expected, rtol=1e-5, atol=1e-6)
    model = keras.models.load_model(folder / "noisy" / "model.keras")
    accuracy = np.mean(model.predict(data.x_test, verbose=0).argmax(axis=1) == data.test_labels)
    assert result["test_accuracy"] == pytest.approx(accuracy) == pytest.approx(reference["test_accuracy"])
    assert np.array_equal(np.load(folder / "noisy" / "test_predictions.npy"), np.load(tmp_path / "noisy" / "test_predictions.npy"))  # fmt: skip


def test_an_early_stopping_trial_never_fuses_and_the_plan_says_why():
    fusing = [dense_trial(name, {"hidden_units": [units]}) for name, units in (("a", 8), ("b", 16), ("c", 32))]
    stopping = [dataclasses.replace(one, variant=dataclasses.replace(one.variant, early_stopping=3)) for one in fusing[1:]]  # fmt: skip
    groups = plan_groups([fusing[0], *stopping, dense_trial("d", {"hidden_units": [4]})], fuse=True)
    assert [[one.name for one in group] for group in groups] == [["a", "d"], ["b"], ["c"]]
    lines = plan_text(groups, 100, 100).splitlines()
    assert "] 2 fused: seed 0" in lines[1]
    assert [line.split("] ")[1].split(":")[0] for line in lines if line.startswith("[")][1:] == [
        "alone (early stopping, patience 3)"
    ] * 2
    assert group_title([stopping[0]], 1) == "b, early stopping (patience 3)"
    # Patience decides the numbers: it is in the fingerprint.
    identity = {"source": "test"}
    assert trial_key(stopping[0], identity) != trial_key(fusing[1], identity)
    with pytest.raises(ValueError, match="early stopping trains alone"):
        train_group(stopping, None, GroupSetup([], None))


def test_a_fused_checkpoint_naming_an_early_stopping_trial_is_not_formed_again(tmp_path):
    pair = [dense_trial("a", {"hidden_units": [8]}), dense_trial("b", {"hidden_units": [16]})]
    pair[1] = dataclasses.replace(pair[1], variant=dataclasses.replace(pair[1].variant, early_stopping=2))
    keys = {one: f"key-{one.name}" for one in pair}
    checkpoint = tmp_path / FUSED_FOLDER / "x"
    (checkpoint / "epoch-1").mkdir(parents=True)
    (checkpoint / GROUP_RECORD).write_text(json.dumps({"members": [{"folder": o.name, "key": keys[o]} for o in pair]}))
    assert plan_resume(tmp_path, pair, keys, fuse=True, test_samples=10).groups == [[pair[0]], [pair[1]]]


def test_an_interrupted_trial_resumes_as_if_never_interrupted(whole, data, tmp_path, monkeypatch):
    folder, result = whole
    cut_after = result["best_epoch"] + 1  # the best weights are in the checkpoint, not the model's
    save = explorer.engine.callbacks.EpochBackupAndRestore.on_epoch_end

    def interrupted(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch + 1 == cut_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(explorer.engine.callbacks.EpochBackupAndRestore, "on_epoch_end", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, data)
    monkeypatch.setattr(explorer.engine.callbacks.EpochBackupAndRestore, "on_epoch_end", save)
    (newest, *_) = GroupCheckpoint(tmp_path / "noisy" / "checkpoint").saved_epochs()
    assert newest.name == f"epoch-{cut_after}" and (newest / "best_weights.npz").is_file()
    resumed = train(tmp_path, data)
    assert resumed["resumed_from_epoch"] == cut_after
    for key in ("stopped_epoch", "best_epoch", "epochs_run", "test_accuracy", "test_loss", "val_loss"):
        assert resumed[key] == pytest.approx(result[key], rel=1e-5), key
    history, expected = (read_history(run / "noisy" / "history.csv") for run in (tmp_path, folder))
    assert history["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-5)
    for kept, reference in zip(saved_weights(tmp_path), saved_weights(folder), strict=True):
        np.testing.assert_allclose(kept, reference, rtol=1e-5, atol=1e-6)


def test_a_kill_after_the_stopping_epoch_trains_no_further_epoch_on_resume(whole, data, tmp_path):
    folder, result = whole
    # train_group leaves the checkpoint, as a kill before the files are written does.
    train_group([trial()], data, setup(tmp_path))
    assert (
        GroupCheckpoint(tmp_path / "noisy" / "checkpoint").saved_epochs()[0].name == f"epoch-{result['stopped_epoch']}"
    )
    counter = EpochCounter()
    (resumed,) = train_and_record([trial()], data, setup(tmp_path, counter), [{}])
    assert counter.epochs == []  # fit trained nothing
    assert resumed["resumed_from_epoch"] == result["stopped_epoch"]
    for key in ("stopped_epoch", "best_epoch", "epochs_run", "test_accuracy", "test_loss"):
        assert resumed[key] == pytest.approx(result[key], rel=1e-5), key
    for kept, reference in zip(saved_weights(tmp_path), saved_weights(folder), strict=True):
        np.testing.assert_allclose(kept, reference, rtol=1e-5, atol=1e-6)
