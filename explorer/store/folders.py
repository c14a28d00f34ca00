"""Which folders a sweep may read from and write into: decided before Keras loads, in under a second.

A run goes only into a new or empty folder (`--out`), and `--resume` takes only a folder that a
sweep wrote (it holds `run.json`). A folder holding anything else (someone's thesis, the project
itself) is refused, naming what it holds, and nothing is written there. These checks read the
file system only; the run folder's files are read in `explorer.store.schema`.
"""

import json
from pathlib import Path

from explorer.errors import UserInputError, shown

TENSORBOARD_FOLDER = "tensorboard"  # inside the run folder, with --tensorboard


# The run folder's layout, recorded in run.json, and the policy for folders of other layouts:
# - a new run writes LAYOUT; it changes only when the files a run writes change meaning (2: models
#   come from builders, and trials are fingerprinted by the model's own configuration);
# - --resume continues only a folder of LAYOUT: fingerprints of another layout cannot be compared,
#   so it is refused in one line, and the folder is left as it is;
# - --compare and the views read every layout in READABLE_LAYOUTS, whose result.json and
#   history.csv mean what this version's readers expect; a layout that changes them leaves
#   READABLE_LAYOUTS, and is refused by --compare in one line.
# tests/fixtures/run_layout_2 is a folder of layout 2, kept so that a later version is tested
# against it (tests/test_compare.py).
LAYOUT = 2
READABLE_LAYOUTS = (2,)


RUN_RECORD = "run.json"  # how the sweep was started: what makes a folder a run folder


LOCK_FILE = ".lock"  # locked by the process that trains into the run folder


LOCK_HOLDER = ".lock-holder"  # that process's id, for the message that refuses a second one


LOG_FILE = "log.txt"  # the explorer's terminal lines, appended by every start and resume


# What a start interrupted before it wrote run.json leaves: such a folder counts as empty.
LEFTOVERS = frozenset({LOCK_FILE, LOCK_HOLDER, LOG_FILE, ".write-test"})


def _listing(folder: Path, limit: int = 3) -> str:
    names = sorted(path.name for path in folder.iterdir())
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_new_run_folder(folder: Path, option: str = "--out") -> None:
    """Refuse a folder a new run cannot go into: a file, a run, or a folder holding anything else.

    Raises:
        UserInputError: naming the folder, what is in the way, and what to do instead.
    """
    ancestor = _existing_ancestor(folder)
    if ancestor != folder and not ancestor.is_dir():
        raise UserInputError(f"{option} {folder}: {ancestor} is a file, so no folder can be made there")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise UserInputError(f"{option} {folder}: is a file, not a folder; give a new folder for the run")
    if (folder / RUN_RECORD).exists():
        raise UserInputError(
            f"{option} {folder}: already holds a run; continue it with --resume {folder}, "
            "or choose a new --out folder (nothing was overwritten)"
        )
    if any(path.name not in LEFTOVERS for path in folder.iterdir()):
        raise UserInputError(
            f"{option} {folder}: is not empty and holds no run ({_listing(folder)}); "
            "choose a new or empty folder (nothing was written)"
        )


def read_run_record(folder: Path) -> object:
    """`run.json` as parsed JSON; None when it is missing, unreadable or not JSON."""
    try:
        return json.loads((folder / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None


def recorded_settings(folder: Path) -> dict[str, object] | None:
    """The settings a run was started with (run.json's `settings`, `config.run_settings`), checked:
    each a JSON scalar or a list of scalars. None for a folder that is not a run, a damaged run.json
    (the resume that follows says so), or a run written before settings were recorded.

    Raises:
        UserInputError: `settings` is there but holds something no command line gives.
    """
    record = read_run_record(folder) if folder.is_dir() else None
    settings = record.get("settings") if isinstance(record, dict) else None
    if settings is None:
        return None
    scalar = (str, int, float, bool, type(None))
    if not isinstance(settings, dict) or not all(
        isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(item, scalar) for item in value))
        for value in settings.values()
    ):
        raise UserInputError(
            f"--resume {folder}: {RUN_RECORD} is damaged (its settings are not a table of option values); "
            "nothing was changed"
        )
    return settings


def recorded_backend(folder: str | None) -> str | None:
    """The backend a run to be resumed was trained on, as its run.json records it; None when there
    is no such run or record (the command line's checks then say what is wrong)."""
    if folder is None:
        return None
    try:
        settings = recorded_settings(Path(folder))
    except UserInputError:
        return None
    backend = (settings or {}).get("backend")
    return backend if isinstance(backend, str) else None


def check_resume_folder(folder: Path) -> None:
    """Refuse to resume a folder that is not a run of this layout.

    A `run.json` that exists but is damaged still marks a run: the sweep keeps the damaged file
    aside and writes a new one.

    Raises:
        UserInputError: for a missing folder, a file, a folder without `run.json` (an interrupted
            start that never wrote one is named as such) or a run of another layout.
    """
    if not folder.is_dir():
        what = "is a file, not a run folder" if folder.exists() else "no such run folder"
        raise UserInputError(f"--resume {folder}: {what}")
    if not (folder / RUN_RECORD).exists():
        if all(path.name in LEFTOVERS for path in folder.iterdir()):
            raise UserInputError(
                f"--resume {folder}: a run interrupted before it wrote {RUN_RECORD}; nothing in it was "
                f"trained; start it again with --out {folder}"
            )
        raise UserInputError(
            f"--resume {folder}: not a run folder (no {RUN_RECORD}; it holds {_listing(folder)}); "
            "--resume takes a folder a sweep wrote, such as runs/<timestamp>"
        )
    record = read_run_record(folder)
    if isinstance(record, dict) and record.get("layout") != LAYOUT:
        layout = record.get("layout", 1)
        raise UserInputError(
            f"--resume {folder}: written by another version of this explorer (run folder layout "
            f"{shown(layout)}, this version writes {LAYOUT}) whose fingerprints cannot be compared; "
            "start a new run with --out (the old folder stays as it is)"
        )


def check_data_path(data: str | None) -> None:
    """Refuse a `--data` path that does not exist (what it holds is checked when it loads)."""
    if data is not None and not Path(data).exists():
        raise UserInputError(
            f"--data {data}: no such file or folder; give a folder of the four MNIST IDX files or an mnist.npz, "
            "or leave --data (and MNIST_DATA) out to use Keras' download, or offline the embedded sample"
        )


FUSED_FOLDER = ".fused"  # fused groups' checkpoints while they train; out of the summaries' sight


GROUP_RECORD = "group.json"  # in a fused group's checkpoint: its members, so a resume can re-form it


RIDERS_FOLDER = "riders"  # in a group's checkpoint: the histories of members that are not recorded


CHECKPOINT_PREFIX = "epoch-"  # a checkpoint's folder per saved epoch: epoch-<epochs finished>


CANDIDATE_PREFIX = "trial_"  # a search candidate's name and folder: trial_<number>


STUDY_FILE = "study.db"  # --search: the Optuna study (SQLite), resumed by --resume; optuna-dashboard opens it
