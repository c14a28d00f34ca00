"""A group's checkpoint (`explorer.store.group_checkpoint`), file by file, without training: an epoch
folder that exists is complete, the newest two are kept, and `group.json` names its members or
nothing."""

import json

import numpy as np
import pytest

from explorer.store.group_checkpoint import EPOCH_FILE, WEIGHTS_FILE, GroupCheckpoint


def weights(content: bytes):
    return lambda folder: (folder / WEIGHTS_FILE).write_bytes(content)


def test_an_epoch_cut_short_after_its_weights_is_not_a_saved_epoch(tmp_path):
    # A kill between an epoch's weights and its number would otherwise pair them wrongly.
    checkpoint = GroupCheckpoint(tmp_path / "checkpoint")
    checkpoint.write_epoch(1, weights(b"one"))

    def killed_after_the_weights(folder):
        weights(b"two")(folder)
        raise SystemExit("killed")

    with pytest.raises(SystemExit, match="killed"):
        checkpoint.write_epoch(2, killed_after_the_weights)
    (saved,) = checkpoint.saved_epochs()
    assert saved.name == "epoch-1" and checkpoint.epochs() == 1
    assert (
        json.loads((saved / EPOCH_FILE).read_text()) == {"epoch": 1} and (saved / WEIGHTS_FILE).read_bytes() == b"one"
    )
    checkpoint.write_epoch(2, weights(b"two"))  # the retry replaces what the cut attempt left
    checkpoint.write_epoch(3, weights(b"three"))
    assert [path.name for path in checkpoint.saved_epochs()] == ["epoch-3", "epoch-2"]  # the newest KEPT
    assert not list(checkpoint.path.glob(".*partial"))


def test_early_stopping_state_round_trips_and_a_damaged_one_is_refused(tmp_path):
    best = [np.arange(6.0).reshape(2, 3), np.ones(3)]
    GroupCheckpoint.write_stopping(tmp_path, {"best": 0.25, "wait": 1}, best)
    state, read = GroupCheckpoint.read_stopping(tmp_path)
    assert state == {"best": 0.25, "wait": 1} and all(np.array_equal(a, b) for a, b in zip(read, best, strict=True))
    (tmp_path / "best_weights.npz").write_bytes(b"PK damaged")
    with pytest.raises(ValueError, match=r"best_weights.npz cannot be read"):
        GroupCheckpoint.read_stopping(tmp_path)
    (tmp_path / "early_stopping.json").write_text("{")
    with pytest.raises(ValueError, match=r"early_stopping.json is missing or damaged"):
        GroupCheckpoint.read_stopping(tmp_path)


@pytest.mark.parametrize(
    "record",
    ["{", '{"members": "damaged"}', '{"members": [{"folder": "a", "key": "k"}]}',
     '{"members": [{"folder": "a", "key": "k"}, {"folder": "b"}]}', '{"members": [{"folder": "a", "key": "k"}, 7]}'],
)  # fmt: skip
def test_group_json_names_two_or_more_members_or_nothing(tmp_path, record):
    checkpoint = GroupCheckpoint(tmp_path / "group", "group")
    checkpoint.record_members([("a", "k1"), ("b", "k2")])
    assert checkpoint.recorded_members() == [("a", "k1"), ("b", "k2")]
    (checkpoint.path / "group.json").write_text(record)
    assert checkpoint.recorded_members() is None
