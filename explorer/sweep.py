"""The sweep both scripts run: validate, prepare the data, plan, train through an executor, compare.

Every variant is checked (its builder called once) before the data loads; then the trials are
planned (one per variant and seed), grouped for fused training, and handed to the local or the
Ray executor; finally the views are built from the run folder. A model that diverges or raises is
recorded and the sweep goes on; Ctrl-C keeps every finished model, writes the summary of those and
prints the command that resumes the run.
"""

import contextlib
import dataclasses
import os
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from explorer.backend import check_backend, keras, tensorflow_left_alone, versions
from explorer.data import DataSource, load_mnist
from explorer.errors import EXIT_INTERRUPTED, EXIT_MODEL_FAILED, ConfigError, UserInputError, shown
from explorer.estimate import estimate_sweep, plan_text
from explorer.local_executor import duration, run_groups_locally
from explorer.options import QUICK_TEST_DIGITS, QUICK_TRAIN_DIGITS, Options, RayOptions
from explorer.phases import PhaseTimes
from explorer.ray_executor import import_ray, run_groups_on_ray
from explorer.recording import Work
from explorer.report import FUSED_NOTE
from explorer.run_folder import (
    FUSED_FOLDER,
    LAYOUT,
    check_run_dir,
    default_run_dir,
    now_iso,
    prepare_run_dir,
    read_json,
    read_results,
    resume_action,
    write_json_atomic,
)
from explorer.run_views import Views, build_views
from explorer.splits import PreparedData, prepare_data
from explorer.stats import SUMMARY_COLUMNS
from explorer.trials import plan_groups, plan_trials, trial_key
from explorer.variants import Variant, check_variants
from explorer.views import format_leaderboard

# The command-line flag of each Ray-only option, for the error that names it.
RAY_FLAGS = {
    "address": "--ray-address",
    "node_ip": "--ray-node-ip",
    "max_concurrent": "--max-concurrent",
    "cpus_per_trial": "--cpus-per-trial",
    "gpus_per_trial": "--gpus-per-trial",
    "scheduler": "--scheduler",
}


def check_executor(options: Options) -> None:
    """Refuse Ray options without `--executor ray`, and `--executor ray` without Ray installed."""
    if options.executor == "ray":
        import_ray()
        return
    defaults = RayOptions()
    given = [flag for field, flag in RAY_FLAGS.items() if getattr(options.ray, field) != getattr(defaults, field)]
    if given:
        raise UserInputError(f"{', '.join(given)}: only with --executor ray (the local executor trains here)")


def with_overrides(variants: Sequence[Variant], options: Options) -> list[Variant]:
    """The variants with the command line's epochs and batch size, where it sets them."""
    epochs, batch_size = options.epochs_override, options.batch_size
    return [
        dataclasses.replace(variant, epochs=epochs or variant.epochs, batch_size=batch_size or variant.batch_size)
        for variant in variants
    ]


def load_data(options: Options, log: Callable[[str], None]) -> tuple[PreparedData, DataSource, dict, dict]:
    """The prepared arrays, where they came from (as a record), and the data's identity for the
    fingerprints."""
    train, test, source = load_mnist(options.data, seed=options.seed, log=log)
    limits = {"max_train": QUICK_TRAIN_DIGITS, "max_test": QUICK_TEST_DIGITS} if options.quick else {}
    data = prepare_data(train, test, validation_split=options.validation_split, seed=options.seed, **limits)
    source_record = dataclasses.asdict(source) | {"full_mnist": source.is_full_mnist}
    return data, source, source_record, {**source_record, "validation_split": options.validation_split, **limits}


def _write_run_record(
    run_dir: Path, options: Options, variants: Sequence[Variant], context: dict, log: Callable[[str], None]
) -> None:
    """`run.json`: how the sweep was started (kept from the first start when resuming; a damaged
    one is kept aside, never overwritten)."""
    record = {
        "layout": LAYOUT,
        "command": options.command,
        "started_at": now_iso(),
        "seed": options.seed,
        "validation_split": options.validation_split,
        "quick": options.quick,
        "repeats": options.run_repeats,
        "fuse": options.fused,
        "executor": options.executor,
        "models": [variant.name for variant in variants],
        "reference": options.reference,
        **context,
    }
    previous = read_json(run_dir / "run.json") if options.resume is not None else None
    if isinstance(previous, dict) and {"command", "started_at"} <= previous.keys():
        record["resumed"] = [*previous.get("resumed", []), {"command": options.command, "at": now_iso()}]
        record["command"], record["started_at"] = previous["command"], previous["started_at"]
    elif (run_dir / "run.json").exists():
        aside = run_dir / f"run.json.damaged-{now_iso().replace(':', '')}"
        os.replace(run_dir / "run.json", aside)
        log(f"{run_dir / 'run.json'} was damaged; kept as {aside.name}, and a new one written")
    write_json_atomic(run_dir / "run.json", record)


@dataclasses.dataclass(frozen=True)
class _Opened:
    """A sweep ready to train: its work, where its data came from, and the run folder's lock."""

    work: Work
    source: DataSource
    lock: IO[str]


def resolve_reference(names: Sequence[str], chosen: str | None, declared: str | None) -> str:
    """The configuration the others are compared with: `--reference`, else the script's declared
    reference when the sweep has it, else the first.

    Raises:
        ConfigError: for a `--reference` that is not a configuration of the sweep.
    """
    if chosen is not None:
        if chosen not in names:
            raise ConfigError(
                f"--reference {shown(chosen)} is not a configuration of this sweep; valid names: {', '.join(names)}"
            )
        return chosen
    return declared if declared in names else names[0]


def _open(
    variants: Sequence[Variant],
    options: Options,
    declared_reference: str | None,
    log: Callable[[str], None],
    timings: PhaseTimes,
) -> _Opened | None:
    """Validate everything at the door, load the data, plan the trials and open the run folder
    (None for --plan, which only prints the plan)."""
    check_backend(options.backend)
    check_executor(options)
    variants = with_overrides(variants, options)
    with timings.measure("checking"):
        facts = check_variants(variants)
    reference = resolve_reference([variant.name for variant in variants], options.reference, declared_reference)
    options = dataclasses.replace(options, reference=reference)
    trials = plan_trials(variants, options.seed, options.run_repeats, facts)
    run_dir = options.resume or options.out or default_run_dir()
    if not options.plan:
        check_run_dir(run_dir, [t.folder for t in trials], resume=options.resume is not None)
    with timings.measure("data"):
        data, source, source_record, data_identity = load_data(options, log)
    if options.plan:
        log(plan_text(plan_groups(trials, fuse=options.fused), len(data.x_train), len(data.x_val)))
        return None
    with timings.measure("planning"):
        # Only now open the run folder, so that bad input leaves no empty one behind.
        lock = prepare_run_dir(run_dir, [t.folder for t in trials], resume=options.resume is not None)
        context = {"data": source_record, "versions": versions()}
        _write_run_record(run_dir, options, variants, context, log)
        log(f"Run folder: {run_dir}  |  backend: {keras.backend.backend()}  |  seed: {options.seed}")
        log(f"Training {len(data.x_train):,}, validating {len(data.x_val):,}, testing {len(data.x_test):,} digits.")
        # Finished trials are kept; the rest train in groups (fused unless --no-fuse).
        keys = {trial: trial_key(trial, data_identity) for trial in trials}
        actions = {trial: resume_action(run_dir / trial.folder, keys[trial]) for trial in trials}
        for trial in trials:
            if actions[trial].kind == "skip":
                log(f"{trial.folder}: finished earlier with the same configuration; kept")
        pending = [trial for trial in trials if actions[trial].kind != "skip"]
        groups = plan_groups(pending, fuse=options.fused)
        log(estimate_sweep(groups, len(data.x_train), len(data.x_val)).line())
        return _Opened(Work(groups, data, run_dir, keys, actions, context, options, log, timings), source, lock)


def _train(work: Work, log: Callable[[str], None]) -> int:
    """Hand the groups to the executor; 130 when interrupted (finished trials are kept)."""
    try:
        if work.options.executor == "ray" and work.groups:
            run_groups_on_ray(work)
        else:
            run_groups_locally(work)
    except KeyboardInterrupt:
        log(
            f"\nInterrupted: {len(read_results(work.run_dir))} finished model(s) are kept in {work.run_dir}; summarizing those."
        )
        log(f"To continue where it stopped:\n  {work.options.resume_command(work.run_dir)}")
        return EXIT_INTERRUPTED
    return 0


def _compare(work: Work, source: DataSource, seconds: float, log: Callable[[str], None]) -> Views:
    """Build the views from the run folder and print the leaderboard."""
    run_dir = work.run_dir
    with contextlib.suppress(OSError):  # fused groups' checkpoints are gone once they finish
        (run_dir / FUSED_FOLDER).rmdir()
    views = build_views(run_dir, work.data, work.options.reference)
    rows = views.rows
    if rows:
        log("\n" + format_leaderboard(rows))
        if any((row["fused_group_size"] or 1) > 1 for row in rows):
            log(textwrap.fill(f"Training was {FUSED_NOTE}.", 100))
    log(f"\n{len(rows)} configuration(s) in {duration(seconds)}. Report: {run_dir / 'report.html'}")
    log("(also summary.csv, comparison.png, factors.png, per_class.png and the figures it shows)")
    if source.kind == "embedded-sample":
        log("Reminder: these figures come from the embedded 5,000-digit sample, not full MNIST.")
    return views


@dataclasses.dataclass(frozen=True)
class SweepOutcome:
    """How a sweep ended: the process exit code, its run folder, and its views (rows, figures)."""

    exit_code: int
    run_dir: Path | None = None  # None when nothing was opened (--plan, or Ctrl-C before training)
    views: Views = dataclasses.field(default_factory=lambda: Views([], {}))

    @property
    def leaderboard(self):  # -> pandas.DataFrame; pandas is imported only when asked for
        """The summary as a pandas DataFrame, one row per configuration, best first, indexed by name."""
        import pandas as pd

        table = pd.DataFrame(self.views.rows, columns=SUMMARY_COLUMNS)
        return table.set_index("name")

    @property
    def figures(self) -> dict:
        """The figures written into the run folder, as Matplotlib `Figure`s, by their path without
        ".png": "comparison", "factors", "per_class", "first_layer", "curves/dense_128_relu", ..."""
        return self.views.figures


def run_sweep(
    variants: Sequence[Variant], options: Options, log: Callable[[str], None] = print, reference: str | None = None
) -> SweepOutcome:
    """Validate, train and compare `variants`; return the exit code, run folder and views.

    Args:
        variants: the networks to train, in order (`Variant`: a name and a builder).
        options: how to run (`Options`; the scripts build it from the command line).
        log: where progress lines go.
        reference: the configuration the others are compared with, unless `options.reference`
            names one (the first when this one is not in the sweep).

    Returns:
        Its exit code: 0 when every model finished (diverged ones included), 1 when a model failed
        (the others still ran), 130 when interrupted, at any moment (finished models are kept, and
        the command that continues the run is shown).

    Raises:
        UserInputError: for any bad input, before training starts.
    """
    with tensorflow_left_alone(active=not options.tensorboard):
        return _run_sweep(variants, options, log, reference)


def _run_sweep(
    variants: Sequence[Variant], options: Options, log: Callable[[str], None], reference: str | None
) -> SweepOutcome:
    timings, started_unix, started = PhaseTimes(), time.time(), time.perf_counter()
    try:
        opened = _open(variants, options, reference, log, timings)
    except KeyboardInterrupt:
        log("\nInterrupted before training started; nothing was trained.")
        return SweepOutcome(EXIT_INTERRUPTED)
    if opened is None:  # --plan: printed; nothing trained, nothing written
        return SweepOutcome(0)
    work = opened.work
    with contextlib.closing(opened.lock):  # the run folder is this process's until the end
        training_started = time.perf_counter()
        status = _train(work, log)
        try:
            with timings.measure("views"):
                views = _compare(work, opened.source, time.perf_counter() - training_started, log)
            write_json_atomic(
                work.run_dir / "timings.json", timings.record(time.perf_counter() - started, started_unix)
            )
            log(timings.line())
        except KeyboardInterrupt:
            log(f"\nInterrupted while summarizing; every finished model is kept in {work.run_dir}.")
            log(f"To summarize it (and train what is left):\n  {options.resume_command(work.run_dir)}")
            return SweepOutcome(EXIT_INTERRUPTED, work.run_dir)
    failed = [row["name"] for row in views.rows if row["status"] == "failed"]
    if failed and status == 0:
        log(f"Failed: {', '.join(failed)} (reasons in summary.csv); rerun them with --resume {work.run_dir}")
        status = EXIT_MODEL_FAILED
    return SweepOutcome(status, work.run_dir, views)
