"""The groups a sweep trains, and how a group is trained and recorded: what both executors do.

`GroupsToTrain` is what an executor is handed: the planned groups, the data, and for each group its
checkpoint (`store.group_checkpoint.GroupCheckpoint`) and its members' folders
(`store.trial_folder.TrialFolder`), which own every file written. `train_and_record` trains a group
(`training.train_group`), then writes each member's files through its folder, `result.json` last;
the group's checkpoint is closed only once every member's files are written, so a kill at any moment
loses at most the epoch in progress. (A group that raises is the executor's to record: each trial of
it gets a `result.json` with status "failed".)
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from explorer.config.options import Options
from explorer.data.prepare import PreparedData
from explorer.engine.phases import PhaseTimes
from explorer.engine.training import GroupSetup, Outcome, train_group
from explorer.models.trials import Trial
from explorer.store.files import pause_if_asked
from explorer.store.group_checkpoint import GroupCheckpoint
from explorer.store.resume import ResumeAction
from explorer.store.run_files import write_progress_page
from explorer.store.trial_folder import TrialFolder
from explorer.views.figures import plot_history
from explorer.views.progress_page import Progress, progress_page


def record_outcome(outcome: Outcome, folder: TrialFolder, fields: Mapping[str, object]) -> dict:
    """Write one trained trial's files and return its result record (`result.json`, written last).

    The model, its predictions and its test figures are those of the weights it keeps (with early
    stopping, the best epoch's); `history.csv` and the curves hold every epoch it ran."""
    trial, history = outcome.trial, outcome.history
    samples = outcome.how_trained["samples"]
    flops = trial.facts.flops_per_epoch(samples["train"], samples["validation"])
    train_flops = None if flops is None else flops * len(history["loss"])  # unknown stays unknown
    fields = {**fields, **outcome.how_trained, "flops_per_epoch": flops, "train_flops": train_flops}
    curves = plot_history(history, title=trial.folder)
    if outcome.diverged:
        folder.write_model_files(None, None, curves, trial.facts.summary)
        reason = f"loss became {history['loss'][-1]} in epoch {len(history['loss']) - 1}; training stopped"
        return folder.write_result("diverged", fields, history=history, reason=reason)
    folder.write_model_files(outcome.model, outcome.predictions, curves, trial.facts.summary)
    return folder.write_result("ok", fields, history=history, test=outcome.test)


def train_and_record(
    trials: Sequence[Trial], data: PreparedData, setup: GroupSetup, fields: Sequence[Mapping[str, object]]
) -> list[dict]:
    """Train one group (`train_group`) and write each trial's files through its folder of
    `setup.folders`; `fields` are what each trial's result records besides its figures. The members
    at the positions `setup.riders` train only so the group's checkpoint loads: nothing of theirs is
    recorded. Once every other member's files are written, the group's checkpoint is closed.

    Returns:
        The result records of the members that are not riders, in order.
    """
    if setup.checkpoint.identity is not None:  # a fused group: its members, so a resume can form it again
        setup.checkpoint.record_members([(folder.trial.folder, folder.key) for folder in setup.folders])
    outcomes = train_group(trials, data, setup)
    pause_if_asked("trained")
    results = []
    with setup.measure("saving"):
        for outcome, folder, member_fields in zip(outcomes, setup.folders, fields, strict=True):
            if outcome is not None:  # None: a rider
                results.append(record_outcome(outcome, folder, member_fields))
                pause_if_asked("recorded one")
    setup.checkpoint.close()  # every finished epoch is in the files now
    return results


def result_line(result: Mapping) -> str:
    """A finished trial in one short line: its test figures (with early stopping, the epoch it
    stopped after and the epoch it kept; and its own seconds when it trained alone; a fused
    group's are the group's), or why it has none."""
    if result["status"] == "ok":
        line = f"test acc {result['test_accuracy']:.4f}, test loss {result['test_loss']:.4f}, {result['parameters']:,} params"
        if result.get("early_stopping"):
            stopped = f"stopped after epoch {result['stopped_epoch']}" if result.get("stopped_epoch") else "no stop"
            line += f", {stopped}, kept epoch {result['best_epoch']}"
        return line if result.get("fused_group") else f"{line}, {result['train_seconds']:.1f} s"
    return f"{result['status'].upper()}: {result['reason']}"


@dataclasses.dataclass(frozen=True)
class GroupsToTrain:
    """What an executor needs to train the planned groups of a sweep and record them."""

    groups: Sequence[Sequence[Trial]]
    data: PreparedData
    run_dir: Path
    keys: Mapping[Trial, str]  # each trial's fingerprint (`models.trials.trial_key`)
    actions: Mapping[Trial, ResumeAction]  # each trial's `resume.plan_resume` decision
    recorded: Mapping[str, object]  # what every result records (data source, versions)
    options: Options
    log: Callable[[str], None] = print
    keep_in_log: Callable[[str], None] = lambda text: None  # text for log.txt only (a traceback)
    timings: PhaseTimes | None = None  # where the executor adds each phase's seconds
    tensorboard_root: Path | None = None  # with --tensorboard: a folder per trial in it
    riders: frozenset[Trial] = frozenset()  # members that train unrecorded (`resume.ResumePlan`)
    stop_requested: Callable[[], bool] = lambda: False  # a Ctrl-C that Python may have swallowed

    def checkpoint(self, group: Sequence[Trial]) -> GroupCheckpoint:
        return GroupCheckpoint.for_group(self.run_dir, group, [self.keys[trial] for trial in group])

    def folders(self, group: Sequence[Trial]) -> list[TrialFolder]:
        """Each member's folder: its own, or for a rider a scratch folder in the group's checkpoint."""
        checkpoint = self.checkpoint(group)
        return [
            TrialFolder(
                checkpoint.rider_path(t.folder) if t in self.riders else self.run_dir / t.folder, t, self.keys[t]
            )
            for t in group
        ]

    def open_folders(self, trials: Sequence[Trial]) -> None:
        """Make the trials' folders ready to train (`TrialFolder.open`); riders' folders are not
        theirs to touch."""
        for trial in trials:
            if trial not in self.riders:
                TrialFolder(self.run_dir / trial.folder, trial, self.keys[trial]).open(self.actions[trial], self.log)

    def rider_positions(self, group: Sequence[Trial]) -> frozenset[int]:
        return frozenset(position for position, trial in enumerate(group) if trial in self.riders)

    def show_progress(self, done: int, training: Sequence[Trial], time_left: str) -> None:
        """`report.html` as the page of a run in progress (`views.progress_page`): the trials of the
        first `done` groups that finished, their curves, what trains now and the time left."""
        finished, histories = [], {}
        for group in self.groups[:done]:
            for folder in self.folders(group):
                result = None if folder.trial in self.riders else folder.read_result()
                if result is not None:
                    finished.append(
                        (folder.trial.folder, result["test_accuracy"] if result["status"] == "ok" else None)
                    )
                    histories[folder.trial.folder] = folder.read_history() or {}
        progress = Progress(self.run_dir.name, done, len(self.groups), tuple(t.folder for t in training),
                            tuple(finished), time_left.removeprefix(", "))  # fmt: skip
        write_progress_page(self.run_dir, progress_page(progress, histories))

    def result_fields(self, group: Sequence[Trial], **executor: object) -> list[dict]:
        """What each member's result records besides its figures: the sweep's `recorded` facts,
        its fingerprint, its fused group's identity and the `executor`'s own (name, node)."""
        identity = self.checkpoint(group).identity
        return [{**self.recorded, "trial_key": self.keys[t], **executor, "fused_group": identity} for t in group]
