"""The one resume plan (`explorer.store.resume`), outcome by outcome, on fabricated run folders:
nothing trains here, so every rule is tested alone."""

import json
import zipfile

import numpy as np
import pytest

from explorer.models.trials import group_id
from explorer.store.folders import FUSED_FOLDER, GROUP_RECORD
from explorer.store.resume import plan_resume
from explorer.store.schema import HISTORY_METRICS, result_record
from explorer.store.trial_folder import TrialFolder

from conftest import dense_trial

TEST_SAMPLES = 20


@pytest.fixture(scope="module")
def trials():
    """Two trials that fuse (same seed, epochs, batch size, optimizer), and their fingerprints."""
    pair = [dense_trial("first", {"hidden_units": [8]}), dense_trial("second", {"hidden_units": [16]})]
    return pair, {trial: f"key-{trial.name}" for trial in pair}


def write_history(folder, epochs, loss=0.5):
    rows = ["epoch," + ",".join(HISTORY_METRICS)]
    rows += [
        f"{epoch}," + ",".join(str(loss if "loss" in metric else 0.5) for metric in HISTORY_METRICS)
        for epoch in range(epochs)
    ]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")


def finished(run_dir, trial, key, *, epochs=2, status="ok"):
    """A trial's folder as a finished sweep leaves it, every file sound."""
    folder = run_dir / trial.folder
    folder.mkdir(parents=True)
    write_history(folder, epochs)
    history = {metric: [0.5] * epochs for metric in HISTORY_METRICS}
    test = {"accuracy": 0.9, "loss": 0.3} if status == "ok" else None
    record = result_record(
        trial, status, {"trial_key": key}, history=None if status == "failed" else history, test=test
    )
    (folder / "result.json").write_text(json.dumps(record))
    with zipfile.ZipFile(folder / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"weights")
    np.save(folder / "test_predictions.npy", np.zeros(TEST_SAMPLES, np.uint8))
    return folder


def _set(folder, field, value):
    record = json.loads((folder / "result.json").read_text())
    (folder / "result.json").write_text(json.dumps({**record, field: value}))


def started(run_dir, trial, key, *, epochs=0, checkpoint=None):
    """A trial's folder as an interrupted sweep leaves it: trial.json, `epochs` history rows, and
    its own checkpoint holding `checkpoint` epochs."""
    folder = run_dir / trial.folder
    folder.mkdir(parents=True)
    (folder / "trial.json").write_text(json.dumps({"trial_key": key}))
    if epochs:
        write_history(folder, epochs)
    if checkpoint:
        (folder / "checkpoint" / f"epoch-{checkpoint}").mkdir(parents=True)
    return folder


def plan(run_dir, trials, keys):
    return plan_resume(run_dir, trials, keys, fuse=True, test_samples=TEST_SAMPLES)


def action(run_dir, trials, keys, trial):
    found = plan(run_dir, trials, keys).actions[trial]
    return found.kind, found.why, found.epochs


def test_nothing_there_trains_from_scratch_in_one_fused_group(tmp_path, trials):
    pair, keys = trials
    result = plan(tmp_path, pair, keys)
    assert [result.actions[trial].kind for trial in pair] == ["train", "train"]
    assert result.groups == [pair] and not result.riders and not result.stale


def test_a_finished_sound_trial_is_kept(tmp_path, trials):
    pair, keys = trials
    finished(tmp_path, pair[0], keys[pair[0]])
    result = plan(tmp_path, pair, keys)
    assert result.actions[pair[0]].kind == "skip" and result.groups == [[pair[1]]]


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda folder: (folder / "result.json").write_text("{not json"), "its result.json cannot be read as JSON"),
        (lambda folder: (folder / "result.json").write_text("[1, 2]"), "its result.json is not a JSON object"),
        (lambda folder: write_history(folder, 1), "its history.csv holds 1 epoch(s), its result.json 2"),
        (lambda folder: (folder / "history.csv").write_text("epoch,loss\n0,"), "its history.csv is missing or damaged"),
        (
            lambda folder: (folder / "history.csv").write_text(
                "epoch,accuracy,loss,seconds,val_accuracy,val_loss\n0,high,low,1,2,3\n"
            ),
            "its history.csv is missing or damaged",
        ),
        (
            lambda folder: (folder / "history.csv").write_text("epoch,accuracy\n"),
            "its history.csv is missing or damaged",
        ),
        (
            lambda folder: (folder / "history.csv").write_bytes(b"\xff\xfe\x00garbage"),
            "its history.csv is missing or damaged",
        ),
        (
            lambda folder: (folder / "result.json").write_bytes((folder / "result.json").read_bytes()[:40]),
            "its result.json cannot be read as JSON",
        ),
        (lambda folder: _set(folder, "status", "won"), "its result.json has an unknown status 'won'"),
        (lambda folder: _set(folder, "seed", 1.5), "its result.json has seed = 1.5, not a whole number"),
        (lambda folder: _set(folder, "epochs_run", 0), "its result.json has epochs_run = 0, not a count of epochs"),
        (lambda folder: _set(folder, "test_accuracy", None), "its result.json has test_accuracy = None, not a number"),
        (
            lambda folder: (folder / "model.keras").write_bytes(b"PK\x03\x04 cut"),
            "its model.keras is not a complete Keras archive",
        ),
        (lambda folder: (folder / "model.keras").unlink(), "its model.keras is missing"),
        (lambda folder: (folder / "test_predictions.npy").unlink(), "its test_predictions.npy is missing"),
        (
            lambda folder: np.save(folder / "test_predictions.npy", np.zeros(3, np.uint8)),
            "does not hold one digit for each of the 20",
        ),
        (
            lambda folder: np.save(folder / "test_predictions.npy", np.full(TEST_SAMPLES, 11, np.uint8)),
            "does not hold one digit",
        ),
    ],
)
def test_a_finished_trial_with_a_damaged_file_is_retrained_naming_the_file(tmp_path, trials, damage, why):
    pair, keys = trials
    damage(finished(tmp_path, pair[0], keys[pair[0]]))
    kind, reason, _ = action(tmp_path, pair, keys, pair[0])
    assert kind == "replace" and why in reason


def test_a_finished_trial_whose_network_or_data_changed_is_retrained(tmp_path, trials):
    pair, keys = trials
    finished(tmp_path, pair[0], "an-older-key")
    assert action(tmp_path, pair, keys, pair[0]) == ("replace", "its network, settings or data changed", 0)


def test_a_failed_trial_is_retried(tmp_path, trials):
    pair, keys = trials
    finished(tmp_path, pair[0], keys[pair[0]], status="failed")
    assert action(tmp_path, pair, keys, pair[0]) == ("replace", "it failed before", 0)


def test_a_diverged_trial_is_kept_as_finished(tmp_path, trials):
    pair, keys = trials
    finished(tmp_path, pair[0], keys[pair[0]], status="diverged")
    assert action(tmp_path, pair, keys, pair[0])[0] == "skip"


def test_an_unfinished_trial_continues_from_its_checkpoint_when_its_history_agrees(tmp_path, trials):
    pair, keys = trials
    started(tmp_path, pair[0], keys[pair[0]], epochs=2, checkpoint=2)
    assert action(tmp_path, pair, keys, pair[0]) == ("continue", "", 2)
    # The epoch after the checkpoint, finished but not yet checkpointed, is allowed too.
    (tmp_path / pair[0].folder / "checkpoint" / "epoch-2").rename(tmp_path / pair[0].folder / "checkpoint" / "epoch-1")
    assert action(tmp_path, pair, keys, pair[0]) == ("continue", "", 1)


def test_an_unfinished_trial_without_a_checkpoint_starts_again(tmp_path, trials):
    pair, keys = trials
    started(tmp_path, pair[0], keys[pair[0]], epochs=1)
    assert action(tmp_path, pair, keys, pair[0]) == ("continue", "", 0)


def test_an_unfinished_trial_whose_history_lost_epochs_of_its_checkpoint_is_retrained(tmp_path, trials):
    pair, keys = trials
    started(tmp_path, pair[0], keys[pair[0]], epochs=1, checkpoint=3)
    kind, why, _ = action(tmp_path, pair, keys, pair[0])
    assert kind == "replace" and why == "its history.csv does not hold the 3 epochs its checkpoint holds"


@pytest.mark.parametrize(
    ("trial_json", "why"),
    [(None, "its trial.json is missing or damaged"), ("older", "its network, settings or data changed")],
)
def test_an_unfinished_trial_with_an_unknown_or_changed_start_is_retrained(tmp_path, trials, trial_json, why):
    pair, keys = trials
    folder = started(tmp_path, pair[0], "older")
    if trial_json is None:
        (folder / "trial.json").unlink()
        (folder / "history.csv").write_text("epoch\n")  # something is there, but not what trial.json says
    assert action(tmp_path, pair, keys, pair[0]) == ("replace", why, 0)


def fused_checkpoint(run_dir, pair, keys, epochs):
    folder = run_dir / FUSED_FOLDER / group_id([keys[trial] for trial in pair])
    (folder / f"epoch-{epochs}").mkdir(parents=True)
    members = [{"folder": trial.folder, "key": keys[trial]} for trial in pair]
    (folder / GROUP_RECORD).write_text(json.dumps({"members": members}))
    return folder


def test_an_interrupted_fused_group_is_formed_again_with_its_finished_member_riding_along(tmp_path, trials):
    pair, keys = trials
    fused_checkpoint(tmp_path, pair, keys, epochs=2)
    finished(tmp_path, pair[0], keys[pair[0]])
    started(tmp_path, pair[1], keys[pair[1]], epochs=2)
    result = plan(tmp_path, pair, keys)
    (group,) = result.groups
    assert result.actions[pair[1]].kind == "continue" and result.actions[pair[1]].epochs == 2
    assert group[1] is pair[1] and group[0] is not pair[0] and group[0] in result.riders
    assert group[0].folder == pair[0].folder and result.keys[group[0]] == keys[pair[0]]


def test_a_fused_checkpoint_whose_members_all_finished_is_stale(tmp_path, trials):
    pair, keys = trials
    checkpoint = fused_checkpoint(tmp_path, pair, keys, epochs=2)
    for trial in pair:
        finished(tmp_path, trial, keys[trial])
    result = plan(tmp_path, pair, keys)
    assert result.groups == [] and result.stale == [checkpoint]


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_a_fused_checkpoint_whose_group_json_is_lost_is_set_aside_and_said(tmp_path, trials, damage):
    # Planned again, the same group has the same identity: left in place, its checkpoint would be
    # picked up by training, continuing a member whose history was cut to fewer epochs (found by a hunt).
    pair, keys = trials
    checkpoint = fused_checkpoint(tmp_path, pair, keys, epochs=3)
    if damage == "garbage":
        (checkpoint / GROUP_RECORD).write_text(json.dumps({"members": "damaged"}))
    else:
        (checkpoint / GROUP_RECORD).unlink()
    started(tmp_path, pair[0], keys[pair[0]], epochs=3)
    started(tmp_path, pair[1], keys[pair[1]], epochs=1)
    result = plan(tmp_path, pair, keys)
    assert [result.actions[trial].epochs for trial in pair] == [0, 0]  # from the first epoch
    assert result.groups == [pair] and result.stale == [checkpoint]
    (note,) = result.notes
    assert f"{checkpoint.name}: its group.json is missing or damaged, so its 3 epochs are not used" in note


def test_a_history_that_diverged_before_an_interruption_stays_diverged(tmp_path):
    folder = TrialFolder(tmp_path, dense_trial("a", {"hidden_units": [8]}), key="")
    write_history(tmp_path, 2, loss=float("inf"))
    assert folder.diverged_before()
    write_history(tmp_path, 2)
    assert not folder.diverged_before()
    assert not TrialFolder(tmp_path / "nothing", folder.trial, key="").diverged_before()
