"""How a sweep runs: its options as one frozen, validated value, whoever builds it.

The command line (`explorer.cli`) and a call from Python (`common.sweep(networks, epochs=3)`) both
build `Options` through `make_options`, with the checks of `SETTINGS`: one check per setting, one
message per bad value, naming it as its caller spells it (`--epochs` or `epochs=`).
"""

import dataclasses
import difflib
import math
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from explorer.config.checks import is_int, is_number
from explorer.config.defaults import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_CPUS_PER_TRIAL,
    DEFAULT_REPEATS,
    DEFAULT_SEARCH_BUDGET_SECONDS,
    DEFAULT_SEED,
    DEFAULT_VALIDATION_SPLIT,
    DEFAULT_VERIFY,
    EXECUTORS,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_REPEATS,
    MAX_SEARCH_TRIALS,
    MAX_VERIFY,
    SCHEDULERS,
)
from explorer.config.search_space import parse_duration
from explorer.errors import ConfigError, shown


def interpreter() -> str:
    """This Python as a user would type it: `python` when that name finds it, its path relative to
    the current folder when it lies below (a project's `.venv`), else its full path."""
    executable = Path(sys.executable)
    for name in ("python", "python3"):
        found = shutil.which(name)
        if found and Path(found).absolute() == executable.absolute():  # a venv's python is a link: keep it
            return name
    if executable.is_relative_to(Path.cwd()):
        return os.path.relpath(executable)
    return str(executable)


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """`--executor ray` only: where the cluster is and what each trial may use."""

    address: str | None = None  # HOST:PORT of a running cluster; None starts one here
    node_ip: str | None = None  # this machine's address in the cluster
    max_concurrent: int | None = None  # trials at once; None: as many as the resources allow
    cpus_per_trial: float = DEFAULT_CPUS_PER_TRIAL
    gpus_per_trial: float = 0.0
    scheduler: str = "fifo"  # "asha" stops weak configurations early


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """`--search` only: how long to search and how many of its best to verify."""

    enabled: bool = False
    trials: int | None = None  # candidates to try; None: until the budget is spent
    budget_seconds: float | None = None  # None: DEFAULT_SEARCH_BUDGET_SECONDS unless trials is given
    verify: int = DEFAULT_VERIFY  # the best few by validation, trained again on fresh seeds

    @property
    def budget(self) -> float | None:
        """The search's time limit in seconds: the given one, else the default unless a number of
        trials is given (then none)."""
        if self.budget_seconds is not None or self.trials is not None:
            return self.budget_seconds
        return DEFAULT_SEARCH_BUDGET_SECONDS


@dataclasses.dataclass(frozen=True)
class Options:
    """Everything that decides how a sweep runs (what it trains is the list of variants)."""

    data: str | None = None  # a folder of MNIST IDX files or an mnist.npz; None: $MNIST_DATA, Keras, sample
    out: Path | None = None  # the new run folder; None: runs/<timestamp>
    resume: Path | None = None  # the run folder to continue (instead of out)
    epochs: int | None = None  # replaces every variant's own
    batch_size: int | None = None  # replaces every variant's own
    seed: int = DEFAULT_SEED
    validation_split: float = DEFAULT_VALIDATION_SPLIT
    quick: bool = False  # a smoke run: a few digits, one epoch
    repeats: int | None = None  # None: DEFAULT_REPEATS, or 1 with quick
    fuse: bool = True
    plan: bool = False  # print the trials, groups, costs and an estimate, then stop: nothing trains
    compare: tuple[Path, ...] = ()  # finished run folders to summarize together: nothing trains
    tensorboard: bool = False
    executor: str = "local"
    ray: RayOptions = RayOptions()
    search: SearchOptions = SearchOptions()
    backend: str = DEFAULT_BACKEND
    reference: str | None = None  # the configuration every other is compared with
    prog: str | None = None  # the script that started the sweep; None: a call from Python
    argv: tuple[str, ...] = ()  # its arguments as typed
    # The settings that define the run, recorded in run.json for --resume RUN (`config.run_settings`);
    # None from Python, whose resume is given its settings again.
    run_settings: Mapping[str, object] | None = None

    @property
    def command(self) -> str:
        """How the sweep was started, recorded in run.json: the command line as typed, or the call."""
        if self.prog is None:
            return "common.sweep(networks, ...)"
        return shlex.join(["python", self.prog, *self.argv])

    def resume_command(self, run_dir: Path) -> str:
        """The command that continues this run, as it can be typed here: the interpreter that ran
        this one (`.venv/bin/python` after `make run`), the same arguments, and --resume RUN_DIR in
        place of --out/--resume; from Python, the `common.sweep` call."""
        if self.prog is None:
            return f"common.sweep(networks, resume={str(run_dir)!r}, ...)  # the same networks and settings"
        if self.run_settings is not None:  # run.json keeps the run's settings: --resume alone continues it
            return shlex.join([interpreter(), self.prog, "--resume", str(run_dir)])
        kept, skip = [], False
        for argument in self.argv:
            if skip:
                skip = False
            elif argument in ("--out", "--resume"):
                skip = True
            elif not argument.startswith(("--out=", "--resume=")):
                kept.append(argument)
        return shlex.join([interpreter(), self.prog, *kept, "--resume", str(run_dir)])

    @property
    def run_repeats(self) -> int:
        return self.repeats or (1 if self.quick else DEFAULT_REPEATS)

    @property
    def epochs_override(self) -> int | None:
        return 1 if self.quick else self.epochs

    @property
    def unfused_reason(self) -> str | None:
        """Why models that could train together train alone, in a few words; None when they fuse."""
        if not self.fuse:
            return "--no-fuse"
        return "Ray's ASHA scheduler stops models one by one" if not self.fused else None

    @property
    def fused(self) -> bool:
        """ASHA compares one model against another, so it trains each alone (TensorBoard fuses:
        each branch logs its own scalars, `engine.callbacks.BranchTensorBoard`)."""
        return self.fuse and self.ray.scheduler != "asha"


class SettingError(ValueError):
    """A setting's value is not allowed; the message says why, and `make_options` names the setting."""


def whole(low: int, high: int, *, optional: bool = True) -> Callable[[object], int | None]:
    def check(value: object) -> int | None:
        if value is None and optional:
            return None
        if not is_int(value):
            raise SettingError(f"{shown(value)} is not a whole number; expected {low}-{high:,}")
        if not low <= value <= high:
            raise SettingError(f"{value} is out of range; expected {low}-{high:,}")
        return value

    return check


def fraction(value: object) -> float:
    if not is_number(value):
        raise SettingError(f"{shown(value)} is not a number; expected a fraction between 0 and 1")
    if not 0 < value < 1:
        raise SettingError(f"{value} is out of range; expected a fraction between 0 and 1 (exclusive)")
    return float(value)


def at_least(minimum: float) -> Callable[[object], float]:
    def check(value: object) -> float:
        if not is_number(value):
            raise SettingError(f"{shown(value)} is not a number; expected a count such as 1 or 0.5")
        if not (math.isfinite(value) and value >= minimum):
            raise SettingError(f"{value:g} is out of range; expected at least {minimum:g}")
        return float(value)

    return check


def one_of(allowed: Sequence[str], what: str, hint: str = "") -> Callable[[object], str]:
    def check(value: object) -> str:
        if value not in allowed:
            raise SettingError(f"{what} {shown(value)} is not supported; allowed: {', '.join(allowed)}{hint}")
        return value

    return check


def folder(value: object) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise SettingError(f"{shown(value)} is not a path; give a folder, such as runs/mine")
    return Path(value)


def folders(value: object) -> tuple[Path, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)) or not isinstance(value, Sequence):
        raise SettingError(f"{shown(value)} is not a list of run folders")
    return tuple(folder(item) for item in value)


def text(value: object) -> str | None:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise SettingError(f"{shown(value)} is not text")
    return None if value is None else str(value)


def duration(value: object) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise SettingError(str(error)) from None


def flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise SettingError(f"{shown(value)} is not True or False")
    return value


# Every setting a sweep takes, by the name Python gives it (the command line's flag with "-" for
# "_"), and its check. The Ray executor's settings build `RayOptions` (`RAY_FIELDS`).
SETTINGS: dict[str, Callable[[object], object]] = {
    "data": text,
    "out": folder,
    "resume": folder,
    "compare": folders,
    "epochs": whole(1, MAX_EPOCHS),
    "batch_size": whole(1, MAX_BATCH_SIZE),
    "seed": whole(0, 2**31 - 1, optional=False),
    "validation_split": fraction,
    "quick": flag,
    "repeats": whole(1, MAX_REPEATS),
    "fuse": flag,
    "plan": flag,
    "tensorboard": flag,
    "reference": text,
    "backend": one_of(BACKENDS, "backend", " (set with --backend or KERAS_BACKEND)"),
    "executor": one_of(EXECUTORS, "executor"),
    "ray_address": text,
    "ray_node_ip": text,
    "max_concurrent": whole(1, 100_000),
    "cpus_per_trial": at_least(0.01),
    "gpus_per_trial": at_least(0.0),
    "scheduler": one_of(SCHEDULERS, "scheduler"),
    "search": flag,
    "trials": whole(1, MAX_SEARCH_TRIALS),
    "budget": duration,
    "verify": whole(1, MAX_VERIFY),
}
# The setting of each `RayOptions` field: the one map between the two.
RAY_FIELDS = {
    "ray_address": "address",
    "ray_node_ip": "node_ip",
    "max_concurrent": "max_concurrent",
    "cpus_per_trial": "cpus_per_trial",
    "gpus_per_trial": "gpus_per_trial",
    "scheduler": "scheduler",
}


# The setting of each `SearchOptions` field.
SEARCH_FIELDS = {"search": "enabled", "trials": "trials", "budget": "budget_seconds", "verify": "verify"}


def python_spelling(setting: str) -> str:
    return setting


def make_options(
    settings: Mapping[str, object],
    *,
    spelled: Callable[[str], str] = python_spelling,
    prog: str | None = None,
    argv: Sequence[str] = (),
) -> Options:
    """The options `settings` describe (a setting left out, or None, keeps its default), every
    value checked.

    Args:
        settings: values by setting name (`SETTINGS`), as Python values.
        spelled: how the caller writes a setting's name in an error: `epochs` from Python,
            `--epochs` on the command line.
        prog, argv: the script and its arguments, for the recorded and the resume command.

    Raises:
        ConfigError: naming the first bad setting, its value and what is allowed.
    """
    unknown = [name for name in settings if name not in SETTINGS]
    if unknown:
        near = difflib.get_close_matches(unknown[0], SETTINGS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(f"unknown setting {shown(unknown[0])}{hint}; allowed: {', '.join(SETTINGS)}")
    values = {}
    for name, value in settings.items():
        try:
            values[name] = SETTINGS[name](value)
        except SettingError as error:
            raise ConfigError(f"{spelled(name)}: {error}") from None
    given = {name: value for name, value in values.items() if value is not None}
    if "out" in given and "resume" in given:
        raise ConfigError(f"{spelled('out')}: not allowed with {spelled('resume')} (a run goes into one folder)")
    if given.get("executor", "local") != "ray":
        ray_only = [spelled(name) for name in RAY_FIELDS if name in given and given[name] != _default(name)]
        if ray_only:
            raise ConfigError(
                f"{', '.join(ray_only)}: only with {spelled('executor')} ray (the local executor trains here)"
            )
    if not given.get("search"):
        search_only = [spelled(name) for name in SEARCH_FIELDS if name in given and name != "search"]
        if search_only:
            raise ConfigError(f"{', '.join(search_only)}: only with {spelled('search')}")
    elif given.get("executor", "local") == "ray":
        raise ConfigError(f"{spelled('search')}: trains here; not with {spelled('executor')} ray")
    ray = RayOptions(**{RAY_FIELDS[name]: value for name, value in given.items() if name in RAY_FIELDS})
    search = SearchOptions(**{SEARCH_FIELDS[name]: value for name, value in given.items() if name in SEARCH_FIELDS})
    kept = {name: value for name, value in given.items() if name not in RAY_FIELDS and name not in SEARCH_FIELDS}
    return Options(**kept, ray=ray, search=search, prog=prog, argv=tuple(argv))


def _default(setting: str) -> object:
    return getattr(RayOptions(), RAY_FIELDS[setting])
