"""A trial's folder: the one owner of the files a trial writes while it trains and once it is done.

`trial.json` (what trains there: fingerprint, seed, network), `history.csv` (a row per finished
epoch, appended while it trains), and once it finished `test_predictions.npy`, `model.keras`,
`curves.png`, `model_summary.txt` and, last, `result.json`: its presence means the trial finished.
A trial that failed gets `traceback.txt` beside its `result.json`. A rider (trained unrecorded, only
so that its fused group's checkpoint loads) has a scratch folder inside that checkpoint instead.
Every file's shape is checked where it is read (`store.schema`, `store.resume`).
"""

import csv
import dataclasses
import io
import shutil
import traceback
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from explorer.errors import DamagedFileError, UserInputError, failure_reason
from explorer.models.trials import Trial
from explorer.store.files import (
    append_text,
    move_aside,
    read_json,
    save_array_atomic,
    save_arrays_atomic,
    save_figure,
    save_model_atomic,
    write_json_atomic,
    write_text_atomic,
)
from explorer.store.resume import ResumeAction
from explorer.store.schema import (
    HISTORY_METRICS,
    finish_history,
    history_is_finite,
    read_history,
    result_problem,
    result_record,
)

if TYPE_CHECKING:
    import keras

__all__ = ["HISTORY_METRICS", "TrialFolder", "history_is_finite"]

RESULT_FILE = "result.json"  # written last: the trial finished
FIRST_LAYER_FILE = "first_layer_epochs.npz"  # a few first-layer units after a few epochs: epoch_<N> arrays
HISTORY_FILE = "history.csv"
TRACEBACK_FILE = "traceback.txt"


@dataclasses.dataclass(frozen=True)
class TrialFolder:
    """One trial's folder in a run (or a rider's scratch folder), and the trial that trains there."""

    path: Path
    trial: Trial
    key: str  # the trial's fingerprint (`models.trials.trial_key`)

    @property
    def history_csv(self) -> Path:
        return self.path / HISTORY_FILE

    def finished(self) -> bool:
        return (self.path / RESULT_FILE).exists()

    def open(self, action: ResumeAction, log: Callable[[str], None]) -> None:
        """Make the folder ready to train (`action` from `resume.plan_resume`): an old attempt is
        moved aside, for the reason the action gives; `trial.json` records what trains there.

        Raises:
            UserInputError: when the folder cannot be written.
        """
        try:
            if action.kind == "replace":
                aside = move_aside(self.path).relative_to(self.path.parent)
                log(f"    {self.trial.folder}: {action.why}; retraining it (old folder moved to {aside})")
            elif action.kind == "continue" and action.epochs:
                log(f"    {self.trial.folder}: continuing after epoch {action.epochs}, from its checkpoint")
            self.path.mkdir(parents=True, exist_ok=True)
            record = {"trial_key": self.key, "seed": self.trial.seed, "config": dict(self.trial.facts.description)}
            write_json_atomic(self.path / "trial.json", record)
        except OSError as error:
            raise UserInputError(f"{self.path}: cannot write there ({error.strerror or error})") from None

    def start(self, resuming: bool) -> None:
        """Before its group trains: the folder made; without a checkpoint to continue from
        (`resuming` False) the history it kept is stale (its epochs train again), so it goes."""
        self.path.mkdir(parents=True, exist_ok=True)
        if not resuming:
            self.history_csv.unlink(missing_ok=True)
            (self.path / FIRST_LAYER_FILE).unlink(missing_ok=True)

    def diverged_before(self) -> bool:
        """Whether the history kept from before an interruption ends in a loss that diverged: such a
        model stays diverged when its group continues (it gets no more rows)."""
        try:
            return self.history_csv.exists() and not history_is_finite(read_history(self.history_csv))
        except DamagedFileError:  # a row cut short by the interruption; finish_history drops it
            return False

    def append_epoch(self, epoch: int, row: Mapping[str, float]) -> None:
        """One epoch's row of `history.csv` (`HISTORY_METRICS`), the header first in a new file."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epoch", *HISTORY_METRICS], lineterminator="\n")
        if not self.history_csv.exists() or self.history_csv.stat().st_size == 0:
            writer.writeheader()
        writer.writerow({"epoch": epoch, **{metric: row[metric] for metric in HISTORY_METRICS}})
        append_text(self.history_csv, buffer.getvalue())

    def add_first_layer(self, epoch: int, units: np.ndarray) -> None:
        """Keep `units` (784 x a few, the first layer after 1-based `epoch`) beside the ones kept."""
        kept = {**self.first_layer_epochs(), epoch: units}
        save_arrays_atomic(self.path / FIRST_LAYER_FILE, {f"epoch_{e}": kept[e] for e in sorted(kept)})

    def first_layer_epochs(self) -> dict[int, np.ndarray]:
        return first_layer_epochs(self.path)

    def finish_history(self) -> dict[str, list[float]]:
        """The history read back with one complete row per epoch, and rewritten so."""
        return finish_history(self.history_csv)

    def write_model_files(
        self, model: "keras.Model | None", predictions: np.ndarray | None, curves: Figure, summary: str | None
    ) -> None:
        """What a trained trial keeps beside its result: the model and its predicted digits (none
        when it diverged), its curves and its summary. `write_result` comes after."""
        if predictions is not None:
            save_array_atomic(self.path / "test_predictions.npy", predictions)
        if model is not None:
            save_model_atomic(model, self.path / "model.keras")
        save_figure(curves, self.path / "curves.png")
        if summary:
            write_text_atomic(self.path / "model_summary.txt", summary + "\n")

    def write_result(self, status: str, context: Mapping[str, object], **figures: object) -> dict:
        """`result.json` (`schema.result_record`), written last; returns the record."""
        record = result_record(self.trial, status, context, **figures)
        write_json_atomic(self.path / RESULT_FILE, record)
        return record

    def write_failure(self, error: BaseException, context: Mapping[str, object]) -> dict:
        """A trial that raised: its traceback in `traceback.txt`, named by its `result.json`."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path / TRACEBACK_FILE, "".join(traceback.format_exception(error)))
        reason = f"{failure_reason(error)} (traceback in {self.trial.folder}/{TRACEBACK_FILE})"
        return self.write_result("failed", context, reason=reason)

    def read_history(self) -> dict[str, list[float]] | None:
        """Its `history.csv` as column -> values; None when it is missing or damaged."""
        try:
            return read_history(self.history_csv)
        except DamagedFileError:
            return None

    def read_result(self) -> dict | None:
        """Its `result.json`, when it has the shape `result_record` writes; None otherwise."""
        record = read_json(self.path / RESULT_FILE)
        return record if result_problem(record) is None else None

    def copy_into(self, folder: Path, *, history_only: bool = False) -> None:
        """Copy the folder, or only its history, into `folder/<its name>` (what a Ray report carries
        to a retried trial or to a driver that does not share the run folder)."""
        target = folder / self.path.name
        if not history_only:
            shutil.copytree(self.path, target, ignore=shutil.ignore_patterns("checkpoint"))
        elif self.history_csv.exists():
            target.mkdir()
            shutil.copy2(self.history_csv, target / HISTORY_FILE)

    def take_history_from(self, folder: Path) -> None:
        """Put back the history `copy_into` carried (a retried trial continues from it)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if (folder / self.path.name / HISTORY_FILE).exists():
            shutil.copy2(folder / self.path.name / HISTORY_FILE, self.history_csv)

    def take_finished_from(self, folder: Path) -> None:
        """Put back a finished trial's folder that `copy_into` carried; nothing when it had not finished."""
        if (folder / self.path.name / RESULT_FILE).exists():
            shutil.copytree(folder / self.path.name, self.path, dirs_exist_ok=True)


def first_layer_epochs(trial_dir: Path) -> dict[int, np.ndarray]:
    """The first-layer units a trial kept after each epoch (`TrialFolder.add_first_layer`), by
    1-based epoch; none when the file is missing or damaged."""
    try:
        with np.load(trial_dir / FIRST_LAYER_FILE, allow_pickle=False) as saved:
            return {int(name.removeprefix("epoch_")): saved[name] for name in saved.files if name[6:].isdigit()}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return {}
