"""Train a group and write each trial's files: what both executors do with `train_group`.

Files per trial: `history.csv` (written while it trains), `curves.png`, `model.keras`,
`model_summary.txt` (what `model.summary()` prints), `test_predictions.npy` (predicted digit per
test image) and, last, `result.json`: its presence
means the trial finished. (A group that raises is the executor's to record: each trial of it gets a
`result.json` with status "failed".)
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from explorer.options import Options
from explorer.phases import PhaseTimes
from explorer.run_folder import (
    ResumeAction,
    group_checkpoint,
    open_trial_folder,
    result_record,
    save_array_atomic,
    save_figure,
    save_model_atomic,
    write_json_atomic,
    write_text_atomic,
)
from explorer.splits import PreparedData
from explorer.training import GroupSetup, Outcome, train_group
from explorer.trials import Trial
from explorer.views import plot_history


def record_outcome(outcome: Outcome, model_dir: Path, context: Mapping[str, object]) -> dict:
    """Write one trained trial's files and return its result record (`result.json`, written last)."""
    trial, history = outcome.trial, outcome.history
    samples = outcome.facts["samples"]
    flops = trial.facts.flops_per_epoch(samples["train"], samples["validation"])
    context = {**context, **outcome.facts, "flops_per_epoch": flops, "train_flops": flops * len(history["loss"])}
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
    trials: Sequence[Trial], data: PreparedData, setup: GroupSetup, contexts: Sequence[Mapping[str, object]]
) -> list[dict]:
    """Train one group (`train_group`) and write each trial's files into its folder of
    `setup.model_dirs`; `contexts` are each trial's facts to record. Returns the result records."""
    outcomes = train_group(trials, data, setup)
    with setup.measure("saving"):
        return [
            record_outcome(outcome, model_dir, context)
            for outcome, model_dir, context in zip(outcomes, setup.model_dirs, contexts, strict=True)
        ]


def train_and_evaluate(
    trial: Trial, data: PreparedData, model_dir: Path, *, context: Mapping[str, object], **setup: object
) -> dict:
    """Train one trial on its own, checkpointing in `model_dir/checkpoint`, and write its files to
    `model_dir`; `setup` sets the other `GroupSetup` fields (verbose, tensorboard_dir, ...)."""
    group_setup = GroupSetup(model_dirs=[model_dir], checkpoint_dir=model_dir / "checkpoint", **setup)
    (result,) = train_and_record([trial], data, group_setup, [{**context, "fused_group": None}])
    return result


def result_line(result: Mapping) -> str:
    """A finished trial in one short line: its test figures (and its own seconds when it trained
    alone; a fused group's are the group's), or why it has none."""
    if result["status"] == "ok":
        line = f"test acc {result['test_accuracy']:.4f}, test loss {result['test_loss']:.4f}, {result['parameters']:,} params"
        return line if result.get("fused_group") else f"{line}, {result['train_seconds']:.1f} s"
    return f"{result['status'].upper()}: {result['reason']}"


@dataclasses.dataclass(frozen=True)
class Work:
    """What an executor needs to train the planned groups of a sweep and record them."""

    groups: Sequence[Sequence[Trial]]
    data: PreparedData
    run_dir: Path
    keys: Mapping[Trial, str]  # each trial's fingerprint (`trials.trial_key`)
    actions: Mapping[Trial, ResumeAction]  # each trial's `run_folder.resume_action`
    context: Mapping[str, object]  # facts every result records (data source, versions)
    options: Options
    log: Callable[[str], None] = print
    timings: PhaseTimes | None = None  # where the executor adds each phase's seconds

    def open_folders(self, trials: Sequence[Trial]) -> None:
        """Make the trials' folders ready to train (see `run_folder.open_trial_folder`)."""
        for trial in trials:
            open_trial_folder(self.run_dir / trial.folder, self.keys[trial], trial, self.actions[trial], self.log)

    def contexts(self, group: Sequence[Trial], **facts: object) -> tuple[Path, list[dict]]:
        """A group's checkpoint folder, and each trial's facts to record (the sweep's, its
        fingerprint, its fused group's identity and the executor's `facts`)."""
        keys = [self.keys[trial] for trial in group]
        checkpoint_dir, fused_group = group_checkpoint(self.run_dir, group, keys)
        contexts = [{**self.context, "trial_key": key, **facts, "fused_group": fused_group} for key in keys]
        return checkpoint_dir, contexts
