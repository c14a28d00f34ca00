"""The Keras internals the explorer relies on (`explorer.models.keras_compat`) still behave as
assumed: if a Keras upgrade breaks one, this fails and says which, before resume silently breaks."""

import numpy as np
import pytest

import common
import explorer.models.keras_compat as keras_compat

keras = common.keras


def test_every_keras_internal_used_is_still_there():
    assert keras_compat.keras_assumptions() == []
    # The internals were read from this Keras (requirements.txt pins it): another one is read again.
    assert keras.version().startswith(keras_compat.TESTED_WITH + "."), keras.version()


class Recorder(keras_compat.EpochSavingBackupAndRestore):
    """Saves nothing; records the epochs Keras says are finished, and continues after `start`."""

    def __init__(self, folder, start=0):
        super().__init__(str(folder), save_freq="epoch", delete_checkpoint=False)
        self.start, self.saved = start, []

    def on_train_begin(self, logs=None):
        if self.start:
            self.continue_after(self.start)

    def save_epoch(self, finished_epochs):
        self.saved.append(finished_epochs)


@pytest.mark.backend
@pytest.mark.parametrize("start", [0, 2])
def test_fit_saves_each_finished_epoch_and_continues_after_a_restored_one(tmp_path, start):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = np.ones((8, 4), "float32"), np.eye(2, dtype="float32")[np.arange(8) % 2]
    recorder = Recorder(tmp_path, start)
    history = model.fit(x, y, epochs=4, batch_size=4, verbose=0, callbacks=[recorder])
    assert recorder.saved == list(range(start + 1, 5))  # the epochs finished, counted as initial_epoch counts
    assert len(history.history["loss"]) == 4 - start


def test_tensorflow_is_left_alone_only_inside_the_block():
    from keras.src.utils import module_utils

    before = module_utils.tensorflow._available
    with keras_compat.tensorflow_left_alone(active=True):
        inside = module_utils.tensorflow._available
    assert module_utils.tensorflow._available == before
    hidden = keras.backend.backend() == "jax" and before is None and "tensorflow" not in __import__("sys").modules
    assert inside is (False if hidden else before)


@pytest.mark.backend
def test_the_compiled_steps_flops_are_read_on_jax_without_training():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    before = [np.array(weight) for weight in model.get_weights()]
    counted = keras_compat.compiled_step_flops(model, batch_size=8)
    if keras.backend.backend() != "jax":
        assert counted is None
        return
    train_step, test_step = counted
    assert train_step > test_step >= 2 * 8 * 4 * 2  # at least the forward product of 8 samples
    assert all(np.array_equal(old, new) for old, new in zip(before, model.get_weights(), strict=True))
