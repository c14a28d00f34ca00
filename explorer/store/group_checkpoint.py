"""A training group's checkpoint: the one owner of the files a group keeps between its epochs.

A lone model checkpoints in its own folder (`<trial>/checkpoint`); a fused group in
`RUN_DIR/.fused/<group id>`, beside a `group.json` that names its members so a resume can form the
group again. Each saved epoch is a folder of its own, `epoch-<epochs finished>`, written under a
temporary name and renamed in one step, so a folder that exists is complete; the newest `KEPT` are
kept. It holds Keras' weights and optimizer state, the epoch's number and, for a model with early
stopping, that callback's progress and best weights. A rider (a member trained only so that the
checkpoint loads) writes its history into a scratch folder inside the checkpoint. The checkpoint is
closed (removed) only once every member's files are written.
"""

import dataclasses
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from explorer.models.trials import Trial, group_id
from explorer.store.files import read_json, write_json_atomic
from explorer.store.folders import CHECKPOINT_PREFIX, FUSED_FOLDER, GROUP_RECORD, RIDERS_FOLDER

WEIGHTS_FILE = "latest.weights.h5"  # the name Keras' BackupAndRestore gives them
EPOCH_FILE = "training_metadata.json"  # the epoch's number, as Keras' BackupAndRestore writes it
EARLY_STOPPING_FILE = "early_stopping.json"  # early stopping's progress after the epoch
BEST_WEIGHTS_FILE = "best_weights.npz"  # early stopping's best weights, in get_weights() order


@dataclasses.dataclass(frozen=True)
class GroupCheckpoint:
    """Where one group checkpoints, and what its saved epochs hold."""

    path: Path
    identity: str | None = None  # the fused group's id (its folder's name); None for a lone model's

    KEPT = 2  # saved epochs kept: the newest, and the one before in case the newest cannot be read

    @classmethod
    def for_group(cls, run_dir: Path, group: Sequence[Trial], keys: Sequence[str]) -> "GroupCheckpoint":
        """A lone model's checkpoint in its own folder; a fused group's in `RUN_DIR/.fused/<id>`."""
        if len(group) == 1:
            return cls(run_dir / group[0].folder / "checkpoint")
        identity = group_id(keys)
        return cls(run_dir / FUSED_FOLDER / identity, identity)

    @classmethod
    def fused_in(cls, run_dir: Path) -> list["GroupCheckpoint"]:
        """The fused groups' checkpoints a run folder holds, in name order."""
        return [cls(path, path.name) for path in sorted((run_dir / FUSED_FOLDER).glob("*"))]

    def saved_epochs(self) -> list[Path]:
        """The complete epoch folders, newest first."""
        found = [path for path in self.path.glob(f"{CHECKPOINT_PREFIX}*") if self.epoch_of(path) is not None]
        return sorted(found, key=self.epoch_of, reverse=True)

    @staticmethod
    def epoch_of(saved: Path) -> int | None:
        """How many epochs a saved epoch folder holds (None: not an epoch folder)."""
        number = saved.name.removeprefix(CHECKPOINT_PREFIX)
        return int(number) if saved.name.startswith(CHECKPOINT_PREFIX) and number.isdigit() else None

    def epochs(self) -> int:
        """How many epochs the newest saved epoch holds: 0 when there is none."""
        newest = self.saved_epochs()
        return self.epoch_of(newest[0]) if newest else 0

    def write_epoch(self, epochs: int, write: Callable[[Path], None]) -> None:
        """Save the state after `epochs` epochs: `write(folder)` puts the weights (`WEIGHTS_FILE`) and
        anything else into a temporary folder, which is then renamed into place; older epochs beyond
        `KEPT` go."""
        partial = self.path / f".{CHECKPOINT_PREFIX}{epochs}.partial"
        shutil.rmtree(partial, ignore_errors=True)  # left by a kill during an earlier attempt
        partial.mkdir(parents=True)
        write(partial)
        (partial / EPOCH_FILE).write_text(json.dumps({"epoch": epochs}))
        final = self.path / f"{CHECKPOINT_PREFIX}{epochs}"
        shutil.rmtree(final, ignore_errors=True)  # the same epoch saved by an interrupted run
        os.replace(partial, final)
        for old in self.saved_epochs()[self.KEPT :]:
            shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def write_stopping(saved: Path, state: Mapping[str, object], best_weights: Sequence[np.ndarray] | None) -> None:
        """Early stopping's progress and best weights, into an epoch folder being written."""
        (saved / EARLY_STOPPING_FILE).write_text(json.dumps(dict(state)))
        if best_weights is not None:
            np.savez(saved / BEST_WEIGHTS_FILE, *best_weights)

    @staticmethod
    def read_stopping(saved: Path) -> tuple[dict, list[np.ndarray] | None]:
        """Early stopping's progress and best weights from a saved epoch folder.

        Raises:
            ValueError: they are missing or damaged.
        """
        state = read_json(saved / EARLY_STOPPING_FILE)
        if not isinstance(state, dict):
            raise ValueError(f"{saved / EARLY_STOPPING_FILE} is missing or damaged")
        if state.get("best") is None:
            return state, None
        try:
            with np.load(saved / BEST_WEIGHTS_FILE, allow_pickle=False) as arrays:
                return state, [arrays[f"arr_{index}"] for index in range(len(arrays.files))]
        except (OSError, KeyError, EOFError, ValueError, zipfile.BadZipFile) as error:
            raise ValueError(f"{saved / BEST_WEIGHTS_FILE} cannot be read ({error})") from error

    def record_members(self, members: Sequence[tuple[str, str]]) -> None:
        """`group.json`: the fused group's members as (folder, fingerprint), in order."""
        self.path.mkdir(parents=True, exist_ok=True)
        record = {"members": [{"folder": folder, "key": key} for folder, key in members]}
        write_json_atomic(self.path / GROUP_RECORD, record)

    def recorded_members(self) -> list[tuple[str, str]] | None:
        """The members `group.json` names, as (folder, fingerprint), in order; None when it is
        missing, damaged, or names fewer than two members or one without a folder and fingerprint."""
        record = read_json(self.path / GROUP_RECORD)
        members = record.get("members") if isinstance(record, dict) else None
        if not isinstance(members, list) or len(members) < 2:
            return None
        pairs = [(m.get("folder"), m.get("key")) for m in members if isinstance(m, dict)]
        sound = len(pairs) == len(members) and all(isinstance(v, str) for pair in pairs for v in pair)
        return pairs if sound else None

    def rider_path(self, folder: str) -> Path:
        """The scratch folder of a rider (trained unrecorded), removed with the checkpoint."""
        return self.path / RIDERS_FOLDER / folder

    def snapshot_into(self, folder: Path) -> None:
        """Copy the checkpoint into `folder` (a retried Ray trial resumes from it)."""
        if self.path.exists():
            shutil.copytree(self.path, folder / "checkpoint")

    def restore_from(self, folder: Path) -> None:
        shutil.copytree(folder / "checkpoint", self.path, dirs_exist_ok=True)

    def close(self) -> None:
        """Remove the checkpoint: every finished epoch is in its members' files now."""
        shutil.rmtree(self.path, ignore_errors=True)
