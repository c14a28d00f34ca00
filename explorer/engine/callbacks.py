"""The Keras callbacks of a training group: seeds, clock, per-model history, progress, early
stopping, checkpoint.

They do for one model or a fused group what a resumable, reproducible run needs: every epoch
reseeded from (seed, epoch), its seconds measured, each model's `history.csv` row written before
the epoch's checkpoint, a short progress line for a fused group, and early stopping (a model
that trains alone) whose progress is checkpointed with the epoch's weights.
"""

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from explorer.config.defaults import FIRST_LAYER_EPOCHS, FIRST_LAYER_UNITS
from explorer.errors import RunFolderWriteError
from explorer.models.backend import keras
from explorer.models.keras_compat import EpochSavingBackupAndRestore, early_stopping_state, restore_early_stopping
from explorer.models.variants import first_dense_layer
from explorer.store.group_checkpoint import WEIGHTS_FILE, GroupCheckpoint
from explorer.store.trial_folder import HISTORY_METRICS, TrialFolder
from explorer.views.tables import WIDTH, wrapped


class EpochClock(keras.callbacks.Callback):
    """Adds each epoch's wall-clock seconds to the logs and keeps them in `seconds` (the epochs
    this process ran)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)
        if logs is not None:
            logs["seconds"] = self.seconds[-1]


class EpochSeeds(keras.callbacks.Callback):
    """Reseeds at the start of every epoch from (seed, epoch).

    The epoch's shuffle order and dropout masks then depend on the epoch number alone, not on how
    many epochs this process has run, so a model resumed from its checkpoint trains exactly as an
    uninterrupted one would (Keras' BackupAndRestore restores weights and optimizer, not RNG state).
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        epoch_seed = (self.seed + 7_919 * (epoch + 1)) % 2**31
        keras.utils.set_random_seed(epoch_seed)  # NumPy's global RNG shuffles the arrays fit is given
        for variable in self.model.variables:
            if variable.path.endswith("seed_generator_state"):  # Dropout's own RNG state
                variable.assign(np.array([epoch_seed, 0], dtype=variable.dtype))


class StopWhenAsked(keras.callbacks.Callback):
    """Raises KeyboardInterrupt before the next compiled call once a Ctrl-C was noted
    (`interrupts.interrupts_noted`). A press whose KeyboardInterrupt Python dropped (raised inside a
    garbage-collection callback, XLA's among them) would otherwise let the group train on to its
    end. It looks before each call (every `steps_per_execution` batches), in the main thread, so
    Keras still runs batches without waiting for their results."""

    def __init__(self, stop_requested: Callable[[], bool]):
        super().__init__()
        self.stop_requested = stop_requested

    def _stop_if_asked(self, batch, logs=None):
        if self.stop_requested():
            raise KeyboardInterrupt

    on_train_batch_begin = on_test_batch_begin = on_predict_batch_begin = _stop_if_asked


BRANCH_LOSS = "sample_loss"  # a fused branch's loss, averaged over samples


def branch_log_key(name: str, metric: str, fused: bool) -> str:
    """Where Keras logs `metric` of output `name`: `loss`, or `<name>_sample_loss` /
    `val_<name>_sample_loss` in a fused model. The epoch's seconds belong to the whole model."""
    if not fused or metric == "seconds":
        return metric
    validation, base = metric.startswith("val_"), metric.removeprefix("val_")
    key = f"{name}_{BRANCH_LOSS if base == 'loss' else base}"
    return f"val_{key}" if validation else key


class BranchHistory(keras.callbacks.Callback):
    """Writes every branch's `history.csv`, one row per epoch, and notes when a branch diverges.

    It does the work of Keras' CSVLogger and TerminateOnNaN for a fused model, whose logs hold every
    branch under its own prefix: a branch whose loss turns NaN or infinite gets no more rows (its
    last row shows the bad loss) while the others train on, since it shares no weights with them;
    training stops when every branch has diverged. It looks once per epoch and never per batch, so
    Keras is free to run batches without waiting for their results.
    """

    def __init__(self, names: Sequence[str], folders: Sequence[TrialFolder]):
        super().__init__()
        self.folders = dict(zip(names, folders, strict=True))
        # A branch that diverged before an interruption stays diverged when training resumes.
        self.diverged = {name for name, folder in self.folders.items() if folder.diverged_before()}

    def on_epoch_end(self, epoch, logs=None):
        fused = len(self.folders) > 1
        for name, folder in self.folders.items():
            if name in self.diverged:
                continue
            row = {metric: float(logs[branch_log_key(name, metric, fused)]) for metric in HISTORY_METRICS}
            folder.append_epoch(epoch, row)
            if not (math.isfinite(row["loss"]) and math.isfinite(row["val_loss"])):
                self.diverged.add(name)
        if len(self.diverged) == len(self.folders):
            self.model.stop_training = True


class BranchTensorBoard(keras.callbacks.Callback):
    """Each member's epoch scalars for TensorBoard, as Keras' TensorBoard callback writes them for
    one model (`epoch_loss` and `epoch_accuracy` in `<root>/<folder>/train` and `.../validation`),
    from a fused model's logs too, where every branch has its own keys: so `--tensorboard` keeps
    training fused. Once per epoch, never per batch."""

    def __init__(self, members: Sequence[tuple[str, str]], root: Path, fused: bool):
        super().__init__()
        self.members, self.root, self.fused = list(members), root, fused
        self.writers: dict[tuple[str, str], object] = {}

    def on_train_begin(self, logs=None):
        import tensorflow as tf  # TensorBoard's summary writer, installed with the TensorFlow backend

        for name, folder in self.members:
            for split in ("train", "validation"):
                self.writers[name, split] = tf.summary.create_file_writer(str(self.root / folder / split))

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        for name, _ in self.members:
            for split, prefix in (("train", ""), ("validation", "val_")):
                with self.writers[name, split].as_default():
                    for metric in ("loss", "accuracy"):
                        value = float(logs[branch_log_key(name, prefix + metric, self.fused)])
                        tf.summary.scalar(f"epoch_{metric}", value, step=epoch)

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


class FirstLayerSnapshots(keras.callbacks.Callback):
    """After epochs 1, 2, 5, 10 and the last (`FIRST_LAYER_EPOCHS`), each member's first
    `FIRST_LAYER_UNITS` first-layer units in float16, kept in its folder
    (`TrialFolder.add_first_layer`): what the report shows of how a first layer learned. A fused
    member's layers are its branch's, so they hold the epoch's weights too."""

    def __init__(self, members: Sequence[keras.Model], folders: Sequence[TrialFolder], epochs: int):
        super().__init__()
        found = [first_dense_layer(member) for member in members]
        self.kernels = [  # a network whose first Dense layer is its output has templates, not units
            (dense[0].kernel, folder) for dense, folder in zip(found, folders, strict=True) if dense and not dense[1]
        ]
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 not in FIRST_LAYER_EPOCHS and epoch + 1 != self.epochs:
            return
        for kernel, folder in self.kernels:
            units = keras.ops.convert_to_numpy(kernel)[:, :FIRST_LAYER_UNITS].astype(np.float16)
            folder.add_first_layer(epoch + 1, units)


class GroupProgress(keras.callbacks.Callback):
    """One short line per epoch for a group, in place of Keras' progress (for a fused group, a line
    of every branch's metrics): the epoch, its seconds, the validation accuracy (a fused group's
    spread, and which branch leads), and about how long the run has left (`time_left(epoch,
    seconds)`, `engine.time_left`)."""

    def __init__(
        self,
        names: Sequence[str],
        epochs: int,
        log: Callable[[str], None],
        time_left: Callable[[int, float], str] = lambda epoch, seconds: "",
    ):
        super().__init__()
        self.names, self.epochs, self.log, self.time_left = list(names), epochs, log, time_left

    def on_epoch_end(self, epoch, logs=None):
        fused = len(self.names) > 1
        accuracy = {name: float(logs[branch_log_key(name, "val_accuracy", fused)]) for name in self.names}
        best = max(accuracy, key=accuracy.get)
        spread = f"{min(accuracy.values()):.4f} to {accuracy[best]:.4f} ({best})" if fused else f"{accuracy[best]:.4f}"
        left = self.time_left(epoch, logs["seconds"])
        line = f"    epoch {epoch + 1}/{self.epochs}: {logs['seconds']:.1f} s, val acc {spread}"  # acc: as "test acc"
        if len(line + left) > WIDTH:  # within the terminal's columns: the time left on a line of its own
            line, left = wrapped(line, indent=" " * 6), "\n      " + left.removeprefix(", ") if left else ""
        self.log(line + left)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping on validation loss, keeping the best epoch's weights, whose progress
    survives an interruption.

    Its progress after each epoch (best value, best epoch, epochs waited, the epoch it stopped
    after) and the best weights go into that epoch's checkpoint folder, written by
    `EpochBackupAndRestore` with the epoch's own weights (`save_into`): a folder that exists holds
    both, so they always agree. When the checkpoint restores an epoch it restores them too
    (`restore_from`); when that epoch is the one it stopped after, `fit` trains no further epoch,
    and on_train_end restores the best weights as in a run never interrupted.

    Among fit's callbacks it comes before the checkpoint: its on_epoch_end must have counted the
    epoch before the checkpoint saves it, and its on_train_begin (which forgets) must run before
    the checkpoint restores.
    """

    def __init__(self, patience: int):
        super().__init__(monitor="val_loss", patience=patience, restore_best_weights=True)

    def save_into(self, folder: Path) -> None:
        GroupCheckpoint.write_stopping(folder, early_stopping_state(self), self.best_weights)

    def restore_from(self, folder: Path) -> bool:
        """Take back the progress saved in a checkpoint's epoch folder; True when it had stopped
        (no epoch is left to train).

        Raises:
            ValueError: the folder's early-stopping files are missing or damaged.
        """
        state, best_weights = GroupCheckpoint.read_stopping(folder)
        try:
            restore_early_stopping(self, state, best_weights)
        except KeyError as error:
            raise ValueError(f"{folder}: early stopping's progress has no {error}") from error
        return self.stopped_epoch > 0

    def fields(self) -> dict[str, int | None]:
        """What a result records: the patience, the 1-based epoch it stopped after (None: it ran
        every epoch) and the 1-based epoch whose weights were kept."""
        return {
            "early_stopping": self.patience,
            "stopped_epoch": self.stopped_epoch + 1 if self.stopped_epoch else None,
            "best_epoch": None if self.best_weights is None else self.best_epoch + 1,
        }


class EpochBackupAndRestore(EpochSavingBackupAndRestore):
    """Keras' BackupAndRestore, checkpointing once per epoch, consistent by construction.

    Keras writes the weights and then, in place, the epoch number beside them, so a kill between
    the two would pair new weights with the previous epoch's number and a resumed run would train
    that epoch twice. Here each epoch's weights and number are written into a folder of their own,
    `epoch-<N>`, first under a temporary name and then renamed in one step: a folder that exists is
    complete. The newest two are kept; restoring takes the newest that loads. The checkpoint is
    not deleted when `fit` ends: the group's files are written after that, and until they are, the
    checkpoint is the only copy of its epochs (`groups.train_and_record` closes it). Its files are
    `store.group_checkpoint.GroupCheckpoint`'s.

    An early stopping (`ResumableEarlyStopping`) given as `stopping` saves its progress into each
    epoch's folder and restores it with the epoch; a folder whose progress does not load is as
    damaged as one whose weights do not.

    It is also declared safe for Keras to call asynchronously: with save_freq="epoch" its batch hook
    does nothing, yet its presence alone would make Keras wait for every batch's results before
    starting the next.
    """

    async_safe = True

    def __init__(
        self,
        checkpoint: GroupCheckpoint,
        stopping: ResumableEarlyStopping | None = None,
        say: Callable[[str], None] = print,
    ):
        super().__init__(str(checkpoint.path), save_freq="epoch", double_checkpoint=False, delete_checkpoint=False)
        self.checkpoint = checkpoint
        self.stopping = stopping
        self.say = say  # where a line goes when a checkpoint generation cannot be read
        self.seconds = 0.0  # spent writing checkpoints, for the sweep's timings
        self.restored_epochs = 0  # epochs the restored checkpoint held: training continued after them

    def on_train_begin(self, logs=None):
        if not self.model.optimizer.built:  # optimizer state must exist before it can be loaded
            self.model.optimizer.build(self.model.trainable_variables)
        unreadable = []
        for saved in self.checkpoint.saved_epochs():
            try:
                self.model.load_weights(str(saved / WEIGHTS_FILE))
                stopped = self.stopping is not None and self.stopping.restore_from(saved)
            except (OSError, ValueError):  # a damaged file: the generation before is complete too
                unreadable.append(saved.name)
                continue
            self.restored_epochs = self.checkpoint.epoch_of(saved)
            # Stopped early after the restored epoch: fit's last epoch is then the restored one.
            self.continue_after(self.params["epochs"] if stopped else self.restored_epochs)
            break
        if unreadable:  # the plan said where training would continue: say where it does
            where = f"after epoch {self.restored_epochs}" if self.restored_epochs else "from the first epoch"
            self.say(f"checkpoint {', '.join(unreadable)} could not be read; training {where}")

    def save_epoch(self, finished_epochs: int) -> None:
        started = time.perf_counter()
        try:
            self.checkpoint.write_epoch(finished_epochs, self._write_state)
        except OSError as error:  # a full disk: stop, rather than train epochs that cannot be kept
            raise RunFolderWriteError(self.checkpoint.path, error) from error
        self.seconds += time.perf_counter() - started

    def _write_state(self, folder: Path) -> None:
        self.model.save_weights(str(folder / WEIGHTS_FILE))
        if self.stopping is not None:
            self.stopping.save_into(folder)
