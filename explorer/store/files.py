"""The run folder's files: atomic writes, the lock, and reading JSON and text.

Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written file under a final name; a write that fails (a full disk) raises
`RunFolderWriteError`, one line for the user. Only one process trains into a run folder at a time.
"""

import contextlib
import datetime
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import filelock
import numpy as np
from matplotlib.figure import Figure

from explorer.errors import RunFolderWriteError, UserInputError
from explorer.store.folders import LOCK_FILE, LOCK_HOLDER, check_new_run_folder, check_resume_folder

if TYPE_CHECKING:  # only for the annotation: reading and locking a run folder needs no Keras
    import keras

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
    interrupted run never leaves a half-written file under a final name, nor the partial one.

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
    except BaseException:  # Ctrl-C mid-write (a 2 MB report): nothing partial is left behind
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise


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


def save_arrays_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Named arrays as one .npz, written whole or not at all."""
    with writing(path) as partial:
        np.savez(partial, **arrays)


def save_model_atomic(model: "keras.Model", path: Path) -> None:
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
    except (OSError, ValueError, RecursionError):  # RecursionError: brackets nested past Python's stack
        return None


def move_aside(model_dir: Path) -> Path:
    """Move a model folder to `<run>/.replaced/<name>-<time>/`, out of the summaries' sight."""
    target = model_dir.parent / ".replaced" / f"{model_dir.name}-{datetime.datetime.now():%Y%m%d-%H%M%S-%f}"
    target.parent.mkdir(exist_ok=True)
    os.replace(model_dir, target)
    return target
