"""The run folder: paths, atomic writes, the one result record, and what --resume decides.

`runs/<run-id>/` holds `run.json` (how the sweep was started) and one folder per trial (a
variant's first repeat under its name, later ones as `<name>@seed<N>`). It is the source of truth:
every summary and figure is rebuilt from it, and `--resume` reads it to decide what is left to do.
Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written file under a final name.
"""

import contextlib
import csv
import dataclasses
import datetime
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import filelock
import numpy as np
from matplotlib.figure import Figure

from explorer.backend import keras
from explorer.errors import DamagedFileError, RunFolderWriteError, UserInputError, shown
from explorer.folders import LOCK_FILE, LOCK_HOLDER, check_new_run_folder, check_resume_folder
from explorer.trials import Trial, group_id

HISTORY_METRICS = ("accuracy", "loss", "seconds", "val_accuracy", "val_loss")  # history.csv's columns
FUSED_FOLDER = ".fused"  # fused groups' checkpoints while they train; out of the summaries' sight
GROUP_RECORD = "group.json"  # in a fused group's checkpoint: its members, so a resume can re-form it
RIDERS_FOLDER = "riders"  # in a group's checkpoint: the histories of members that are not recorded
CHECKPOINT_PREFIX = "epoch-"  # a checkpoint's folder per saved epoch: epoch-<epochs finished>
# Tests set this to a moment's name (see `pause_if_asked`) to kill a run exactly there.
PAUSE_VARIABLE = "EXPLORER_PAUSE_AT"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def default_run_dir(base: Path = Path("runs")) -> Path:
    return base / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def pause_if_asked(moment: str) -> None:
    """Pause here for good when the environment names this `moment`, so that a fault test can kill
    the process at exactly this point (tests/test_faults.py); otherwise do nothing."""
    if os.environ.get(PAUSE_VARIABLE) == moment:
        print(f"paused at {moment}", flush=True)
        time.sleep(3600)


def _partial(path: Path) -> Path:
    # Keep the suffix: Keras and Matplotlib choose the format from it.
    return path.with_name(f".{path.stem}.partial{path.suffix}")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[Path]:
    """The temporary name to write `path` under, renamed into place once the block succeeds, so an
    interrupted run never leaves a half-written file under a final name.

    Raises:
        RunFolderWriteError: when the file cannot be written (a full disk, a read-only folder); the
            partial file is removed and the run stops there.
    """
    partial = _partial(path)
    try:
        yield partial
        os.replace(partial, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise RunFolderWriteError(path, error) from error


def write_text_atomic(path: Path, text: str) -> None:
    with writing(path) as partial:
        partial.write_text(text, encoding="utf-8")


def _json_ready(value: object) -> object:
    """NaN and infinity (a diverged loss) become null: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def write_json_atomic(path: Path, record: object) -> None:
    write_text_atomic(path, json.dumps(_json_ready(record), indent=2, allow_nan=False) + "\n")


def save_array_atomic(path: Path, array: np.ndarray) -> None:
    with writing(path) as partial:
        np.save(partial, array, allow_pickle=False)


def save_model_atomic(model: keras.Model, path: Path) -> None:
    with writing(path) as partial:
        model.save(partial)


def save_figure(figure: Figure, path: Path, dpi: int = 110) -> None:
    with writing(path) as partial:
        figure.savefig(partial, dpi=dpi)  # the figures lay themselves out (constrained layout)


def append_text(path: Path, text: str) -> None:
    """Append to a file that grows as the run goes (`history.csv`, `log.txt`).

    Raises:
        RunFolderWriteError: when it cannot be written.
    """
    try:
        with path.open("a", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as error:
        raise RunFolderWriteError(path, error) from error


class RunFolderLock:
    """The run folder's lock (a `filelock.FileLock` on `RUN_DIR/.lock`: `fcntl` on Linux and macOS,
    `msvcrt` on Windows), held until `close`. The system drops it when the process dies, so a
    killed sweep never leaves a lock behind."""

    def __init__(self, lock: filelock.BaseFileLock):
        self._lock = lock

    def close(self) -> None:
        self._lock.release()


def lock_run_dir(run_dir: Path, option: str) -> RunFolderLock:
    """Lock `run_dir` for this process and note its pid in `RUN_DIR/.lock-holder`.

    Raises:
        UserInputError: naming the pid of the process that holds the folder, or what is wrong
            with the lock file.
    """
    lock_path = run_dir / LOCK_FILE
    if lock_path.is_dir():
        raise UserInputError(
            f"{option} {run_dir}: its {LOCK_FILE} is a folder, not the lock file a sweep writes; "
            "remove that folder, then try again"
        )
    lock = filelock.FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        holder = read_text(run_dir / LOCK_HOLDER).strip()[:20] or "unknown"
        raise UserInputError(
            f"{option} {run_dir}: another sweep (pid {holder}) is writing to this run folder; "
            "wait for it to finish, or stop it, then try again"
        ) from None
    except OSError as error:
        raise UserInputError(f"{option} {run_dir}: cannot lock it ({error.strerror or error})") from None
    write_text_atomic(run_dir / LOCK_HOLDER, f"{os.getpid()}\n")
    return RunFolderLock(lock)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return ""


def prepare_run_dir(run_dir: Path, *, resume: bool) -> RunFolderLock:
    """Create (or, resuming, reopen) the run folder, check that it can be written, and lock it.

    Returns:
        The lock: the folder is this process's until it is closed.

    Raises:
        UserInputError: for a folder `folders` refuses, one that cannot be created or written,
            or one another sweep holds.
    """
    check_resume_folder(run_dir) if resume else check_new_run_folder(run_dir)
    option = "--resume" if resume else "--out"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise UserInputError(f"{option} {run_dir}: cannot write there ({error.strerror or error})") from None
    lock = lock_run_dir(run_dir, option)
    if not resume:  # checked again under the lock: another sweep may have started here meanwhile
        try:
            check_new_run_folder(run_dir)
        except UserInputError:
            lock.close()
            raise
    return lock


def read_json(path: Path) -> object:
    """A JSON file parsed (an object, a list, ...), or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class ResumeAction:
    """What to do with one trial's folder: "skip" (finished, same fingerprint, every file sound),
    "continue" (started with the same fingerprint, not finished: its group's checkpoint, holding
    `epochs` epochs, is picked up), "replace" (moved aside and retrained, for the reason `why`) or
    "train" (nothing there yet). `explorer.resume` decides."""

    kind: str
    why: str = ""
    epochs: int = 0


def move_aside(model_dir: Path) -> Path:
    """Move a model folder to `<run>/.replaced/<name>-<time>/`, out of the summaries' sight."""
    target = model_dir.parent / ".replaced" / f"{model_dir.name}-{datetime.datetime.now():%Y%m%d-%H%M%S-%f}"
    target.parent.mkdir(exist_ok=True)
    os.replace(model_dir, target)
    return target


RESULT_STATUSES = ("ok", "diverged", "stopped early", "failed")
# The figures of a finished model's result.json: finite numbers for "ok", numbers or null (a
# diverged loss is written as null) otherwise.
RESULT_FIGURES = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "train_accuracy", "train_loss")


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
    return None if record["status"] == "failed" else _figures_problem(record)


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


def saved_epochs(checkpoint_dir: Path) -> list[Path]:
    """A group checkpoint's complete epoch folders (`epoch-<epochs finished>`), newest first."""
    found = [
        path
        for path in checkpoint_dir.glob(f"{CHECKPOINT_PREFIX}*")
        if path.name.removeprefix(CHECKPOINT_PREFIX).isdigit()
    ]
    return sorted(found, key=lambda path: int(path.name.removeprefix(CHECKPOINT_PREFIX)), reverse=True)


def checkpoint_epochs(checkpoint_dir: Path) -> int:
    """How many epochs a group checkpoint holds: 0 when there is none."""
    newest = saved_epochs(checkpoint_dir)
    return int(newest[0].name.removeprefix(CHECKPOINT_PREFIX)) if newest else 0


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
        context: facts recorded as they are (trial_key, data source, versions, backend, ...).
        history: its per-epoch figures (`read_history`); None when it failed before an epoch.
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
        last = {key: values[-1] for key, values in history.items()}
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


def failure_reason(error: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"


def open_trial_folder(
    model_dir: Path, key: str, trial: Trial, action: ResumeAction, log: Callable[[str], None]
) -> None:
    """Make a trial's folder ready to train (`action` from `resume.trial_action`): an old attempt is
    moved aside, for the reason the action gives; `trial.json` records what trains there.

    Raises:
        UserInputError: when the folder cannot be written.
    """
    try:
        if action.kind == "replace":
            aside = move_aside(model_dir).relative_to(model_dir.parent)
            log(f"    {trial.folder}: {action.why}; retraining it (old folder moved to {aside})")
        elif action.kind == "continue" and action.epochs:
            log(f"    {trial.folder}: continuing after epoch {action.epochs}, from its checkpoint")
        model_dir.mkdir(parents=True, exist_ok=True)
        record = {"trial_key": key, "seed": trial.seed, "config": dict(trial.facts.description)}
        write_json_atomic(model_dir / "trial.json", record)
    except OSError as error:
        raise UserInputError(f"{model_dir}: cannot write there ({error.strerror or error})") from None


def group_checkpoint(run_dir: Path, group: Sequence[Trial], trial_keys: Sequence[str]) -> tuple[Path, str | None]:
    """Where a group checkpoints while it trains, and its fused-group identity: a lone model keeps
    its checkpoint in its own folder (no identity); a fused group in `RUN_DIR/.fused/<id>`."""
    if len(group) == 1:
        return run_dir / group[0].folder / "checkpoint", None
    identity = group_id(trial_keys)
    return run_dir / FUSED_FOLDER / identity, identity
