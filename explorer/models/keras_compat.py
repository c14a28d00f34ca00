"""Every use of a Keras internal, in one place, each with why; `keras_assumptions` checks them.

Keras' public API does not offer seven things the explorer needs, so it leans on Keras' own
private names (or file layout) here and nowhere else:

1. `BackupAndRestore` saves and restores one checkpoint per run and reads its epoch from a separate
   file; resume needs each epoch's weights and number written together (see
   `engine.callbacks.EpochBackupAndRestore`). Its `_save_model` hook is where an epoch is saved, its
   `_current_epoch` the epochs finished when it is called.
2. `fit` continues after the epochs a checkpoint holds when `model._initial_epoch` is set in
   `on_train_begin`: what `BackupAndRestore` itself does.
3. Keras imports TensorFlow whenever it is installed, even on JAX, through the lazy handle
   `keras.src.utils.module_utils.tensorflow`; marking it unavailable saves seconds at every start.
4. The report's "Draw a digit" panel needs every network's weights; reading them straight from the
   `.keras` file (its `config.json` and `model.weights.h5`) is about 30 times faster than
   `keras.saving.load_model`, which builds and compiles each model. Where the weights sit in the
   HDF5 file (`layers/<snake_case class name>[_<n>]/vars/<i>`) is Keras' saving code's choice.
5. The FLOPs of a model that is not a dense stack are XLA's count of its compiled training step
   (`compiled_step_flops`): on JAX, `model._symbolic_build` builds the optimizer, loss and
   metrics' variables as `fit` does before its first step, and the step is the JAX trainer's
   stateless `train_step(state, data)` (and `test_step`), which `make_train_function` jits.
6. `EarlyStopping` keeps its progress (`best`, `best_epoch`, `wait`, `stopped_epoch`, and
   `best_weights` as `get_weights()` arrays) in attributes its documentation does not list; a
   resumed run puts them back (`early_stopping_state`, `restore_early_stopping`), and its
   `on_train_end` then restores the best weights as in an uninterrupted run.
7. On JAX, `fit` calls `model.train_function(state, iterator)` once per `steps_per_execution`
   batches, and Keras' JAX trainer makes that a Python loop over its jitted step, one call per
   batch. `steps_in_one_call` makes it one compiled `lax.scan` over the batches instead (the same
   `train_step(state, data)`, so the same numbers): 0.4-0.7 s less per epoch of the default sweep
   (docs/performance.md). The function's arguments and its `(logs, state)` result are Keras'.

A Keras upgrade that changes any of these would silently break resume (or slow every start, or
lose a convnet's FLOPs, or make early stopping forget its best epoch on resume, or stop fused
training):
`tests/test_keras_compat.py` runs `keras_assumptions` and fails loudly, naming the one that broke.
"""

import contextlib
import dataclasses
import inspect
import io
import itertools
import json
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import h5py
import numpy as np

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
        continue_fit_after(self.model, epochs)


def continue_fit_after(model: keras.Model, epochs: int) -> None:
    """Make `model`'s running `fit` start after `epochs` epochs (call from a callback's
    on_train_begin); with `epochs` equal to fit's epochs, it trains none."""
    model._initial_epoch = epochs  # read by fit right after on_train_begin


def steps_in_one_call(model: keras.Model) -> Callable:
    """A `train_function` for a compiled JAX `model` that runs each call's batches (up to
    `steps_per_execution`) as one compiled `lax.scan` of `model.train_step`, returning the last
    step's logs as Keras' loop does. A call whose batches differ in shape (the epoch's last,
    smaller batch) or fall short goes one jitted step per batch, as in Keras."""
    import jax
    import jax.numpy as jnp

    def scan(state, batches):
        def step(state, batch):
            logs, state = model.train_step(state, batch)
            return state, logs

        state, logs = jax.lax.scan(step, state, batches)
        return jax.tree_util.tree_map(lambda values: values[-1], logs), state

    scan, one = jax.jit(scan, donate_argnums=0), jax.jit(model.train_step, donate_argnums=0)

    def train_function(state, iterator):
        batches = list(itertools.islice(iterator, model.steps_per_execution))
        if not batches:
            raise StopIteration  # as Keras' own `next(iterator)`: the epoch's data has run out
        shapes = {tuple(np.shape(leaf) for leaf in jax.tree_util.tree_leaves(batch)) for batch in batches}
        if len(batches) == model.steps_per_execution > 1 and len(shapes) == 1:
            return scan(state, jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *batches))
        for batch in batches:
            logs, state = one(state, batch)
        return logs, state

    train_function.steps_in_one_call = True
    return train_function


EARLY_STOPPING_STATE = ("best", "best_epoch", "wait", "stopped_epoch")


def early_stopping_state(callback: keras.callbacks.EarlyStopping) -> dict[str, float | int | None]:
    """The progress of Keras' EarlyStopping after the epochs it has seen: the best value (None
    before the first epoch), the 0-based epochs of the best and of the stop (0: it has not
    stopped), and the epochs since the best. Its best weights are `callback.best_weights`."""
    best = callback.best
    return {
        "best": None if best is None else float(best),
        "best_epoch": int(callback.best_epoch),
        "wait": int(callback.wait),
        "stopped_epoch": int(callback.stopped_epoch),
    }


def restore_early_stopping(
    callback: keras.callbacks.EarlyStopping, state: Mapping[str, object], best_weights: list[np.ndarray] | None
) -> None:
    """Put back `early_stopping_state` and the best weights (after its on_train_begin, which
    forgets them): it then goes on, and restores the best weights at on_train_end, as if it had
    never been interrupted."""
    for name in EARLY_STOPPING_STATE:
        setattr(callback, name, state[name])
    callback.best_weights = best_weights


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


@dataclasses.dataclass(frozen=True)
class SavedLayer:
    """One layer of a saved Sequential model: its Keras class name, its configuration (as in the
    file's `config.json`) and its weights, in `layer.get_weights()` order."""

    class_name: str
    config: Mapping
    weights: tuple[np.ndarray, ...] = ()


def _snake_case(name: str) -> str:
    """A class name as Keras names its weights' group in the file (`keras.src.utils.naming`)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def saved_layers(model_path: Path) -> list[SavedLayer]:
    """The layers of a Sequential model saved as a `.keras` file, read without building it, the
    input layer first (no weights).

    Raises:
        ValueError: the file is missing or damaged, or holds no Sequential model.
    """
    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
        if config.get("class_name") != "Sequential":
            raise ValueError(f"a {config.get('class_name')} model, not a Sequential one")
        with h5py.File(io.BytesIO(weights), "r") as file:
            return _layers_with_weights(config["config"]["layers"], file)
    except (OSError, KeyError, TypeError, AttributeError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ValueError(f"{model_path.name} cannot be read: {error}") from error


def _layers_with_weights(layers: list[Mapping], file: h5py.File) -> list[SavedLayer]:
    """Each layer's weights, found where Keras' saving code puts them: a Sequential model's layers
    (the input layer is not one) in order, each named by its class, numbered from the second."""
    seen: dict[str, int] = {}
    read = []
    for layer in layers:
        if layer["class_name"] == "InputLayer":
            read.append(SavedLayer("InputLayer", layer["config"]))
            continue
        group = _snake_case(layer["class_name"])
        count = seen[group] = seen.get(group, -1) + 1
        variables = file[f"layers/{group}{f'_{count}' if count else ''}/vars"]
        weights = tuple(np.asarray(variables[str(index)]) for index in range(len(variables)))
        read.append(SavedLayer(layer["class_name"], layer["config"], weights))
    return read


def _saved_layers_problem() -> str | None:
    """What `saved_layers` reads wrongly from a small model Keras saves now, if anything."""
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), keras.layers.Dropout(0.1),
                              keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.Dense(3)])  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "small.keras")
        try:
            read = saved_layers(Path(folder) / "small.keras")
        except ValueError as error:
            return f"saved_layers cannot read a .keras file Keras wrote: {error}"
    expected = [layer.get_weights() for layer in model.layers]
    found = [list(layer.weights) for layer in read[1:]]
    same = len(found) == len(expected) and all(
        len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        for a, b in zip(found, expected, strict=True)
    )
    return None if same else "model.weights.h5 no longer keeps a layer's weights at layers/<class>[_<n>]/vars/<i>"


def compiled_step_flops(model: keras.Model, batch_size: int) -> tuple[float, float] | None:
    """XLA's FLOPs for one training step and one evaluation step of a compiled `model` on a batch
    of `batch_size` zeros, from the cost analysis of each step compiled as `fit` compiles it
    (elementwise work, the loss and the optimizer's update included); None on TensorFlow, whose
    steps this cannot see. Compiling takes about a second; the model's weights are not changed."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    x = np.zeros((batch_size, *model.inputs[0].shape[1:]), "float32")
    y = np.zeros((batch_size, *model.outputs[0].shape[1:]), "float32")
    model._symbolic_build(data_batch=(x, y))  # fit's own build, before its first step
    trainable, non_trainable, metrics = (
        [variable.value for variable in variables]
        for variables in (model.trainable_variables, model.non_trainable_variables, model.metrics_variables)
    )
    optimizer = [variable.value for variable in model.optimizer.variables]
    train = jax.jit(model.train_step).lower((trainable, non_trainable, optimizer, metrics), (x, y))
    test = jax.jit(model.test_step).lower((trainable, non_trainable, metrics), (x, y))
    return _xla_flops(train), _xla_flops(test)


def _xla_flops(lowered) -> float:
    """The "flops" of XLA's cost analysis of a lowered function (a dict, or a list of one dict in
    some JAX versions)."""
    analysis = lowered.compile().cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    return float(analysis["flops"])


def keras_assumptions() -> list[str]:
    """What no longer holds of the six uses above in the installed Keras, one line each (empty:
    all hold). Cheap: it inspects Keras' code, saves one small model and trains nothing (the test
    also trains)."""
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
    saved = _saved_layers_problem()
    if saved:
        problems.append(saved)
    return problems + _step_assumptions() + _early_stopping_assumptions()


def _step_assumptions() -> list[str]:
    """What no longer holds of the fifth and seventh uses (`compiled_step_flops`,
    `steps_in_one_call`), one line each."""
    problems = []
    if not callable(getattr(keras.Model, "_symbolic_build", None)):
        problems.append("keras.Model has no _symbolic_build to build the optimizer and metrics before a step")
    if keras.backend.backend() == "jax":
        for step in ("train_step", "test_step"):
            if list(inspect.signature(getattr(keras.Model, step)).parameters) != ["self", "state", "data"]:
                problems.append(f"the JAX trainer's {step} is no longer {step}(state, data)")
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
        model.make_train_function()
        if list(inspect.signature(model.train_function).parameters) != ["state", "iterator"]:
            problems.append("the JAX trainer's train_function is no longer train_function(state, iterator)")
    return problems


def _early_stopping_assumptions() -> list[str]:
    """What no longer holds of the sixth use (EarlyStopping's progress), one line each: a stop
    after one epoch without improvement, read and put back into a fresh callback, which then
    restores the best weights at on_train_end."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    first = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    first.set_model(model)
    first.on_train_begin()
    best = [np.array(weight) for weight in model.get_weights()]
    first.on_epoch_end(0, {"val_loss": 1.0})
    model.set_weights([weight + 1 for weight in best])
    first.on_epoch_end(1, {"val_loss": 2.0})
    try:
        state = early_stopping_state(first)
    except (AttributeError, TypeError, ValueError):
        return ["keras.callbacks.EarlyStopping no longer keeps best, best_epoch, wait and stopped_epoch"]
    if state != {"best": 1.0, "best_epoch": 0, "wait": 1, "stopped_epoch": 1} or not model.stop_training:
        return [f"keras.callbacks.EarlyStopping no longer counts patience as assumed (it holds {state})"]
    second = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    second.set_model(model)
    second.on_train_begin()
    restore_early_stopping(second, state, first.best_weights)
    second.on_train_end()
    if not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), best, strict=True)):
        return ["keras.callbacks.EarlyStopping no longer restores best_weights at on_train_end"]
    return []
