"""Every use of a Keras internal, in one place, each with why; `keras_assumptions` checks them.

Keras' public API does not offer three things the explorer needs, so it leans on Keras' own
private names here and nowhere else:

1. `BackupAndRestore` saves and restores one checkpoint per run and reads its epoch from a separate
   file; resume needs each epoch's weights and number written together (see
   `engine.callbacks.EpochBackupAndRestore`). Its `_save_model` hook is where an epoch is saved, its
   `_current_epoch` the epochs finished when it is called.
2. `fit` continues after the epochs a checkpoint holds when `model._initial_epoch` is set in
   `on_train_begin`: what `BackupAndRestore` itself does.
3. Keras imports TensorFlow whenever it is installed, even on JAX, through the lazy handle
   `keras.src.utils.module_utils.tensorflow`; marking it unavailable saves seconds at every start.

A Keras upgrade that changes any of these would silently break resume (or slow every start):
`tests/test_keras_compat.py` runs `keras_assumptions` and fails loudly, naming the one that broke.
"""

import contextlib
import sys
from collections.abc import Iterator

from explorer.models.backend import keras

TESTED_WITH = "3.15"  # the Keras these uses were read from (requirements.txt pins it)


class EpochSavingBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose saving is handed to `save_epoch(finished_epochs)`, and whose restore
    is done by a subclass calling `continue_after(epochs)`."""

    def _save_model(self):  # Keras calls this from on_epoch_end with save_freq="epoch"
        self.save_epoch(self._current_epoch)  # set by on_epoch_end to epoch + 1: epochs finished

    def save_epoch(self, finished_epochs: int) -> None:
        raise NotImplementedError

    def continue_after(self, epochs: int) -> None:
        """Make the running `fit` start after `epochs` epochs (call from on_train_begin)."""
        self.model._initial_epoch = epochs  # read by fit right after on_train_begin


@contextlib.contextmanager
def tensorflow_left_alone(active: bool = True) -> Iterator[None]:
    """Within the block, on JAX, Keras treats TensorFlow as not installed (while nothing has
    imported it, and when `active`); restored afterwards.

    Keras imports TensorFlow whenever it is installed: `keras.utils.set_random_seed` to seed it,
    and serializing any configuration to check for its TensorShape. On JAX neither does anything a
    sweep needs, and the import took 1.8-2.6 s and about 300 MB at every start (measured with
    `benchmarks/speed.py --sweep`). A sweep that logs to TensorBoard, which writes with
    TensorFlow, passes `active=False`.
    """
    from keras.src.utils import module_utils

    handle = module_utils.tensorflow
    hide = active and keras.backend.backend() == "jax" and "tensorflow" not in sys.modules
    hide = hide and handle._available is None
    if hide:
        handle._available = False
    try:
        yield
    finally:
        if hide:
            handle._available = None


def keras_assumptions() -> list[str]:
    """What no longer holds of the three uses above in the installed Keras, one line each (empty:
    all hold). Cheap: it inspects Keras' code and trains nothing (the test also trains)."""
    problems = []
    base = keras.callbacks.BackupAndRestore
    if not callable(getattr(base, "_save_model", None)):
        problems.append("keras.callbacks.BackupAndRestore has no _save_model hook")
    callback = base("unused-folder", save_freq="epoch")
    if not hasattr(callback, "_current_epoch"):
        problems.append("keras.callbacks.BackupAndRestore keeps no _current_epoch")
    try:
        from keras.src.utils import module_utils
    except ImportError:
        problems.append("keras.src.utils.module_utils is gone")
    else:
        if not hasattr(getattr(module_utils, "tensorflow", None), "_available"):
            problems.append("keras.src.utils.module_utils.tensorflow has no _available flag")
    if not hasattr(keras.Model(), "_initial_epoch"):
        problems.append("keras.Model has no _initial_epoch for fit to read")
    return problems
