"""The local executor: train the planned groups here, one after another, with a line per group.

A model that diverges or raises is recorded and the sweep goes on: a fused group that raises is
trained again model by model, so one model's failure (out of memory, say) is recorded against that
model alone.
"""

import datetime
import functools
import platform
import textwrap
import time
import traceback
from collections.abc import Callable, Sequence

from explorer.engine.groups import GroupsToTrain, result_line, train_and_record
from explorer.engine.time_left import TimeLeft
from explorer.engine.training import GroupSetup
from explorer.errors import RunFolderWriteError, failure_reason
from explorer.models.trials import Trial


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


def train_group_here(
    work: GroupsToTrain, group: Sequence[Trial], time_left: Callable[[int, float], str] = lambda epoch, s: ""
) -> None:
    """Train one group (fused or one model) in this process and log each result; a group that
    raises is recorded, not propagated: a fused one is trained again model by model."""
    fused = len(group) > 1
    fields = work.result_fields(group, executor="local", node=platform.node())
    setup = GroupSetup(
        folders=work.folders(group),
        checkpoint=work.checkpoint(group),
        log=work.log,
        tensorboard_root=work.tensorboard_root,
        riders=work.rider_positions(group),
        timings=work.timings,
        stop_requested=work.stop_requested,
        time_left=time_left,
    )
    try:
        results = train_and_record(group, work.data, setup, fields)
    except RunFolderWriteError:
        raise  # a full disk: nothing more can be written, so the sweep stops here
    except Exception as error:
        if fused:
            setup.checkpoint.close()  # the group's checkpoint is of no further use
            work.keep_in_log("".join(traceback.format_exception(error)))
            work.log(f"    fused training failed ({failure_reason(error)[:200]}; its traceback is in log.txt); "
                     "training these models one by one")  # fmt: skip
            for trial, folder in zip(group, setup.folders, strict=True):
                if trial in work.riders or folder.finished():
                    continue  # finished before the group failed, or trained in a group of its own
                work.log(f"    {trial.folder}:")
                train_group_here(work, [trial], time_left)
            return
        results = [setup.folders[0].write_failure(error, fields[0])]
    for result in results:
        work.log(f"    {result['trial']}: {result_line(result)}" if fused else f"    {result_line(result)}")


def run_groups_locally(work: GroupsToTrain) -> None:
    """Train every group of `work` here, in order, with a line per group and per epoch, each
    saying about how long the run has left (`time_left.TimeLeft`, from the epochs measured so far),
    and `report.html` as a progress page before each group and after the last.
    Ctrl-C propagates as KeyboardInterrupt; finished trials are on disk."""
    started = time.perf_counter()
    clock = TimeLeft(work.groups, len(work.data.x_train), len(work.data.x_val))
    for number, group in enumerate(work.groups, start=1):
        if work.stop_requested():  # a Ctrl-C whose KeyboardInterrupt Python swallowed
            raise KeyboardInterrupt
        title = group_title(group, work.options.run_repeats, work.riders)
        elapsed = f"\n      elapsed {duration(time.perf_counter() - started)}{clock.text()}" if number > 1 else ""
        work.log(f"\n[{number}/{len(work.groups)}] {title}{elapsed}")
        work.show_progress(number - 1, group, clock.text())
        work.open_folders(group)
        group_started = time.perf_counter()
        train_group_here(work, group, functools.partial(_epoch_done, clock, number - 1))
        clock.group_done(number - 1, time.perf_counter() - group_started)
    if work.groups:  # every group trained: the page says so until the final report replaces it
        work.show_progress(len(work.groups), (), "")


def _epoch_done(clock: TimeLeft, group: int, epoch: int, seconds: float) -> str:
    """Tell the clock an epoch of `group` ended; the time left, as the epoch's line says it."""
    clock.epoch_done(group, epoch, seconds)
    return clock.text()
