"""The local executor: train the planned groups here, one after another, with a line per group.

A model that diverges or raises is recorded and the sweep goes on: a fused group that raises is
trained again model by model, so one model's failure (out of memory, say) is recorded against that
model alone.
"""

import datetime
import platform
import shutil
import sys
import textwrap
import time
from collections.abc import Sequence

from explorer.options import TENSORBOARD_FOLDER
from explorer.recording import Work, result_line, train_and_record
from explorer.run_folder import failure_reason, result_record, write_json_atomic
from explorer.training import GroupSetup
from explorer.trials import Trial


def duration(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=round(seconds))


def group_title(group: Sequence[Trial], repeats: int) -> str:
    """The sweep line of a group: the model (and which repeat), or the fused models, each line
    within 100 columns."""
    trial = group[0]
    if len(group) == 1:
        which = f" (repeat {trial.repeat + 1} of {repeats}, seed {trial.seed})" if repeats > 1 else ""
        return f"{trial.folder}{which}"
    variant, config = trial.variant, trial.facts.description
    which = f"repeat {trial.repeat + 1} of {repeats}, " if repeats > 1 else ""  # one seed: one repeat
    epochs = f"{variant.epochs} epoch{'s' if variant.epochs > 1 else ''}"
    title = (
        f"{len(group)} models fused: {which}seed {trial.seed}, {epochs}, batch {variant.batch_size}, "
        f"{config['optimizer']} {config['learning_rate']:g}"
    )
    return title + "\n" + textwrap.fill(", ".join(t.folder for t in group), 100, initial_indent=" " * 6,
                                        subsequent_indent=" " * 6, break_on_hyphens=False)  # fmt: skip


def train_isolated(work: Work, group: Sequence[Trial], verbose: int | str) -> None:
    """Train one group and log each result; a group that raises is recorded, not propagated."""
    fused = len(group) > 1
    checkpoint_dir, contexts = work.contexts(group, executor="local", node=platform.node())
    tensorboard_dir = work.run_dir / TENSORBOARD_FOLDER / group[0].folder if work.options.tensorboard else None
    setup = GroupSetup(
        model_dirs=[work.run_dir / trial.folder for trial in group],
        checkpoint_dir=checkpoint_dir,
        verbose=verbose,
        log=work.log,
        tensorboard_dir=tensorboard_dir,
        timings=work.timings,
    )
    try:
        results = train_and_record(group, work.data, setup, contexts)
    except Exception as error:
        if fused:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the group's checkpoint is of no further use
            work.log(f"    fused training failed ({failure_reason(error)[:200]}); training these models one by one")
            for trial in group:
                if (work.run_dir / trial.folder / "result.json").exists():
                    continue  # finished before the group failed
                work.log(f"    {trial.folder}:")
                train_isolated(work, [trial], verbose)
            return
        results = [result_record(group[0], "failed", contexts[0], reason=failure_reason(error))]
        write_json_atomic(work.run_dir / group[0].folder / "result.json", results[0])
    for result in results:
        work.log(f"    {result['trial']}: {result_line(result)}" if fused else f"    {result_line(result)}")


def run_groups_locally(work: Work) -> None:
    """Train every group of `work` here, in order, with a line per group and an estimate of the
    time left. Ctrl-C propagates as KeyboardInterrupt; finished trials are on disk."""
    verbose = 1 if sys.stdout.isatty() else 2  # a progress bar on a terminal, one line per epoch in logs
    started, done = time.perf_counter(), 0
    pending = sum(len(group) for group in work.groups)
    for number, group in enumerate(work.groups, start=1):
        elapsed = time.perf_counter() - started
        # Estimated from the trials trained so far in this process (skipped ones cost nothing).
        eta = f", about {duration(elapsed / done * (pending - done))} left" if done else ""
        title = group_title(group, work.options.run_repeats)
        progress = f"\n      elapsed {duration(elapsed)}{eta}" if number > 1 else ""  # nothing to say before the first
        work.log(f"\n[{number}/{len(work.groups)}] {title}{progress}")
        work.open_folders(group)
        train_isolated(work, group, verbose)
        done += len(group)
