"""The command line both scripts share: argparse in, a frozen `Options` out.

Every option has its default in its help text; a bad value fails at once, in one line, with exit
code 2. Nothing below this module sees argparse.
"""

import argparse
import dataclasses
import difflib
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence

from explorer.config.defaults import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_REPEATS,
    DEFAULT_SEARCH_BUDGET_SECONDS,
    DEFAULT_SEED,
    DEFAULT_VALIDATION_SPLIT,
    DEFAULT_VERIFY,
    EXECUTORS,
    QUICK_TEST_DIGITS,
    QUICK_TRAIN_DIGITS,
    SCHEDULERS,
)
from explorer.config.options import SETTINGS, Options, SettingError, make_options
from explorer.config.run_settings import continued, recordable
from explorer.errors import EXIT_BAD_INPUT, UserInputError
from explorer.store.folders import (
    TENSORBOARD_FOLDER,
    check_data_path,
    check_new_run_folder,
    check_resume_folder,
    recorded_settings,
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage block), exit code 2, no abbreviations
    (`--epoch 2` is refused, not taken as `--epochs`: the backend, read before argparse, could not
    follow them) and "did you mean" for a mistyped option."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message}{self._suggestion(message)} (see {self.prog} --help)\n")

    def _suggestion(self, message: str) -> str:
        """ "; did you mean --epochs?" for the first unrecognized option close to a known one."""
        if not message.startswith("unrecognized arguments: "):
            return ""
        known = [option for option in self._option_string_actions if option.startswith("--")]
        for given in message.removeprefix("unrecognized arguments: ").split():
            close = difflib.get_close_matches(given.split("=", 1)[0], known, n=1, cutoff=0.6)
            if given.startswith("--") and close:
                return f"; did you mean {close[0]}?"
        return ""


def _checked(setting: str, convert: Callable[[str], object] = str) -> Callable[[str], object]:
    """An argparse type: the text converted (`int`, `float`), then checked by the setting's own check
    (`options.SETTINGS`), the one a call from Python meets; text that does not convert goes to the
    check as it is, which names it ("'x' is not a whole number; expected 1-1,000")."""
    check = SETTINGS[setting]

    def parse(text: str) -> object:
        try:
            value = convert(text)
        except ValueError:
            value = text
        try:
            return check(value)
        except SettingError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def flag_of(setting: str) -> str:
    """A setting's command-line flag: `batch_size` -> `--batch-size`."""
    return "--" + setting.replace("_", "-")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    """Where the digits come from and where the run goes."""
    parser = parser.add_argument_group("data and run folder")
    parser.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help="folder with the four MNIST IDX files (.gz or not), or an mnist.npz "
        "(default: $MNIST_DATA, else Keras' cache/download, else the embedded 5,000-digit sample)",
    )
    where = parser.add_mutually_exclusive_group()  # argparse: on the group, shown under its title
    where.add_argument(
        "--out",
        metavar="DIR",
        type=_checked("out"),
        default=None,
        help="run folder for every output (default: runs/<timestamp>)",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN_DIR",
        type=_checked("out"),
        default=(),
        help="summarize finished runs side by side, nothing retrained: one summary and report in --out, "
        "each configuration labelled by its run, differences in data or configuration stated",
    )
    where.add_argument(
        "--resume",
        metavar="RUN_DIR",
        type=_checked("resume"),
        default=None,
        help="continue an interrupted run in RUN_DIR: finished models with an unchanged configuration "
        "are kept, an interrupted one continues from its last finished epoch, a changed one is "
        "retrained (its old folder moved to RUN_DIR/.replaced/)",
    )


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    """Epochs, batch size, seed, split, quick runs, repeats and fusion."""
    parser = parser.add_argument_group("training")
    parser.add_argument(
        "--epochs",
        metavar="N",
        type=_checked("epochs", int),
        default=None,
        help=f"epochs for every model (default: each configuration's own, {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--batch-size",
        metavar="N",
        type=_checked("batch_size", int),
        default=None,
        help=f"batch size for every model (default: each configuration's own, {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--seed",
        metavar="N",
        type=_checked("seed", int),
        default=DEFAULT_SEED,
        help=f"seed for weights, shuffling and the splits (default: {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--validation-split",
        metavar="FRACTION",
        type=_checked("validation_split", float),
        default=DEFAULT_VALIDATION_SPLIT,
        help=f"share of the training set held out, per class, for validation (default: {DEFAULT_VALIDATION_SPLIT})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_TRAIN_DIGITS:,} training and {QUICK_TEST_DIGITS} test digits, 1 epoch per model",
    )
    parser.add_argument(
        "--repeats",
        metavar="N",
        type=_checked("repeats", int),
        default=None,
        help="train each configuration this many times, with seeds derived from --seed, and report "
        f"mean, spread and a 95%% interval (default: {DEFAULT_REPEATS}, or 1 with --quick)",
    )
    parser.add_argument(
        "--no-fuse",
        dest="fuse",
        action="store_false",
        help="train every model on its own. By default models that share seed, epochs, batch size, "
        "optimizer and learning rate train together as branches of one model: the same numbers, "
        "several times faster, but each model's seconds are then its group's",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print what would train (the models, how they are grouped, their parameters and FLOPs) "
        "and an estimate of the wall time, then exit without training or writing anything",
    )


def _add_comparison_options(parser: argparse.ArgumentParser) -> None:
    """TensorBoard, the reference of the comparisons, and the backend."""
    parser = parser.add_argument_group("comparison, logging and backend")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help=f"also log every epoch to TensorBoard and the sweep to its HParams dashboard, in "
        f"RUN_DIR/{TENSORBOARD_FOLDER} (view with: tensorboard --logdir RUN_DIR/{TENSORBOARD_FOLDER})",
    )
    parser.add_argument(
        "--reference",
        metavar="NAME",
        default=None,
        help="the configuration every other is compared with, pair by pair (default: the script's "
        "reference network, else the first configuration)",
    )
    parser.add_argument(
        "--backend",
        metavar="NAME",
        type=_checked("backend"),
        default=os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND),
        help=f"Keras backend: {' or '.join(BACKENDS)} (default: $KERAS_BACKEND, else {DEFAULT_BACKEND})",
    )


def _add_ray_options(parser: argparse.ArgumentParser) -> None:
    ray = parser.add_argument_group("sweeps on Ray (pip install -r requirements-ray.txt; see docs/ray.md)")
    ray.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: train here, group after group (default); ray: one Ray Tune trial per group, "
        "on a local Ray instance or the cluster at --ray-address",
    )
    ray.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        default=None,
        help="Ray cluster to join, HOST:PORT (default: start one here)",
    )
    ray.add_argument(
        "--ray-node-ip",
        metavar="IP",
        default=None,
        help="this machine's address in the Ray cluster (default: Ray's choice; 127.0.0.2 keeps a local run on loopback)",
    )
    ray.add_argument(
        "--max-concurrent",
        metavar="N",
        type=_checked("max_concurrent", int),
        default=None,
        help="at most this many trials at once (default: as many as the cluster's free CPUs and GPUs allow)",
    )
    ray.add_argument(
        "--cpus-per-trial",
        metavar="N",
        type=_checked("cpus_per_trial", float),
        default=1.0,
        help="CPU cores per trial (default: 1)",
    )
    ray.add_argument(
        "--gpus-per-trial",
        metavar="N",
        type=_checked("gpus_per_trial", float),
        default=0.0,
        help="GPUs per trial (default: 0)",
    )
    ray.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default="fifo",
        help="fifo: every trial runs to its last epoch (default); asha: Tune's ASHA stops weak "
        "configurations early (each configuration is then its own trial, unfused)",
    )


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """The loop script's search options (a search needs a [search.NAME] table of --config)."""
    search = parser.add_argument_group("search (a [search.NAME] table in --config; see docs/search.md)")
    search.add_argument(
        "--search",
        action="store_true",
        help="search the table's space with Optuna (TPE, candidates trained fused in batches, poor ones "
        "stopped early), then train its best again on fresh seeds and compare them on the test set",
    )
    search.add_argument(
        "--trials",
        type=_checked("trials", int),
        metavar="N",
        default=None,
        help="stop the search after N candidates (default: no limit)",
    )
    search.add_argument(
        "--budget",
        type=_checked("budget"),
        metavar="TIME",
        default=None,
        help="stop the search after this long, such as 20m, 1h30m or 600 (seconds); the time spent before "
        f"a --resume counts (default: {DEFAULT_SEARCH_BUDGET_SECONDS // 60} min, unless --trials is given)",
    )
    search.add_argument(
        "--verify",
        type=_checked("verify", int),
        metavar="N",
        default=None,
        help=f"train the search's best N again, --repeats runs each on fresh seeds (default: {DEFAULT_VERIFY})",
    )


EXIT_CODES = """exit codes:
  0    every model finished (a model whose loss diverged counts as finished, marked diverged)
  1    a model failed; the others ran, and the reason is in summary.csv
  2    bad input (an option, a configuration, the data, the run folder); nothing was trained
  130  interrupted (Ctrl-C); finished models are kept, and the command that resumes is printed"""


def help_texts(docstring: str) -> tuple[str, str]:
    """The help's description and examples from a script's docstring: its "Title:" and
    "Description:" lines as one sentence, and the indented commands under "How to run it:"."""
    title = re.search(r"^Title: (.+)$", docstring, re.MULTILINE)
    description = re.search(r"^Description: (.+?)\n\s*\n", docstring, re.MULTILINE | re.DOTALL)
    examples = re.search(r"How to run it:\n\s*\n((?:    .+\n)+)", docstring)
    text = " ".join(description.group(1).split()) if description else docstring.strip().split("\n\n")[0]
    if title:
        text = f"{title.group(1)}. {text}"
    return text, (examples.group(1).rstrip() if examples else "")


def make_parser(prog: str, docstring: str) -> ArgumentParser:
    """The parser with every option both scripts share, grouped; scripts add their own.

    Args:
        prog: the script's file name, shown in help and in the recorded and resume commands.
        docstring: the script's docstring, whose title, description and examples the help shows
            (`help_texts`), with the exit codes.
    """
    description, examples = help_texts(docstring)
    epilog = (f"examples:\n{examples}\n\n" if examples else "") + EXIT_CODES
    parser = ArgumentParser(
        prog=prog,
        usage="%(prog)s [options]",
        description="\n".join(textwrap.wrap(description, 100)),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_data_options(parser)
    _add_training_options(parser)
    _add_comparison_options(parser)
    _add_ray_options(parser)
    return parser


def parse_command_line(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> tuple[Options, dict[str, object]]:
    """Parse `argv` (default: the process's arguments) into `Options`, through the same checks as a
    call from Python (`make_options`), and check the paths they name (`check_places`).

    Returns:
        The options, and the values of the options a script added to `parser` itself (by their
        argparse names, e.g. {"only": [...], "config": None}).

    Raises:
        UserInputError: for a combination the parser cannot see (Ray settings without `--executor
            ray`) or a path that cannot serve; a bad value exits at once, in argparse's one line.
    """
    argv = tuple(sys.argv[1:] if argv is None else argv)
    values = vars(parser.parse_args(argv))
    recorded = recorded_settings(values["resume"]) if values.get("resume") is not None else None
    if recorded is not None:  # --resume RUN: the run's own settings, unless given again (and equal)
        values = continued(values, given_options(parser, argv, values), recorded, values["resume"], spelled)
    settings = {name: values.pop(name) for name in list(values) if name in SETTINGS}
    options = make_options(settings, spelled=flag_of, prog=parser.prog, argv=argv)
    options = dataclasses.replace(options, run_settings=recordable({**settings, **values}, options.run_repeats))
    check_places(options)
    return options, values


def spelled(setting: str) -> str:
    """An option as typed: `--epochs`, and `--no-fuse` for the setting it turns off."""
    return "--no-fuse" if setting == "fuse" else flag_of(setting)


def given_options(parser: argparse.ArgumentParser, argv: Sequence[str], values: dict[str, object]) -> set[str]:
    """The options `argv` gives, as opposed to those left at their defaults: parsed again into a
    namespace that already holds every option, so argparse sets only what the command line says."""
    unset = object()
    parsed = vars(parser.parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(values, unset))))
    return {name for name, value in parsed.items() if value is not unset}


def check_places(options: Options) -> None:
    """The cheap checks of every path a sweep reads or writes, before Keras loads: `--data` exists,
    `--resume` is a run folder, `--out` is new or empty (not checked for --plan, which writes
    nothing), each `--compare` folder exists.

    Raises:
        UserInputError: naming the path and what is wrong with it.
    """
    check_data_path(options.data)
    if options.resume is not None:
        check_resume_folder(options.resume)
    if options.out is not None and not options.plan:
        check_new_run_folder(options.out)
    if len(options.compare) == 1:
        raise UserInputError("--compare needs at least two run folders")
    for folder in options.compare:
        if not folder.is_dir():
            raise UserInputError(f"--compare {folder}: not a run folder (no such folder)")
