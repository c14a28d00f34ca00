"""The Keras callbacks of a training group: seeds, clock, per-model history, progress, early
stopping, checkpoint.

They do for one model or a fused group what a resumable, reproducible run needs: every epoch
reseeded from (seed, epoch), its seconds measured, each model's `history.csv` row written before
the epoch's checkpoint, a short progress line for a fused group, and early stopping (a model
that trains alone) whose progress is checkpointed with the epoch's weights.
"""

import csv
import io
import json
import math
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from explorer.errors import RunFolderWriteError
from explorer.models.backend import keras
from explorer.models.keras_compat import EpochSavingBackupAndRestore, early_stopping_state, restore_early_stopping
from explorer.store.files import append_text, read_json
from explorer.store.folders import CHECKPOINT_PREFIX
from explorer.store.records import HISTORY_METRICS, saved_epochs
from explorer.store.resume import diverged_before


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

    def __init__(self, names: Sequence[str], history_csvs: Sequence[Path]):
        super().__init__()
        self.paths = dict(zip(names, history_csvs, strict=True))
        # A branch that diverged before an interruption stays diverged when training resumes.
        self.diverged = {name for name, path in self.paths.items() if diverged_before(path)}

    def on_epoch_end(self, epoch, logs=None):
        fused = len(self.paths) > 1
        for name, path in self.paths.items():
            if name in self.diverged:
                continue
            row = {metric: float(logs[branch_log_key(name, metric, fused)]) for metric in HISTORY_METRICS}
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=["epoch", *HISTORY_METRICS], lineterminator="\n")
            if not path.exists() or path.stat().st_size == 0:
                writer.writeheader()
            writer.writerow({"epoch": epoch, **row})
            append_text(path, buffer.getvalue())
            if not (math.isfinite(row["loss"]) and math.isfinite(row["val_loss"])):
                self.diverged.add(name)
        if len(self.diverged) == len(self.paths):
            self.model.stop_training = True


class GroupProgress(keras.callbacks.Callback):
    """One short line per epoch for a fused group, in place of Keras' line of every branch's
    metrics: the epoch, its seconds, and the spread of the branches' validation accuracy."""

    def __init__(self, names: Sequence[str], epochs: int, log: Callable[[str], None]):
        super().__init__()
        self.names, self.epochs, self.log = list(names), epochs, log

    def on_epoch_end(self, epoch, logs=None):
        accuracy = {name: float(logs[branch_log_key(name, "val_accuracy", True)]) for name in self.names}
        best = max(accuracy, key=accuracy.get)
        self.log(
            f"    epoch {epoch + 1}/{self.epochs}: {logs['seconds']:.1f} s, validation accuracy "
            f"{min(accuracy.values()):.4f} to {accuracy[best]:.4f} ({best})"
        )


EARLY_STOPPING_FILE = "early_stopping.json"  # in each checkpointed epoch's folder: the progress
BEST_WEIGHTS_FILE = "best_weights.npz"  # beside it: the best epoch's weights, in get_weights() order


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
        (folder / EARLY_STOPPING_FILE).write_text(json.dumps(early_stopping_state(self)))
        if self.best_weights is not None:
            np.savez(folder / BEST_WEIGHTS_FILE, *self.best_weights)

    def restore_from(self, folder: Path) -> bool:
        """Take back the progress saved in a checkpoint's epoch folder; True when it had stopped
        (no epoch is left to train).

        Raises:
            ValueError: the folder's early-stopping files are missing or damaged.
        """
        state = read_json(folder / EARLY_STOPPING_FILE)
        if not isinstance(state, dict):
            raise ValueError(f"{folder / EARLY_STOPPING_FILE} is missing or damaged")
        best_weights = None
        if state.get("best") is not None:
            try:
                with np.load(folder / BEST_WEIGHTS_FILE, allow_pickle=False) as saved:
                    best_weights = [saved[f"arr_{index}"] for index in range(len(saved.files))]
            except (OSError, KeyError, EOFError, zipfile.BadZipFile) as error:
                raise ValueError(f"{folder / BEST_WEIGHTS_FILE} cannot be read ({error})") from error
        try:
            restore_early_stopping(self, state, best_weights)
        except KeyError as error:
            raise ValueError(f"{folder / EARLY_STOPPING_FILE} has no {error}") from error
        return self.stopped_epoch > 0

    def facts(self) -> dict[str, int | None]:
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
    checkpoint is the only copy of its epochs (`recording.train_and_record` removes it).

    An early stopping (`ResumableEarlyStopping`) given as `stopping` saves its progress into each
    epoch's folder and restores it with the epoch; a folder whose progress does not load is as
    damaged as one whose weights do not.

    It is also declared safe for Keras to call asynchronously: with save_freq="epoch" its batch hook
    does nothing, yet its presence alone would make Keras wait for every batch's results before
    starting the next.
    """

    async_safe = True
    KEPT = 2

    def __init__(
        self, backup_dir: str, stopping: ResumableEarlyStopping | None = None, say: Callable[[str], None] = print
    ):
        super().__init__(backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=False)
        self.folder = Path(backup_dir)
        self.stopping = stopping
        self.say = say  # where a line goes when a checkpoint generation cannot be read
        self.seconds = 0.0  # spent writing checkpoints, for the sweep's timings
        self.restored_epochs = 0  # epochs the restored checkpoint held: training continued after them

    def on_train_begin(self, logs=None):
        if not self.model.optimizer.built:  # optimizer state must exist before it can be loaded
            self.model.optimizer.build(self.model.trainable_variables)
        unreadable = []
        for saved in saved_epochs(self.folder):
            try:
                self.model.load_weights(str(saved / "latest.weights.h5"))
                stopped = self.stopping is not None and self.stopping.restore_from(saved)
            except (OSError, ValueError):  # a damaged file: the generation before is complete too
                unreadable.append(saved.name)
                continue
            self.restored_epochs = int(saved.name.removeprefix(CHECKPOINT_PREFIX))
            # Stopped early after the restored epoch: fit's last epoch is then the restored one.
            self.continue_after(self.params["epochs"] if stopped else self.restored_epochs)
            break
        if unreadable:  # the plan said where training would continue: say where it does
            where = f"after epoch {self.restored_epochs}" if self.restored_epochs else "from the first epoch"
            self.say(f"checkpoint {', '.join(unreadable)} could not be read; training {where}")

    def save_epoch(self, finished_epochs: int) -> None:
        started = time.perf_counter()
        try:
            self._save_epoch(finished_epochs)
        except OSError as error:  # a full disk: stop, rather than train epochs that cannot be kept
            raise RunFolderWriteError(self.folder, error) from error
        self.seconds += time.perf_counter() - started

    def _save_epoch(self, epoch: int) -> None:
        partial = self.folder / f".{CHECKPOINT_PREFIX}{epoch}.partial"
        shutil.rmtree(partial, ignore_errors=True)  # left by a kill during an earlier attempt
        partial.mkdir(parents=True)
        self.model.save_weights(str(partial / "latest.weights.h5"))
        (partial / "training_metadata.json").write_text(json.dumps({"epoch": epoch}))
        if self.stopping is not None:
            self.stopping.save_into(partial)
        final = self.folder / f"{CHECKPOINT_PREFIX}{epoch}"
        shutil.rmtree(final, ignore_errors=True)  # the same epoch saved by an interrupted run
        os.replace(partial, final)
        for old in saved_epochs(self.folder)[self.KEPT :]:
            shutil.rmtree(old, ignore_errors=True)
