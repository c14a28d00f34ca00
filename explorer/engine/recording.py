"""Train a group and write each trial's files: what both executors do with `train_group`.

Files per trial: `history.csv` (written while it trains), `curves.png`, `model.keras`,
`model_summary.txt` (what `model.summary()` prints), `test_predictions.npy` (predicted digit per
test image) and, last, `result.json`: its presence means the trial finished. The group's checkpoint
is removed only once every member's files are written, so a kill at any moment loses at most the
epoch in progress. (A group that raises is the executor's to record: each trial of it gets a
`result.json` with status "failed".)
"""

import dataclasses
import shutil
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from explorer.config.options import Options
from explorer.data.prepare import PreparedData
from explorer.engine.phases import PhaseTimes
from explorer.engine.training import GroupSetup, Outcome, train_group
from explorer.models.trials import Trial
from explorer.store.files import (
    pause_if_asked,
    save_array_atomic,
    save_figure,
    save_model_atomic,
    write_json_atomic,
    write_text_atomic,
)
from explorer.store.folders import GROUP_RECORD, RIDERS_FOLDER
from explorer.store.records import result_record
from explorer.store.resume import ResumeAction, group_checkpoint, open_trial_folder
from explorer.views.figures import plot_history


def record_outcome(outcome: Outcome, model_dir: Path, context: Mapping[str, object]) -> dict:
    """Write one trained trial's files and return its result record (`result.json`, written last).

    The model, its predictions and its test figures are those of the weights it keeps (with early
    stopping, the best epoch's); `history.csv` and the curves hold every epoch it ran."""
    trial, history = outcome.trial, outcome.history
    samples = outcome.facts["samples"]
    flops = trial.facts.flops_per_epoch(samples["train"], samples["validation"])
    train_flops = None if flops is None else flops * len(history["loss"])  # unknown stays unknown
    context = {**context, **outcome.facts, "flops_per_epoch": flops, "train_flops": train_flops}
    if outcome.diverged:
        reason = f"loss became {history['loss'][-1]} in epoch {len(history['loss']) - 1}; training stopped"
        result = result_record(trial, "diverged", context, history=history, reason=reason)
    else:
        save_array_atomic(model_dir / "test_predictions.npy", outcome.predictions)
        save_model_atomic(outcome.model, model_dir / "model.keras")
        result = result_record(trial, "ok", context, history=history, test=outcome.test)
    save_figure(plot_history(history, title=trial.folder), model_dir / "curves.png")
    if trial.facts.summary:
        write_text_atomic(model_dir / "model_summary.txt", trial.facts.summary + "\n")
    write_json_atomic(model_dir / "result.json", result)
    return result


def train_and_record(
    trials: Sequence[Trial],
    data: PreparedData,
    setup: GroupSetup,
    contexts: Sequence[Mapping[str, object]],
    riders: Collection[int] = (),
) -> list[dict]:
    """Train one group (`train_group`) and write each trial's files into its folder of
    `setup.model_dirs`; `contexts` are each trial's facts to record. The members at positions
    `riders` train only so the group's checkpoint loads: nothing of theirs is recorded. Once every
    other member's files are written, the group's checkpoint is removed.

    Returns:
        The result records of the members that are not riders, in order.
    """
    keys = [context.get("trial_key") for context in contexts]
    if len(trials) > 1 and all(keys):  # a fused group: its members, so that a resume can form it again
        members = [{"folder": trial.folder, "key": key} for trial, key in zip(trials, keys, strict=True)]
        setup.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(setup.checkpoint_dir / GROUP_RECORD, {"members": members})
    outcomes = train_group(trials, data, dataclasses.replace(setup, riders=frozenset(riders)))
    pause_if_asked("trained")
    results = []
    with setup.measure("saving"):
        for outcome, model_dir, context in zip(outcomes, setup.model_dirs, contexts, strict=True):
            if outcome is not None:  # None: a rider
                results.append(record_outcome(outcome, model_dir, context))
                pause_if_asked("recorded one")
    shutil.rmtree(setup.checkpoint_dir, ignore_errors=True)  # every finished epoch is in the files now
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
class Work:
    """What an executor needs to train the planned groups of a sweep and record them."""

    groups: Sequence[Sequence[Trial]]
    data: PreparedData
    run_dir: Path
    keys: Mapping[Trial, str]  # each trial's fingerprint (`models.trials.trial_key`)
    actions: Mapping[Trial, ResumeAction]  # each trial's `resume.plan_resume` decision
    context: Mapping[str, object]  # facts every result records (data source, versions)
    options: Options
    log: Callable[[str], None] = print
    timings: PhaseTimes | None = None  # where the executor adds each phase's seconds
    riders: frozenset[Trial] = frozenset()  # members that train unrecorded (`resume.ResumePlan`)
    stop_requested: Callable[[], bool] = lambda: False  # a Ctrl-C that Python may have swallowed

    def open_folders(self, trials: Sequence[Trial]) -> None:
        """Make the trials' folders ready to train (see `store.resume.open_trial_folder`); riders'
        folders are not theirs to touch."""
        for trial in trials:
            if trial not in self.riders:
                open_trial_folder(self.run_dir / trial.folder, self.keys[trial], trial, self.actions[trial], self.log)

    def rider_positions(self, group: Sequence[Trial]) -> frozenset[int]:
        return frozenset(position for position, trial in enumerate(group) if trial in self.riders)

    def model_dirs(self, group: Sequence[Trial], checkpoint_dir: Path) -> list[Path]:
        """Where each member writes while it trains: its own folder, or for a rider a scratch folder
        inside the group's checkpoint, removed with it."""
        return [
            checkpoint_dir / RIDERS_FOLDER / trial.folder if trial in self.riders else self.run_dir / trial.folder
            for trial in group
        ]

    def contexts(self, group: Sequence[Trial], **facts: object) -> tuple[Path, list[dict]]:
        """A group's checkpoint folder, and each trial's facts to record (the sweep's, its
        fingerprint, its fused group's identity and the executor's `facts`)."""
        keys = [self.keys[trial] for trial in group]
        checkpoint_dir, fused_group = group_checkpoint(self.run_dir, group, keys)
        contexts = [{**self.context, "trial_key": key, **facts, "fused_group": fused_group} for key in keys]
        return checkpoint_dir, contexts
