"""Every run-folder file's shape, in one place: `result.json` (built here, for every outcome, and
checked by `result_problem`) and `history.csv` (its columns, read back checked).

`runs/<run-id>/` holds `run.json` (how the sweep was started) and one folder per trial (a
variant's first repeat under its name, later ones as `<name>@seed<N>`, written through
`store.trial_folder.TrialFolder`). It is the source of truth: every summary and figure is rebuilt
from it, and resume reads it.
"""

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from explorer.errors import DamagedFileError, shown
from explorer.models.trials import Trial
from explorer.store.files import now_iso, read_json, write_text_atomic

HISTORY_METRICS = ("accuracy", "loss", "seconds", "val_accuracy", "val_loss")  # history.csv's columns


RESULT_STATUSES = ("ok", "diverged", "stopped early", "failed")


# The figures of a finished model's result.json: finite numbers for "ok", numbers or null (a
# diverged loss is written as null) otherwise.
RESULT_FIGURES = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "train_accuracy", "train_loss")
# Costs a result may lack (a failed model, a layer XLA cannot count) but that are numbers when there.
RESULT_COSTS = ("train_seconds", "seconds_per_epoch", "flops_per_epoch", "train_flops")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def result_problem(record: object) -> str | None:
    """What is wrong with a `result.json` as parsed, in a few words; None when it has the shape
    `result_record` writes (names as text, numbers where numbers belong)."""
    if record is None:
        return "cannot be read as JSON"
    if not isinstance(record, dict):
        return f"is not a JSON object (it holds a {type(record).__name__})"
    for field in ("name", "trial", "trial_key", "status"):
        if not isinstance(record.get(field), str):
            return f"has no {field}"
    if record["status"] not in RESULT_STATUSES:
        return f"has an unknown status {shown(record['status'])}"
    for field in ("seed", "parameters", "repeat"):
        if not isinstance(record.get(field), int) or isinstance(record.get(field), bool):
            return f"has {field} = {shown(record.get(field))}, not a whole number"
    return _fields_problem(record) or (None if record["status"] == "failed" else _figures_problem(record))


def _fields_problem(record: Mapping) -> str | None:
    """What is wrong with a result's network fields and costs, or None."""
    if not isinstance(record.get("config"), dict):
        return f"has config = {shown(record.get('config'))}, not a table of the network's fields"
    for field in RESULT_COSTS:
        value = record.get(field)
        if value is not None and not (_is_number(value) and math.isfinite(value) and value >= 0):
            return f"has {field} = {shown(value)}, not a number"
    return None


def _figures_problem(record: Mapping) -> str | None:
    """What is wrong with a trained model's figures in its `result.json`, or None."""
    if not isinstance(record.get("epochs_run"), int) or record["epochs_run"] < 1:
        return f"has epochs_run = {shown(record.get('epochs_run'))}, not a count of epochs"
    for field in RESULT_FIGURES:
        value = record.get(field)
        finished = record["status"] == "ok"
        if not (_is_number(value) and math.isfinite(value)) and (finished or value is not None):
            return f"has {field} = {shown(value)}, not a number"
    return None


def read_results(run_dir: Path) -> list[dict]:
    """Every model's `result.json` in `run_dir` that has the shape it should (`result_problem`), in
    folder-name order; a damaged one is left out (`--resume` retrains its model)."""
    results = (read_json(path) for path in sorted(run_dir.glob("*/result.json")))
    return [result for result in results if result_problem(result) is None]


def _history_rows(history_csv: Path) -> list[dict[str, str]]:
    try:
        with history_csv.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, ValueError, csv.Error) as error:  # UnicodeDecodeError is a ValueError
        raise DamagedFileError(f"{history_csv}: cannot be read ({type(error).__name__})") from None


def read_history(history_csv: Path) -> dict[str, list[float]]:
    """A model's `history.csv` as column -> values (as Keras' `History.history`).

    Raises:
        DamagedFileError: when it cannot be read, or lacks a column or an epoch's value.
    """
    rows = _history_rows(history_csv)
    columns = rows[0].keys() if rows else ()
    try:
        history = {column: [float(row[column]) for row in rows] for column in columns if column != "epoch"}
    except (ValueError, TypeError) as error:
        raise DamagedFileError(f"{history_csv}: cannot be read ({type(error).__name__})") from None
    missing = [metric for metric in HISTORY_METRICS if metric not in history]
    if missing or not rows:
        raise DamagedFileError(f"{history_csv}: {'no epochs' if not rows else 'no column ' + ', '.join(missing)}")
    return history


def history_epochs(history_csv: Path) -> list[int]:
    """The epochs `history.csv` holds a complete row of, in file order (an epoch repeated after an
    interruption appears twice).

    Raises:
        DamagedFileError: when it is missing, cannot be read, or an epoch is not a whole number.
    """
    rows = _history_rows(history_csv)
    try:
        return [int(row["epoch"]) for row in rows if all(row.get(metric) for metric in ("epoch", *HISTORY_METRICS))]
    except (KeyError, ValueError, TypeError) as error:
        raise DamagedFileError(f"{history_csv}: cannot be read ({type(error).__name__})") from None


def history_is_finite(history: Mapping[str, Sequence[float]]) -> bool:
    return all(math.isfinite(value) for key in ("loss", "val_loss") for value in history.get(key, ()))


def finish_history(history_csv: Path) -> dict[str, list[float]]:
    """Read `history.csv` back, keeping one complete row per epoch (the last), and rewrite it so.

    After an interruption between the CSV row of an epoch and its checkpoint, the resumed run
    repeats that epoch and appends it again; a kill during a write can leave a partial last row.
    """
    with history_csv.open(newline="") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle) if all(row.values())}
    ordered = [rows[epoch] for epoch in sorted(rows)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ordered[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(ordered)
    write_text_atomic(history_csv, buffer.getvalue())
    return read_history(history_csv)


def result_record(
    trial: Trial,
    status: str,
    context: Mapping[str, object],
    *,
    history: Mapping[str, Sequence[float]] | None = None,
    test: Mapping[str, float] | None = None,
    reason: str | None = None,
) -> dict:
    """A trial's `result.json`, for every outcome: "ok", "diverged", "stopped early" or "failed".

    Args:
        trial: the trial.
        status: its outcome.
        context: facts recorded as they are (trial_key, data source, versions, backend, early
            stopping's `early_stopping`, `stopped_epoch` and `best_epoch`, ...). Its `best_epoch`,
            when a number, is the 1-based epoch whose weights the model keeps (early stopping's
            best): that epoch's validation and training figures are recorded, as the test figures
            are the kept model's; otherwise the last epoch's.
        history: its per-epoch figures (`read_history`), every epoch run (`epochs_run` counts
            them); None when it failed before an epoch.
        test: its test "accuracy" and "loss", for a finished model.
        reason: why it is not "ok", in one line.
    """
    record: dict[str, object] = {
        "name": trial.name,
        "trial": trial.folder,
        "repeat": trial.repeat,
        "status": status,
        "config": dict(trial.facts.description),
        "loss_function": trial.facts.description["loss"],
        "seed": trial.seed,
        "parameters": trial.facts.parameters,
        "test_accuracy": None if test is None else float(test["accuracy"]),
        "test_loss": None if test is None else float(test["loss"]),
    }
    if history is not None:
        kept = context.get("best_epoch")
        row = kept - 1 if isinstance(kept, int) and 1 <= kept <= len(history["loss"]) else -1
        last = {key: values[row] for key, values in history.items()}
        record.update(
            val_accuracy=last["val_accuracy"],
            val_loss=last["val_loss"],
            train_accuracy=last["accuracy"],
            train_loss=last["loss"],
            epochs_run=len(history["loss"]),
            train_seconds=round(sum(history["seconds"]), 3),
            seconds_per_epoch=round(float(np.median(history["seconds"])), 3),
        )
    if reason is not None:
        record["reason"] = reason[:300]
    return {**record, **context, "finished_at": now_iso()}
