"""The run folder: paths, atomic writes, the one result record, and what --resume decides.

`runs/<run-id>/` holds `run.json` (how the sweep was started) and one folder per trial (a
variant's first repeat under its name, later ones as `<name>@seed<N>`). It is the source of truth:
every summary and figure is rebuilt from it, and `--resume` reads it to decide what is left to do.
Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written file under a final name.
"""

import csv
import dataclasses
import datetime
import fcntl
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np
from matplotlib.figure import Figure

from explorer.backend import keras
from explorer.errors import DamagedFileError, UserInputError
from explorer.trials import Trial, group_id

# The run folder's layout: 2 since models come from builders and trials are fingerprinted by the
# model's own configuration. A folder of another layout is refused by --resume.
LAYOUT = 2
LOCK_FILE = ".lock"  # held by the process that trains into the run folder
HISTORY_METRICS = ("accuracy", "loss", "seconds", "val_accuracy", "val_loss")  # history.csv's columns
FUSED_FOLDER = ".fused"  # fused groups' checkpoints while they train; out of the summaries' sight


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def default_run_dir(base: Path = Path("runs")) -> Path:
    return base / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def _partial(path: Path) -> Path:
    # Keep the suffix: Keras and Matplotlib choose the format from it.
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def write_text_atomic(path: Path, text: str) -> None:
    partial = _partial(path)
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


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
    partial = _partial(path)
    np.save(partial, array, allow_pickle=False)
    os.replace(partial, path)


def save_model_atomic(model: keras.Model, path: Path) -> None:
    partial = _partial(path)
    model.save(partial)
    os.replace(partial, path)


def save_figure(figure: Figure, path: Path, dpi: int = 110) -> None:
    partial = _partial(path)
    figure.savefig(partial, dpi=dpi)  # the figures lay themselves out (constrained layout)
    os.replace(partial, path)


def check_run_dir(run_dir: Path, names: Iterable[str], *, resume: bool) -> None:
    """Refuse a run folder that cannot be used, without touching it (so it runs before the data loads).

    Raises:
        UserInputError: when resuming, if the folder does not exist or has another layout; when not
            resuming, if a model folder in it already exists (nothing is overwritten: the message
            points to --resume).
    """
    if resume and not run_dir.is_dir():
        raise UserInputError(f"--resume {run_dir}: no such run folder to resume")
    if resume:
        check_layout(run_dir)
    existing = [name for name in names if (run_dir / name).exists()]
    if existing and not resume:
        raise UserInputError(
            f"--out {run_dir}: already holds models {', '.join(existing)}; continue that run with "
            f"--resume {run_dir}, or choose a new --out folder (nothing was overwritten)"
        )


def prepare_run_dir(run_dir: Path, names: Iterable[str], *, resume: bool) -> IO[str]:
    """Create (or, resuming, reopen) the run folder, check that it can be written, and lock it.

    Returns:
        The open lock file: the folder is this process's until it is closed (`lock_run_dir`).

    Raises:
        UserInputError: for a folder `check_run_dir` refuses, one that cannot be created or
            written, or one another sweep holds.
    """
    check_run_dir(run_dir, names, resume=resume)
    option = "--resume" if resume else "--out"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise UserInputError(f"{option} {run_dir}: cannot write there ({error.strerror or error})") from None
    return lock_run_dir(run_dir, option)


def lock_run_dir(run_dir: Path, option: str) -> IO[str]:
    """Lock `RUN_DIR/.lock` for this process (`fcntl.flock`) and write its pid there.

    The lock lasts while the returned file is open, and the kernel drops it when the process dies,
    so a killed sweep never leaves a lock behind.

    Raises:
        UserInputError: naming the pid of the process that holds the folder.
    """
    handle = (run_dir / LOCK_FILE).open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip()[:20] or "unknown"
        handle.close()
        raise UserInputError(
            f"{option} {run_dir}: another sweep (pid {holder}) is writing to this run folder; "
            "wait for it to finish, or stop it, then try again"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class ResumeAction:
    """What to do with one trial's folder: "skip" (finished, same fingerprint), "continue" (started
    with the same fingerprint, not finished: its checkpoint is picked up), "replace" (moved aside and
    retrained, for the reason `why`) or "train" (nothing there yet)."""

    kind: str
    why: str = ""


def resume_action(model_dir: Path, key: str) -> ResumeAction:
    """Read a trial's folder and decide what a sweep does with it (see `ResumeAction`)."""
    if not model_dir.exists():
        return ResumeAction("train")
    if (model_dir / "result.json").exists():
        result = read_json(model_dir / "result.json")
        if result is None:
            return ResumeAction("replace", "its result.json is damaged")
        if result.get("trial_key") != key:
            return ResumeAction("replace", "its network, settings or data changed")
        if result.get("status") == "failed":
            return ResumeAction("replace", "it failed before")
        try:
            read_history(model_dir / "history.csv")
        except DamagedFileError:
            return ResumeAction("replace", "its history.csv is damaged")
        return ResumeAction("skip")
    started = read_json(model_dir / "trial.json")
    if started is not None and started.get("trial_key") == key:
        return ResumeAction("continue")
    return ResumeAction("replace", "its network, settings or data changed" if started else "its trial.json is damaged")


def move_aside(model_dir: Path) -> Path:
    """Move a model folder to `<run>/.replaced/<name>-<time>/`, out of the summaries' sight."""
    target = model_dir.parent / ".replaced" / f"{model_dir.name}-{datetime.datetime.now():%Y%m%d-%H%M%S-%f}"
    target.parent.mkdir(exist_ok=True)
    os.replace(model_dir, target)
    return target


def read_results(run_dir: Path) -> list[dict]:
    """Every finished model's `result.json` in `run_dir`, in folder-name order; a damaged one is
    left out (`--resume` retrains its model)."""
    results = (read_json(path) for path in sorted(run_dir.glob("*/result.json")))
    return [result for result in results if isinstance(result, dict) and "name" in result and "status" in result]


def read_history(history_csv: Path) -> dict[str, list[float]]:
    """A model's `history.csv` as column -> values (as Keras' `History.history`).

    Raises:
        DamagedFileError: when it cannot be read, or lacks a column or an epoch's value.
    """
    try:
        with history_csv.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        columns = rows[0].keys() if rows else ()
        history = {column: [float(row[column]) for row in rows] for column in columns if column != "epoch"}
    except (OSError, ValueError, TypeError, csv.Error) as error:  # UnicodeDecodeError is a ValueError
        raise DamagedFileError(f"{history_csv}: cannot be read ({type(error).__name__})") from None
    missing = [metric for metric in HISTORY_METRICS if metric not in history]
    if missing or not rows:
        raise DamagedFileError(f"{history_csv}: {'no epochs' if not rows else 'no column ' + ', '.join(missing)}")
    return history


def check_layout(run_dir: Path) -> None:
    """Refuse to resume a run folder written by an earlier layout: its fingerprints were taken
    from configurations, not from the models, so nothing in it could be matched safely."""
    run = read_json(run_dir / "run.json")
    if run is not None and run.get("layout") != LAYOUT:
        raise UserInputError(
            f"--resume {run_dir}: written by an earlier version of this explorer (run folder layout "
            f"{run.get('layout', 1)}, this version writes {LAYOUT}) whose fingerprints cannot be compared; "
            "start a new run with --out (the old folder stays as it is)"
        )


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
    """Make a trial's folder ready to train (`action` from `resume_action`): an old attempt is moved
    aside, for the reason the action gives; `trial.json` records what trains there.

    Raises:
        UserInputError: when the folder cannot be written.
    """
    try:
        if action.kind == "replace":
            log(f"    {trial.folder}: {action.why}; retraining it (old folder moved to {move_aside(model_dir)})")
        elif action.kind == "continue":
            log(f"    {trial.folder}: continuing from its checkpoint")
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
