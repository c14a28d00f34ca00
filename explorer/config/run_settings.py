"""What `--resume RUN` continues: the settings a run was started with, recorded in its run.json.

A run is defined by its data, epochs, batch size, seed, split, repeats, fusion, backend, reference,
the script's own choices (`--config`, `--grid`, `--only`, a grid's sampling) and a search's options.
They are recorded when the run starts (`recordable`), and `--resume RUN` alone continues the run
with them (`continued`). Given again on the command line, a setting must agree with the run's,
except:

- `--repeats`, which may grow the run (more runs on new seeds; never fewer);
- what only says how this invocation works (`PER_INVOCATION`): where and how it trains (the
  executor and Ray's settings), TensorBoard, `--plan`.

Anything else that differs is refused in one line naming the setting and the run's value, before
anything in the folder is touched. A folder written before settings were recorded resumes as it
always did: with its options given again.
"""

import os
from collections.abc import Mapping
from pathlib import Path

from explorer.errors import UserInputError, shown

# Settings that say how this invocation runs, not what the run is: free to differ on a resume.
PER_INVOCATION = frozenset(
    {
        "out",
        "resume",
        "compare",
        "plan",
        "tensorboard",
        "executor",
        "ray_address",
        "ray_node_ip",
        "max_concurrent",
        "cpus_per_trial",
        "gpus_per_trial",
        "scheduler",
    }
)
PATHS = frozenset({"data", "config"})  # recorded absolute, so a resume from another folder finds them
GROWS = "repeats"  # may be given larger on a resume


def _plain(value: object) -> object:
    """A value as JSON keeps it: tuples as lists, paths as text."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _absolute(value: object) -> object:
    return None if value is None else os.path.abspath(os.fspath(value))


def recordable(values: Mapping[str, object], repeats: int) -> dict[str, object]:
    """The settings that define a run, from the command line's values (every option, defaults
    included), as JSON values: paths absolute, `repeats` as run (`repeats`, its default resolved)."""
    record = {name: _plain(value) for name, value in values.items() if name not in PER_INVOCATION}
    for name in PATHS & set(record):
        record[name] = _absolute(record[name])
    record[GROWS] = repeats
    return record


def _differs(name: str, given: object, recorded: object) -> bool:
    if name in PATHS:
        return _absolute(given) != recorded
    if name == GROWS:
        return given is not None and given < recorded
    return _plain(given) != recorded


def continued(
    values: Mapping[str, object],
    given: set[str],
    recorded: Mapping[str, object],
    folder: Path,
    spelled,
) -> dict[str, object]:
    """The values of a `--resume`: the run's recorded settings, with what this command line gave.

    Args:
        values: the command line's values, by option name (defaults included).
        given: the options this command line actually gave.
        recorded: the run's settings (`recordable`), from its run.json.
        folder: the run folder, for the message.
        spelled: how an option is spelled on the command line (`epochs` -> `--epochs`).

    Raises:
        UserInputError: a run setting given with another value than the run's, naming both.
    """
    merged = dict(values)
    for name, value in recorded.items():
        if name not in values or name in PER_INVOCATION:
            continue  # an option this script does not have, or one free to differ
        if name in given and _differs(name, values[name], value):
            flag = spelled(name)
            now = _as_typed(name, _plain(values[name]), flag).removeprefix("with ")
            then = _as_typed(name, value, flag)
            then = then if then.startswith(("with ", "without ")) else f"with {then}"
            grows = " (a resume may add runs, never remove them)" if name == GROWS else ""
            raise UserInputError(
                f"--resume {folder}: this command line gives {now}, but the run was started {then}{grows}; "
                f"leave {flag} out to continue it as it was started (its run.json keeps every setting), "
                "or start a new run with --out; nothing in the folder was changed"
            )
        if name not in given:
            merged[name] = tuple(value) if isinstance(value, list) else value
    return merged


INVERTED = frozenset({"fuse"})  # set to False by its flag (--no-fuse)


def _as_typed(name: str, value: object, flag: str) -> str:
    """A setting's value as the command line would say it: "--epochs 4", "with --quick",
    "without --no-fuse", "without --config"."""
    if isinstance(value, bool):
        present = not value if name in INVERTED else value
        return f"with {flag}" if present else f"without {flag}"
    if value is None or value == []:
        return f"without {flag}"
    if isinstance(value, list):
        return f"{flag} {' '.join(map(str, value))}"
    return f"{flag} {shown(value) if isinstance(value, str) and ' ' in value else value}"
