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
import traceback
from collections.abc import Sequence

from explorer.engine.recording import Work, result_line, train_and_record
from explorer.engine.training import GroupSetup
from explorer.errors import RunFolderWriteError
from explorer.models.trials import Trial
from explorer.store.files import append_text, write_json_atomic, write_text_atomic
from explorer.store.folders import LOG_FILE, TENSORBOARD_FOLDER
from explorer.store.records import failure_reason, result_record


def duration(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=round(seconds))


def group_title(group: Sequence[Trial], repeats: int, riders: frozenset[Trial] = frozenset()) -> str:
    """The sweep line of a group: the model (which repeat, and its early stopping's patience), or
    the fused models (riders marked), each line within 100 columns."""
    trial = group[0]
    if len(group) == 1:
        which = f" (repeat {trial.repeat + 1} of {repeats}, seed {trial.seed})" if repeats > 1 else ""
        patience = trial.variant.early_stopping
        stopping = f", early stopping (patience {patience})" if patience else ""
        return f"{trial.folder}{which}{stopping}"
    variant, config = trial.variant, trial.facts.description
    which = f"repeat {trial.repeat + 1} of {repeats}, " if repeats > 1 else ""  # one seed: one repeat
    epochs = f"{variant.epochs} epoch{'s' if variant.epochs > 1 else ''}"
    title = (
        f"{len(group)} models fused: {which}seed {trial.seed}, {epochs}, batch {variant.batch_size}, "
        f"{config['optimizer']} {config['learning_rate']:g}"
    )
    names = ", ".join(f"{t.folder} (rides along)" if t in riders else t.folder for t in group)
    return title + "\n" + textwrap.fill(names, 100, initial_indent=" " * 6, subsequent_indent=" " * 6,
                                        break_on_hyphens=False)  # fmt: skip


def train_isolated(work: Work, group: Sequence[Trial], verbose: int | str) -> None:
    """Train one group and log each result; a group that raises is recorded, not propagated."""
    fused = len(group) > 1
    checkpoint_dir, contexts = work.contexts(group, executor="local", node=platform.node())
    tensorboard_dir = work.run_dir / TENSORBOARD_FOLDER / group[0].folder if work.options.tensorboard else None
    setup = GroupSetup(
        model_dirs=work.model_dirs(group, checkpoint_dir),
        checkpoint_dir=checkpoint_dir,
        verbose=verbose,
        log=work.log,
        tensorboard_dir=tensorboard_dir,
        timings=work.timings,
    )
    try:
        results = train_and_record(group, work.data, setup, contexts, work.rider_positions(group))
    except RunFolderWriteError:
        raise  # a full disk: nothing more can be written, so the sweep stops here
    except Exception as error:
        if fused:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the group's checkpoint is of no further use
            append_text(work.run_dir / LOG_FILE, "".join(traceback.format_exception(error)))
            work.log(f"    fused training failed ({failure_reason(error)[:200]}; its traceback is in {LOG_FILE}); "
                     "training these models one by one")  # fmt: skip
            for trial in group:
                if trial in work.riders or (work.run_dir / trial.folder / "result.json").exists():
                    continue  # finished before the group failed, or trained in a group of its own
                work.log(f"    {trial.folder}:")
                train_isolated(work, [trial], verbose)
            return
        model_dir = work.run_dir / group[0].folder
        write_text_atomic(model_dir / "traceback.txt", "".join(traceback.format_exception(error)))
        reason = f"{failure_reason(error)} (traceback in {group[0].folder}/traceback.txt)"
        results = [result_record(group[0], "failed", contexts[0], reason=reason)]
        write_json_atomic(model_dir / "result.json", results[0])
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
        if work.stop_requested():  # a Ctrl-C whose KeyboardInterrupt Python swallowed
            raise KeyboardInterrupt
        title = group_title(group, work.options.run_repeats, work.riders)
        progress = f"\n      elapsed {duration(elapsed)}{eta}" if number > 1 else ""  # nothing to say before the first
        work.log(f"\n[{number}/{len(work.groups)}] {title}{progress}")
        work.open_folders(group)
        train_isolated(work, group, verbose)
        done += len(group)
