"""What a sweep does with a run folder that already holds work: every file checked before it is trusted.

A trial whose files are all sound is kept; one that started with the same fingerprint continues
from its group's checkpoint, provided its own history agrees with that checkpoint; anything
damaged or changed is moved aside (to `.replaced/`) and trained again from the start. A fused
group's checkpoint holds every member's weights, so the group is formed again exactly as it was:
members that need nothing from it (finished, or set aside as damaged) ride along unrecorded, only so
that the checkpoint loads, and the others keep every epoch they finished. Only groups that
checkpointed fused are formed again; the rest are grouped afresh (`models.trials.plan_groups`), so a
trial with early stopping, which never fuses, continues alone from its own checkpoint.
"""

import dataclasses
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from explorer.errors import DamagedFileError
from explorer.models.trials import Trial, group_id, plan_groups
from explorer.store.files import read_json
from explorer.store.group_checkpoint import GroupCheckpoint
from explorer.store.schema import (
    history_epochs,
    history_is_finite,
    read_history,
    result_problem,
)

MODEL_FILE_PARTS = ("config.json", "model.weights.h5")  # what a `.keras` archive holds, at least


@dataclasses.dataclass(frozen=True)
class ResumeAction:
    """What to do with one trial's folder: "skip" (finished, same fingerprint, every file sound),
    "continue" (started with the same fingerprint, not finished: its group's checkpoint, holding
    `epochs` epochs, is picked up), "replace" (moved aside and retrained, for the reason `why`) or
    "train" (nothing there yet). `plan_resume` decides."""

    kind: str
    why: str = ""
    epochs: int = 0


def model_file_problem(path: Path) -> str | None:
    """What is wrong with a saved `model.keras`, or None: it must be a complete zip archive (every
    member's checksum verified) holding Keras' configuration and weights."""
    try:
        with zipfile.ZipFile(path) as archive:
            missing = [part for part in MODEL_FILE_PARTS if part not in archive.namelist()]
            broken = archive.testzip()
    except FileNotFoundError:
        return "its model.keras is missing"
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return "its model.keras is not a complete Keras archive"
    if missing or broken:
        return "its model.keras is not a complete Keras archive"
    return None


def predictions_problem(path: Path, test_samples: int) -> str | None:
    """What is wrong with `test_predictions.npy`, or None: one digit (0-9) per test image."""
    try:
        predicted = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return "its test_predictions.npy is missing"
    except (OSError, ValueError, EOFError):
        return "its test_predictions.npy cannot be read"
    sound = predicted.shape == (test_samples,) and predicted.dtype.kind in "iu"
    if not sound or (predicted.size and not 0 <= predicted.min() <= predicted.max() <= 9):
        return f"its test_predictions.npy does not hold one digit for each of the {test_samples:,} test images"
    return None


def finished_files_problem(model_dir: Path, record: Mapping, test_samples: int) -> str | None:
    """What is wrong with a finished trial's files, or None: those the views read
    (`drawn_files_problem`), and a finished ("ok") model's `model.keras`."""
    problem = drawn_files_problem(model_dir, record, test_samples)
    if problem is None and record["status"] == "ok":
        return model_file_problem(model_dir / "model.keras")
    return problem


def drawn_files_problem(model_dir: Path, record: Mapping, test_samples: int) -> str | None:
    """What is wrong with the files a finished trial is summarized and drawn from, or None: its
    history has exactly the epochs its result counts (no loss that is not a number if it finished),
    and a finished ("ok") model has one predicted digit per test image."""
    try:
        history = read_history(model_dir / "history.csv")  # every column there, a number in every cell
        epochs = history_epochs(model_dir / "history.csv")
    except DamagedFileError:
        return "its history.csv is missing or damaged"
    if epochs != list(range(record["epochs_run"])):
        return f"its history.csv holds {len(epochs)} epoch(s), its result.json {record['epochs_run']}"
    if record["status"] != "ok":
        return None
    if not history_is_finite(history):
        return "its history.csv holds a loss that is not a number, yet its result.json says it finished"
    return predictions_problem(model_dir / "test_predictions.npy", test_samples)


def sound_results(results: Sequence[Mapping], folder_of: Callable[[Mapping], Path], test_samples: int) -> list:
    """The results whose records and drawn files `--resume` would keep (`drawn_files_problem`; the
    model archive, which the summaries do not read, aside), in order: what the views draw and
    `--compare` compares, so that nothing resume would set aside for them is ever shown. A failed
    result has no files to check and is kept (the summary names it)."""
    return [
        result
        for result in results
        if result["status"] == "failed" or drawn_files_problem(folder_of(result), result, test_samples) is None
    ]


def trial_action(model_dir: Path, key: str, test_samples: int) -> ResumeAction:
    """Read a trial's folder and decide what a sweep does with it (see `ResumeAction`); whether an
    unfinished one agrees with its group's checkpoint is `plan_resume`'s to say."""
    if not model_dir.exists() or not any(model_dir.iterdir()):
        return ResumeAction("train")
    if (model_dir / "result.json").exists():
        record = read_json(model_dir / "result.json")
        problem = result_problem(record)
        if problem is not None:
            return ResumeAction("replace", f"its result.json {problem}")
        if record["trial_key"] != key:
            return ResumeAction("replace", "its network, settings or data changed")
        if record["status"] == "failed":
            return ResumeAction("replace", "it failed before")
        problem = finished_files_problem(model_dir, record, test_samples)
        return ResumeAction("skip") if problem is None else ResumeAction("replace", problem)
    started = read_json(model_dir / "trial.json")
    if not isinstance(started, dict) or not isinstance(started.get("trial_key"), str):
        return ResumeAction("replace", "its trial.json is missing or damaged")
    if started["trial_key"] != key:
        return ResumeAction("replace", "its network, settings or data changed")
    return ResumeAction("continue")


def agrees_with_checkpoint(model_dir: Path, epochs: int) -> ResumeAction:
    """ "continue" from a checkpoint of `epochs` epochs when the trial's history has a row for each
    of them (and at most the one epoch after it, finished but not yet checkpointed); "replace"
    otherwise, since the checkpoint would then continue a record that lost its first epochs."""
    if epochs == 0:  # nothing to agree with: the trial starts again, said when it had finished
        finished = any((model_dir / name).exists() for name in ("model.keras", "test_predictions.npy"))
        why = "its result.json is missing and no checkpoint holds its epochs"
        return ResumeAction("replace", why) if finished else ResumeAction("continue")
    try:
        found = set(history_epochs(model_dir / "history.csv"))
    except DamagedFileError:
        return ResumeAction(
            "replace", f"its history.csv is missing or damaged, and its checkpoint holds {epochs} epochs"
        )
    if not set(range(epochs)) <= found or max(found) > epochs:
        return ResumeAction("replace", f"its history.csv does not hold the {epochs} epochs its checkpoint holds")
    return ResumeAction("continue", epochs=epochs)


@dataclasses.dataclass(frozen=True)
class ResumePlan:
    """What is left to train in a run folder, and how."""

    actions: Mapping[Trial, ResumeAction]  # every trial of the sweep's
    groups: list[list[Trial]]  # the groups to train, in order: re-formed fused groups first
    riders: frozenset[Trial]  # members that train unrecorded, only so their group's checkpoint loads
    keys: Mapping[Trial, str]  # every trial's fingerprint, the riders' included
    stale: list[Path]  # checkpoints of no further use: every member finished, or its members unknown
    notes: list[str] = dataclasses.field(default_factory=list)  # what the plan set aside, and why


def fused_members(
    checkpoint: GroupCheckpoint, by_folder: Mapping[str, Trial], keys: Mapping[Trial, str]
) -> list[Trial]:
    """The members of the fused group that checkpointed in `checkpoint` (from its `group.json`), in
    order; empty unless every one is in this sweep with the same fingerprint and none has early
    stopping (which trains alone)."""
    trials = []
    for folder, key in checkpoint.recorded_members() or ():
        trial = by_folder.get(folder)
        if trial is None or keys[trial] != key or trial.variant.early_stopping:
            return []
        trials.append(trial)
    return trials if trials and group_id([keys[trial] for trial in trials]) == checkpoint.identity else []


def _with_riders(
    members: Sequence[Trial], actions: Mapping[Trial, ResumeAction], keys: dict[Trial, str], riders: set[Trial]
) -> list[Trial]:
    """A fused group formed again: members that continue as themselves; the others (finished, or
    set aside to train again from the start) as riders, trials of their own identity added to
    `keys` and `riders`."""
    group = []
    for member in members:
        trial = member
        if actions[member].kind != "continue":
            trial = dataclasses.replace(member)  # a rider: the same trial under an identity of its own
            keys[trial] = keys[member]
            riders.add(trial)
        group.append(trial)
    return group


def plan_resume(
    run_dir: Path, trials: Sequence[Trial], keys: Mapping[Trial, str], *, fuse: bool, test_samples: int
) -> ResumePlan:
    """Decide, for every trial of a sweep, what to do with what `run_dir` holds of it, and group
    what is left to train (see the module's docstring)."""
    actions = {trial: trial_action(run_dir / trial.folder, keys[trial], test_samples) for trial in trials}
    by_folder = {trial.folder: trial for trial in trials}
    keys, riders, reformed, stale, notes = dict(keys), set(), [], [], []
    for checkpoint in GroupCheckpoint.fused_in(run_dir):
        members = fused_members(checkpoint, by_folder, keys)
        epochs = checkpoint.epochs()
        if epochs and checkpoint.recorded_members() is None:
            # Its members are unknown, so no history can be checked against it; the same group
            # planned again would have the same identity and silently continue from it.
            stale.append(checkpoint.path)
            notes.append(f"{checkpoint.path.parent.name}/{checkpoint.path.name}: its group.json is missing or "
                         f"damaged, so its {epochs} epochs are not used; its members train from the start")  # fmt: skip
            continue
        for trial in members:
            if actions[trial].kind == "continue":
                actions[trial] = agrees_with_checkpoint(run_dir / trial.folder, epochs)
        if members and all(actions[trial].kind == "skip" for trial in members):
            stale.append(checkpoint.path)
        if epochs and any(actions[trial].kind == "continue" for trial in members):
            reformed.append(_with_riders(members, actions, keys, riders))
    claimed = {trial for group in reformed for trial in group}
    for trial in trials:
        own_checkpoint = GroupCheckpoint.for_group(run_dir, [trial], [keys[trial]])
        if trial not in claimed and actions[trial].kind == "continue":
            actions[trial] = agrees_with_checkpoint(run_dir / trial.folder, own_checkpoint.epochs())
        elif actions[trial].kind == "skip" and own_checkpoint.path.exists():
            stale.append(own_checkpoint.path)
    pending = [trial for trial in trials if actions[trial].kind != "skip" and trial not in claimed]
    return ResumePlan(actions, reformed + plan_groups(pending, fuse=fuse), frozenset(riders), keys, stale, notes)
