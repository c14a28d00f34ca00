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

from explorer.errors import DamagedFileError, UserInputError
from explorer.models.trials import Trial, group_id, plan_groups
from explorer.store.files import move_aside, read_json, write_json_atomic
from explorer.store.folders import (
    FUSED_FOLDER,
    GROUP_RECORD,
)
from explorer.store.records import (
    checkpoint_epochs,
    history_epochs,
    history_is_finite,
    read_history,
    result_problem,
    saved_epochs,
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
    stale: list[Path]  # checkpoints of groups whose members all finished: of no further use


def fused_members(checkpoint_dir: Path, by_folder: Mapping[str, Trial], keys: Mapping[Trial, str]) -> list[Trial]:
    """The members of the fused group that checkpointed in `checkpoint_dir` (from its
    `group.json`), in order; empty unless every one is in this sweep with the same fingerprint
    and none has early stopping (which trains alone)."""
    record = read_json(checkpoint_dir / GROUP_RECORD)
    members = record.get("members") if isinstance(record, dict) else None
    if not isinstance(members, list) or len(members) < 2:
        return []
    trials = []
    for member in members:
        trial = by_folder.get(member.get("folder")) if isinstance(member, dict) else None
        if trial is None or keys[trial] != member.get("key") or trial.variant.early_stopping:
            return []
        trials.append(trial)
    return trials if group_id([keys[trial] for trial in trials]) == checkpoint_dir.name else []


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
    keys, riders, reformed, stale = dict(keys), set(), [], []
    for checkpoint_dir in sorted((run_dir / FUSED_FOLDER).glob("*")):
        members = fused_members(checkpoint_dir, by_folder, keys)
        epochs = checkpoint_epochs(checkpoint_dir)
        for trial in members:
            if actions[trial].kind == "continue":
                actions[trial] = agrees_with_checkpoint(run_dir / trial.folder, epochs)
        if members and all(actions[trial].kind == "skip" for trial in members):
            stale.append(checkpoint_dir)
        if epochs and any(actions[trial].kind == "continue" for trial in members):
            reformed.append(_with_riders(members, actions, keys, riders))
    claimed = {trial for group in reformed for trial in group}
    for trial in trials:
        own_checkpoint = run_dir / trial.folder / "checkpoint"
        if trial not in claimed and actions[trial].kind == "continue":
            actions[trial] = agrees_with_checkpoint(run_dir / trial.folder, checkpoint_epochs(own_checkpoint))
        elif actions[trial].kind == "skip" and own_checkpoint.exists():
            stale.append(own_checkpoint)
    pending = [trial for trial in trials if actions[trial].kind != "skip" and trial not in claimed]
    return ResumePlan(actions, reformed + plan_groups(pending, fuse=fuse), frozenset(riders), keys, stale)


def diverged_before(history_csv: Path) -> bool:
    """Whether a model's history, kept from before an interruption, ends in a loss that diverged:
    such a model stays diverged when its group continues (it gets no more rows)."""
    try:
        return history_csv.exists() and not history_is_finite(read_history(history_csv))
    except DamagedFileError:  # a row cut short by the interruption; finish_history drops it
        return False


def discard_stale_histories(model_dirs: Sequence[Path], checkpoint_dir: Path) -> None:
    """Before a group trains, make each member's folder; without a checkpoint to continue from, the
    histories its members kept are stale (their epochs train again), so they go; with one, they
    continue."""
    resuming = bool(saved_epochs(checkpoint_dir))
    for model_dir in model_dirs:
        model_dir.mkdir(parents=True, exist_ok=True)
        if not resuming:
            (model_dir / "history.csv").unlink(missing_ok=True)


def open_trial_folder(
    model_dir: Path, key: str, trial: Trial, action: ResumeAction, log: Callable[[str], None]
) -> None:
    """Make a trial's folder ready to train (`action` from `resume.trial_action`): an old attempt is
    moved aside, for the reason the action gives; `trial.json` records what trains there.

    Raises:
        UserInputError: when the folder cannot be written.
    """
    try:
        if action.kind == "replace":
            aside = move_aside(model_dir).relative_to(model_dir.parent)
            log(f"    {trial.folder}: {action.why}; retraining it (old folder moved to {aside})")
        elif action.kind == "continue" and action.epochs:
            log(f"    {trial.folder}: continuing after epoch {action.epochs}, from its checkpoint")
        model_dir.mkdir(parents=True, exist_ok=True)
        record = {"trial_key": key, "seed": trial.seed, "config": dict(trial.facts.description)}
        write_json_atomic(model_dir / "trial.json", record)
    except OSError as error:
        raise UserInputError(f"{model_dir}: cannot write there ({error.strerror or error})") from None


def group_checkpoint(run_dir: Path, group: Sequence[Trial], trial_keys: Sequence[str]) -> tuple[Path, str | None]:
    """Where a group checkpoints while it trains, and its fused-group identity: a lone model keeps
    its checkpoint in its own folder (no identity); a fused group in `RUN_DIR/.fused/<id>`."""
    if len(group) == 1:
        return run_dir / group[0].folder / "checkpoint", None
    identity = group_id(trial_keys)
    return run_dir / FUSED_FOLDER / identity, identity
