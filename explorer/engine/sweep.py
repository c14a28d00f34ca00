"""The sweep both scripts run: validate, prepare the data, plan, train through an executor, compare.

Every variant is checked (its builder called once) before the data loads; then the trials are
planned (one per variant and seed), grouped for fused training, and handed to the local or the
Ray executor; finally the views are built from the run folder. A model that diverges or raises is
recorded and the sweep goes on; Ctrl-C keeps every finished model, writes the summary of those and
prints the command that resumes the run.
"""

import contextlib
import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from explorer.config.defaults import DEFAULT_EPOCHS
from explorer.config.options import Options
from explorer.data.loading import load_prepared, planned_data
from explorer.data.mnist import DataSource
from explorer.data.prepare import PreparedData
from explorer.engine.estimate import estimate_sweep, plan_text
from explorer.engine.groups import GroupsToTrain
from explorer.engine.interrupts import interrupts_ignored, interrupts_noted
from explorer.engine.local import duration, run_groups_locally
from explorer.engine.phases import PhaseTimes
from explorer.engine.ray import import_ray, run_groups_on_ray
from explorer.engine.run_variants import prepared
from explorer.engine.search import SearchRequest, run_search, search_plan_text
from explorer.errors import EXIT_INTERRUPTED, EXIT_MODEL_FAILED, ConfigError, shown
from explorer.models.backend import check_backend, keras, versions
from explorer.models.keras_compat import tensorflow_left_alone
from explorer.models.trials import plan_groups, plan_trials, trial_key
from explorer.models.variants import Variant, check_variants
from explorer.store.files import (
    RunFolderLock,
    default_run_dir,
    prepare_run_dir,
    write_json_atomic,
)
from explorer.store.folders import (
    FUSED_FOLDER,
    LOG_FILE,
    STUDY_FILE,
    TENSORBOARD_FOLDER,
    check_new_run_folder,
    check_resume_folder,
    read_run_record,
)
from explorer.store.resume import plan_resume
from explorer.store.run_files import RunLog, write_run_record
from explorer.store.schema import read_results
from explorer.views.summarize import SweepOutcome, Views, build_views
from explorer.views.tables import closing_lines, wrapped


@dataclasses.dataclass(frozen=True)
class _Opened:
    """A sweep ready to train: its work, where its data came from, and the run folder's lock."""

    work: GroupsToTrain
    source: DataSource
    lock: RunFolderLock


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


def _run_folder(options: Options) -> Path:
    """The run folder, checked before anything heavy: `--resume` must be a run, a new run's folder
    new or empty (`--plan` writes nothing)."""
    if options.resume is not None:
        check_resume_folder(options.resume)
        return options.resume
    run_dir = options.out or default_run_dir()
    if not options.plan:
        check_new_run_folder(run_dir)
    return run_dir


@dataclasses.dataclass(frozen=True)
class _Checked:
    """A sweep's input after every check that needs no data: its trials, options and run folder
    (a search's trials are planned once it has found what to verify)."""

    variants: list[Variant]
    trials: list
    options: Options
    run_dir: Path
    search: SearchRequest | None = None


class _SearchInterrupted(Exception):
    """Ctrl-C during a search: its study keeps every told candidate."""

    def __init__(self, run_dir: Path):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


def _check_search(variants: Sequence[Variant], options: Options, search: SearchRequest | None) -> None:
    if options.search.enabled and search is None:
        raise ConfigError("--search needs a [search.NAME] table of choices and intervals in --config "
                          "(docs/search.md); these configurations have none")  # fmt: skip
    if search is not None and not options.search.enabled:
        raise ConfigError(f"the configurations hold a search ([search.{search.space.name}]): run it with "
                          "--search (and --budget or --trials), or leave the table out")  # fmt: skip
    if search is None and not variants:
        raise ConfigError("no configurations to train; define at least one")
    record = read_run_record(options.resume) if search is not None and options.resume is not None else None
    if isinstance(record, dict) and "search" not in record:  # a damaged run.json is kept aside later
        raise ConfigError(f"--resume {options.resume}: not started as a search, so --search cannot continue it; "
                          "start the search in a new folder with --out")  # fmt: skip


def verification_seed(seed: int) -> int:
    """The first seed of a search's verification: not the seed its candidates were trained with."""
    return (seed + 1) % 2**31


def _check(
    variants: Sequence[Variant],
    options: Options,
    declared_reference: str | None,
    timings: PhaseTimes,
    search: SearchRequest | None = None,
) -> _Checked:
    """Validate at the door, cheapest first: the backend, the executor, the run folder and the
    reference (names only), then each builder, called once."""
    _check_search(variants, options, search)
    check_backend(options.backend)
    if options.executor == "ray":
        import_ray()  # refuses, in one line, when Ray is not installed
    run_dir = _run_folder(options)
    variants = prepared(variants, options)
    if search is not None:  # the reference is chosen once the candidates to verify are known
        with timings.measure("checking"):
            facts = check_variants(variants) if variants else []
        return _Checked(list(variants), [], options, run_dir, search)
    reference = resolve_reference([variant.name for variant in variants], options.reference, declared_reference)
    options = dataclasses.replace(options, reference=reference)
    with timings.measure("checking"):
        facts = check_variants(variants)
    return _Checked(variants, plan_trials(variants, options.seed, options.run_repeats, facts), options, run_dir)


def _print_plan(checked: _Checked, log: RunLog) -> None:
    """--plan: the data it would read, the groups, their costs and an estimate, from the digit
    counts alone."""
    options = checked.options
    train, validation, source = planned_data(
        options.data, seed=options.seed, validation_split=options.validation_split, quick=options.quick
    )
    log(f"Data: {source.describe(width=94)}")  # which digits it would read, before it says what it would train
    if options.quick:
        log(f"  --quick: {train + validation:,} of its training digits")
    if checked.search is not None:
        epochs = options.epochs_override or int(checked.search.space.fixed.get("epochs", DEFAULT_EPOCHS))
        log(search_plan_text(checked.search, options, epochs))
        if checked.variants:
            log(f"  beside them, on the same seeds: {', '.join(variant.name for variant in checked.variants)}")
        return
    log(plan_text(plan_groups(checked.trials, fuse=options.fused), train, validation, options.unfused_reason))


def _open(
    variants: Sequence[Variant],
    options: Options,
    declared_reference: str | None,
    log: RunLog,
    timings: PhaseTimes,
    search: SearchRequest | None = None,
) -> _Opened | None:
    """Check the input, load the data and open the run folder with what is left to train (None for
    --plan, which only prints the plan); a search runs here, and what is left is its verification."""
    checked = _check(variants, options, declared_reference, timings, search)
    if checked.options.plan:
        _print_plan(checked, log)
        return None
    options, run_dir = checked.options, checked.run_dir
    with timings.measure("data"):
        loaded = load_prepared(
            options.data, seed=options.seed, validation_split=options.validation_split, quick=options.quick, log=log
        )
    data = loaded.data
    # Only now open the run folder, so that bad input leaves no empty one behind.
    with timings.measure("planning"):
        lock = prepare_run_dir(run_dir, resume=options.resume is not None)
    try:
        with timings.measure("planning"):
            log.open(run_dir / LOG_FILE)
            context = {"data": loaded.record, "versions": versions()}
            if checked.search is not None:
                context["search"] = {"space": checked.search.space.name, **dataclasses.asdict(options.search)}
            write_run_record(run_dir, options, checked.variants, context, log)
            log(f"Run folder: {run_dir}  |  backend: {keras.backend.backend()}  |  seed: {options.seed}")
            log(f"Training {len(data.x_train):,}, validating {len(data.x_val):,}, testing {len(data.x_test):,} digits.")
        if checked.search is not None:
            checked = _searched(checked, data, declared_reference, log, timings)
            options = checked.options
        with timings.measure("planning"):
            keys = {trial: trial_key(trial, loaded.identity) for trial in checked.trials}
            tensorboard_root = run_dir / TENSORBOARD_FOLDER if options.tensorboard else None
            work = _plan_work(run_dir, checked.trials, keys, data, GroupsToTrain(
                [], data, run_dir, keys, {}, context, options, log, log.keep, timings, tensorboard_root))  # fmt: skip
    except BaseException:
        lock.close()
        raise
    return _Opened(work, loaded.source, lock)


def _searched(
    checked: _Checked, data: PreparedData, declared_reference: str | None, log: RunLog, timings: PhaseTimes
) -> _Checked:
    """Run the search, then plan its verification: the configurations given beside the search
    and the best candidates, each trained `--repeats` times on fresh seeds.

    Raises:
        _SearchInterrupted: on Ctrl-C (the study keeps every told candidate).
        ConfigError: when there is nothing to verify.
    """
    options, search = checked.options, checked.search
    try:
        with timings.measure("searching"):
            found = run_search(search, data, checked.run_dir, options, log)
    except KeyboardInterrupt:
        raise _SearchInterrupted(checked.run_dir) from None
    variants = [*checked.variants, *found]
    if not variants:
        raise ConfigError("the search completed no candidate and no other configuration was given: nothing to "
                          "verify; give it a longer --budget or more --trials")  # fmt: skip
    reference = resolve_reference([variant.name for variant in variants], options.reference, declared_reference)
    options = dataclasses.replace(options, reference=reference)
    with timings.measure("checking"):
        facts = check_variants(variants)
    seed = verification_seed(options.seed)
    log(f"\nVerification: {len(variants)} configuration(s), {options.run_repeats} run(s) each from seed {seed}, "
        f"compared with {reference} on the test set")  # fmt: skip
    return dataclasses.replace(
        checked, variants=variants, options=options, trials=plan_trials(variants, seed, options.run_repeats, facts)
    )


def _plan_work(run_dir: Path, trials: Sequence, keys: dict, data: PreparedData, work: GroupsToTrain) -> GroupsToTrain:
    """`work` with what is left to train: finished trials are kept, the rest train in groups
    (fused unless --no-fuse; see `resume.plan_resume`); leftovers of finished groups are removed."""
    plan = plan_resume(run_dir, trials, keys, fuse=work.options.fused, test_samples=len(data.x_test))
    for trial in trials:
        if plan.actions[trial].kind == "skip":
            work.log(f"{trial.folder}: finished earlier with the same configuration; kept")
    for note in plan.notes:
        work.log(note)
    for leftover in plan.stale:
        shutil.rmtree(leftover, ignore_errors=True)
    work.log(estimate_sweep(plan.groups, len(data.x_train), len(data.x_val)).line())
    if work.options.unfused_reason and any(len(group) == 1 for group in plan.groups):
        work.log(f"Each model trains alone: {work.options.unfused_reason}.")  # as the plan says
    return dataclasses.replace(work, groups=plan.groups, keys=plan.keys, actions=plan.actions, riders=plan.riders)


def _unfinished_epochs(work: GroupsToTrain) -> list[str]:
    """A line per group that stopped part-way: the epochs its checkpoint keeps for --resume."""
    lines = []
    for group in work.groups:
        kept = work.checkpoint(group).epochs()
        unfinished = [f.trial.folder for f in work.folders(group) if f.trial not in work.riders and not f.finished()]
        if kept and unfinished:
            lines.append(wrapped(f"  {', '.join(unfinished)}: {kept} of {group[0].variant.epochs} epochs kept", "    "))
    return lines


def _train(work: GroupsToTrain, log: Callable[[str], None]) -> int:
    """Hand the groups to the executor; 130 when interrupted (finished trials are kept)."""
    try:
        if work.options.executor == "ray" and work.groups:
            run_groups_on_ray(work)
        else:
            run_groups_locally(work)
    except KeyboardInterrupt:
        with interrupts_ignored():  # the way to continue is printed whole; the summary after can be cut
            log(f"\nInterrupted: {len(read_results(work.run_dir))} finished model(s) are kept in")
            log(f"  {work.run_dir}")
            for line in _unfinished_epochs(work):
                log(line)
            log(f"To continue where it stopped:\n  {work.options.resume_command(work.run_dir)}")
        return EXIT_INTERRUPTED
    return 0


def _summarize(work: GroupsToTrain, source: DataSource, seconds: float, log: Callable[[str], None]) -> Views:
    """Build the views from the run folder and print what they say (`tables.closing_lines`)."""
    with contextlib.suppress(OSError):  # fused groups' checkpoints are gone once they finish
        (work.run_dir / FUSED_FOLDER).rmdir()
    views = build_views(work.run_dir, work.data, work.options.reference)
    written = ["summary.csv", *(f"{name}.png" for name in views.figures if "/" not in name)]
    embedded = source.kind == "embedded-sample"
    for line in closing_lines(views.rows, work.run_dir, written, duration(seconds), embedded, views.findings):
        log(line)
    return views


def run_sweep(
    variants: Sequence[Variant],
    options: Options,
    log: Callable[[str], None] = print,
    reference: str | None = None,
    search: SearchRequest | None = None,
) -> SweepOutcome:
    """Validate, train and compare `variants`; return the exit code, run folder and views.

    Args:
        variants: the networks to train, in order (`Variant`: a name and a builder).
        options: how to run (`Options`; the scripts build it from the command line).
        log: where progress lines go (they also go to the run folder's `log.txt`).
        reference: the configuration the others are compared with, unless `options.reference`
            names one (the first when this one is not in the sweep).
        search: a search space and the script's loop from configurations to variants
            (`--search`): the search runs first, then its best candidates are verified beside
            `variants`.

    Returns:
        Its exit code: 0 when every model finished (diverged ones included), 1 when a run of any
        configuration failed (the others still ran), 130 when interrupted, at any moment (finished
        models are kept, and the command that continues the run is shown).

    Raises:
        UserInputError: for any bad input, before training starts; `RunFolderWriteError` when the
            run folder can no longer be written (the run stops; finished models are intact).
    """
    with tensorflow_left_alone(active=not options.tensorboard), interrupts_noted() as stop_requested:
        return _run_sweep(variants, options, RunLog(log), reference, stop_requested, search)


def _run_sweep(
    variants: Sequence[Variant],
    options: Options,
    log: RunLog,
    reference: str | None,
    stop_requested: Callable[[], bool],
    search: SearchRequest | None = None,
) -> SweepOutcome:
    timings, started_unix, started = PhaseTimes(), time.time(), time.perf_counter()
    try:
        opened = _open(variants, options, reference, log, timings, search)
    except _SearchInterrupted as stopped:
        log(f"\nInterrupted during the search: every candidate it finished is kept in {stopped.run_dir / STUDY_FILE}.")
        log(f"To continue the search (the time it spent counts) and verify its best:\n  "
            f"{options.resume_command(stopped.run_dir)}")  # fmt: skip
        return SweepOutcome(EXIT_INTERRUPTED, stopped.run_dir)
    except KeyboardInterrupt:
        log("\nInterrupted before training started; nothing was trained.")
        return SweepOutcome(EXIT_INTERRUPTED)
    if opened is None:  # --plan: printed; nothing trained, nothing written
        return SweepOutcome(0)
    work = dataclasses.replace(opened.work, stop_requested=stop_requested)
    try:
        with contextlib.closing(opened.lock):  # the run folder is this process's until the end
            training_started = time.perf_counter()
            status = _train(work, log)
            with timings.measure("views"):
                views = _summarize(work, opened.source, time.perf_counter() - training_started, log)
            write_json_atomic(
                work.run_dir / "timings.json", timings.record(time.perf_counter() - started, started_unix)
            )
            log(timings.line())
            if stop_requested() and status == 0:  # pressed while summarizing, and Python swallowed it
                raise KeyboardInterrupt
            status = _status_with_failures(work, status, log)
    except KeyboardInterrupt:  # while summarizing (a second press, when training was interrupted)
        with interrupts_ignored():  # these last lines are printed whole
            log(f"\nInterrupted while summarizing; every finished model is kept in {work.run_dir}.")
            log(f"To summarize it (and train what is left):\n  {options.resume_command(work.run_dir)}")
        return SweepOutcome(EXIT_INTERRUPTED, work.run_dir)
    return SweepOutcome(status, work.run_dir, views)


def _status_with_failures(work: GroupsToTrain, status: int, log: Callable[[str], None]) -> int:
    """`status`, or EXIT_MODEL_FAILED (said, with the models named) when a model failed."""
    failed = sorted(result["trial"] for result in read_results(work.run_dir) if result["status"] == "failed")
    if failed and status == 0:
        log(wrapped(f"Failed: {', '.join(failed)} (the reason in each one's result.json and traceback.txt); "
                    f"rerun them with --resume {work.run_dir}"))  # fmt: skip
        return EXIT_MODEL_FAILED
    return status
