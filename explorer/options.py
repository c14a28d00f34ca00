"""How a sweep runs: the options the command line (or a caller in Python) sets, as frozen data.

`explorer.cli` builds an `Options` from argparse; nothing below the command line sees argparse.
"""

import dataclasses
import os
import shlex
import shutil
import sys
from pathlib import Path

from explorer.settings import DEFAULT_BACKEND

DEFAULT_SEED = 42
DEFAULT_VALIDATION_SPLIT = 0.1
QUICK_TRAIN_DIGITS = 2_000  # --quick: enough for every class to appear, small enough for seconds
QUICK_TEST_DIGITS = 500
# Three repeats: the least that gives a t-interval of useful width (t = 4.30 at 2 degrees of
# freedom, 12.7 at 1), for three times the cost of one run (measured: 2 min 49 s for one run of
# the default sweep on full MNIST, 8 min 17 s for three; JAX, 2 CPU cores).
DEFAULT_REPEATS = 3
MAX_REPEATS = 100
EXECUTORS = ("local", "ray")
SCHEDULERS = ("fifo", "asha")
TENSORBOARD_FOLDER = "tensorboard"  # inside the run folder, with --tensorboard


API_PROG = "common.sweep"  # the `prog` of a sweep started from Python


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
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    scheduler: str = "fifo"  # "asha" stops weak configurations early


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
    backend: str = DEFAULT_BACKEND
    reference: str | None = None  # the configuration every other is compared with
    prog: str = "model_builder_loop.py"  # the script, for the recorded and the resume command
    argv: tuple[str, ...] = ()  # its arguments as typed

    @property
    def command(self) -> str:
        """The command line as typed, recorded in run.json."""
        return shlex.join(["python", self.prog, *self.argv])

    def resume_command(self, run_dir: Path) -> str:
        """The command that continues this run, as it can be typed here: the interpreter that ran
        this one (`.venv/bin/python` after `make run`), the same arguments, and --resume RUN_DIR in
        place of --out/--resume; from Python, the `common.sweep` call."""
        if self.prog == API_PROG:
            return f"common.sweep(networks, resume={str(run_dir)!r}, ...)  # the same networks and settings"
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
    def fused(self) -> bool:
        """TensorBoard logs one run per model, and ASHA compares one model against another."""
        return self.fuse and not self.tensorboard and self.ray.scheduler != "asha"
