"""--search: the space's validation, a batched ask-and-tell round, a stopped candidate's record, a
resumed study, and survivors that train on from their own state as they would alone."""

import json
import shutil

import numpy as np
import optuna
import pytest

import common
from explorer.config.options import make_options
from explorer.config.search_space import BATCH_FIELDS, Choice, Interval, parse_duration, split_search
from explorer.engine.rungs import BatchTraining, rung_ends
from explorer.engine.search import Budget, open_study, suggest
from explorer.errors import ConfigError
from explorer.store.folders import STUDY_FILE

from conftest import SYNTHETIC_TEST, SYNTHETIC_TRAIN, dense_trial, make_synthetic_digits

SPACE = {
    "width": {"low": 8, "high": 64, "log": True},
    "depth": [1, 2],
    "activation": ["relu", "tanh"],
    "dropout": {"low": 0.0, "high": 0.3},
    "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
    "batch_size": [32, 64],
    "epochs": 4,
}


# --- The space ---------------------------------------------------------------------------------------


def test_a_space_reads_choices_intervals_and_fixed_fields_batch_fields_first():
    plain, space = split_search({"search": {"s": SPACE}, "reference": {"hidden_units": [16]}})
    assert plain == {"reference": {"hidden_units": [16]}}
    assert space.fixed == {"epochs": 4}
    assert list(space.searched)[:2] == ["learning_rate", "batch_size"]  # the batch fields first
    assert space.searched["width"] == Interval(8, 64, log=True, integer=True)
    assert space.searched["activation"] == Choice(("relu", "tanh"))
    assert space.fields({"width": 32, "depth": 2, "dropout": 0.1}) == {
        "epochs": 4,
        "dropout": 0.1,
        "hidden_units": [32, 32],
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"widht": [8]}, r"unknown field 'widht' \(did you mean 'width'\?\)"),
        ({"depth": []}, r"depth = \[\] lists no choices"),
        ({"width": {"low": 64, "high": 8}}, r"width = .*low and high must be whole numbers, low below high"),
        ({"width": {"low": 8.5, "high": 64}}, r"whole numbers"),
        ({"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}, r"a log scale needs low above 0"),
        ({"learning_rate": {"low": 1e-4, "high": 0.1, "lg": True}}, r"unknown key 'lg'"),
        ({"activation": {"low": 1, "high": 2}}, r"only .* take an interval; give activation as a list"),
        ({"epochs": [5, 10]}, r"every candidate trains for the same epochs"),
        ({"early_stopping": [2]}, r"early_stopping is not searched"),
        ({"hidden_units": [[8]], "width": [8]}, r"give hidden_units, or width and depth, not both"),
        ({"hidden_units": [8, 16]}, r"each a list of widths"),
        ({"activation": ["relu", "relux"]}, r"search 's': activation 'relux' is unknown \(did you mean 'relu'\?\)"),
        ({"dropout": {"low": 0.0, "high": 1.5}}, r"search 's': dropout = 1.5 is not allowed"),
        ({"width": 100_000}, r"width = 100000 is not allowed; expected a whole number up to 16,384"),
        ({"activation": ["relu", "relu"]}, r"lists a choice twice"),
        ({"epochs": 3}, r"nothing to search"),
        ({"width": {"low": 8, "high": 64, "step": 8, "log": True}}, r"step = 8 is not allowed"),
    ],
)
def test_a_bad_space_is_refused_in_one_line_naming_the_value(table, message):
    with pytest.raises(ConfigError, match=message):
        split_search({"search": {"s": table}})


def test_one_search_per_run():
    with pytest.raises(ConfigError, match=r"must hold one \[search.NAME\] table, got 2"):
        split_search({"search": {"a": SPACE, "b": SPACE}})


@pytest.mark.parametrize(("text", "seconds"), [("20m", 1200), ("1h30m", 5400), ("90s", 90), ("45", 45), (600, 600)])
def test_budgets_read_as_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["20x", "", "m", "-5", "1.2.3m", 0])
def test_a_bad_budget_is_refused(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"trials": 5}, r"trials: only with search"),
        ({"budget": "5m", "verify": 2}, r"budget, verify: only with search"),
        ({"search": True, "executor": "ray"}, r"search: trains here; not with executor ray"),
        ({"search": True, "verify": 0}, r"verify: 0 is out of range; expected 1-20"),
    ],
)
def test_search_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        make_options(settings)


def test_the_budget_defaults_to_twenty_minutes_unless_trials_are_given():
    assert make_options({"search": True}).search.budget == 1200
    assert make_options({"search": True, "trials": 8}).search.budget is None
    assert Budget(60.0, None, spent=61.0).over(told=0) and Budget(None, 8).over(told=8)
    assert not Budget(60.0, 8, spent=10.0).over(told=7)


# --- Rungs -----------------------------------------------------------------------------------------


def test_rungs_follow_the_reduction_factor_then_end_at_the_last_epoch():
    assert rung_ends(20, 1, 3) == [1, 3, 9, 20]
    assert rung_ends(9, 1, 3) == [1, 3, 9]
    assert rung_ends(1, 1, 3) == [1]


@pytest.fixture(scope="module")
def data():
    train, test = make_synthetic_digits(SYNTHETIC_TRAIN, 1), make_synthetic_digits(SYNTHETIC_TEST, 2)
    return common.prepare_data(train, test, validation_split=0.1, seed=0)


def test_survivors_train_on_from_their_own_state_as_they_would_alone(data):
    """A batch of three trained to epoch 1, narrowed to two and then to one, ends with the weights
    and optimizer state the last one has when it trains its three epochs alone."""
    fields = [{"hidden_units": [16], "epochs": 3}, {"hidden_units": [8], "dropout": 0.2, "epochs": 3},
              {"hidden_units": [12, 12], "epochs": 3}]  # fmt: skip
    batch = BatchTraining([dense_trial(f"t{i}", f, seed=5) for i, f in enumerate(fields)], data)
    batch.train_to(1)
    batch.keep(["t1", "t2"])
    batch.train_to(2)
    batch.keep(["t1"])
    batch.train_to(3)
    alone = BatchTraining([dense_trial("t1", fields[1], seed=5)], data)
    alone.train_to(3)
    for metric, values in alone.history["t1"].items():
        assert batch.history["t1"][metric] == pytest.approx(values, rel=1e-4), metric
    for narrowed, own in zip(batch.model.get_weights(), alone.model.get_weights(), strict=True):
        np.testing.assert_allclose(narrowed, own, rtol=1e-4, atol=1e-6)
    state = [np.asarray(v) for v in batch.model.optimizer.variables]
    for narrowed, own in zip(state, (np.asarray(v) for v in alone.model.optimizer.variables), strict=True):
        np.testing.assert_allclose(narrowed, own, rtol=1e-4, atol=1e-6)
    assert len(batch.history["t0"]["val_accuracy"]) == 1 and len(batch.history["t2"]["loss"]) == 2


def test_a_batch_that_could_not_fuse_is_refused(data):
    with pytest.raises(ValueError, match="one seed, batch size, epochs and optimizer"):
        BatchTraining([dense_trial("a", {"learning_rate": 0.01}), dense_trial("b", {"learning_rate": 0.001})], data)


# --- A search, end to end ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """Eight candidates (two batches of four) and the verification of the best two, with a plain
    reference beside them: searched once for the tests that read it."""
    folder = tmp_path_factory.mktemp("search")
    train, test = make_synthetic_digits(SYNTHETIC_TRAIN, 1), make_synthetic_digits(SYNTHETIC_TEST, 2)
    np.savez(folder / "mnist.npz", x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
    networks = {"reference": {"hidden_units": [16], "epochs": 4}, "search": {"s": SPACE}}
    settings = {"data": str(folder / "mnist.npz"), "repeats": 2, "search": True, "trials": 8, "verify": 2}
    outcome = common.sweep(networks, out=folder / "run", log=lambda line: None, **settings)
    return outcome, folder, networks, settings


def params_of(space, picked):
    """The values `suggest` picked, as Optuna stores them (choices by their labels)."""
    return {field: picked[field] for field in space.searched}


def study_of(run_dir):
    return optuna.load_study(study_name="s", storage=f"sqlite:///{run_dir / STUDY_FILE}")


def test_a_batch_shares_its_fusion_fields_and_varies_the_rest(searched):
    outcome, *_ = searched
    assert outcome.exit_code == 0
    trials = study_of(outcome.run_dir).trials
    assert len(trials) == 8
    for batch in (trials[:4], trials[4:]):
        shared = {field: {t.params[field] for t in batch} for field in BATCH_FIELDS if field in batch[0].params}
        assert all(len(values) == 1 for values in shared.values()), shared
        assert len({(t.params["width"], t.params["depth"], t.params["activation"]) for t in batch}) > 1
    assert {t.params["learning_rate"] for t in trials[:4]} != {t.params["learning_rate"] for t in trials[4:]}


def test_every_candidate_is_told_with_its_epochs_and_why_it_stopped(searched):
    outcome, *_ = searched
    trials = study_of(outcome.run_dir).trials
    states = {t.state for t in trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states
    for trial in trials:
        epochs = trial.user_attrs["epochs_run"]
        assert sorted(trial.intermediate_values) == list(range(1, epochs + 1))
        assert json.loads(trial.user_attrs["config"])["epochs"] == 4
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert epochs in (1, 3) and trial.user_attrs["stopped"] == f"pruned after epoch {epochs}"
        else:
            assert epochs == 4 and trial.value == trial.intermediate_values[4]


def test_the_best_two_by_validation_are_verified_on_fresh_seeds_beside_the_reference(searched):
    outcome, *_ = searched
    study = study_of(outcome.run_dir)
    complete = sorted((t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: -t.value)
    expected = {"reference", *(f"trial_{t.number}" for t in complete[:2])}
    assert set(outcome.leaderboard.index) == expected
    results = [json.loads(path.read_text()) for path in outcome.run_dir.glob("*/result.json")]
    assert len(results) == 2 * len(expected)
    assert 42 not in {result["seed"] for result in results}  # the candidates trained with seed 42
    assert json.loads((outcome.run_dir / "run.json").read_text())["search"]["trials"] == 8


def test_a_resumed_search_keeps_its_told_trials_and_asks_again_for_the_interrupted(searched, tmp_path):
    outcome, _, networks, settings = searched
    run_dir = tmp_path / "run"
    shutil.copytree(outcome.run_dir, run_dir)
    _, space = split_search(networks)
    study = open_study(run_dir, space, seed=0)
    told_before = {t.number: (t.state, t.value, t.params) for t in study.trials}
    interrupted = study.ask()  # as a killed run leaves it: asked, never told
    params = suggest(interrupted, space)
    study.set_user_attr("seconds", 1000.0)
    resumed = common.sweep(networks, resume=run_dir, log=lambda line: None, **{**settings, "trials": 12})
    assert resumed.exit_code == 0
    trials = study_of(run_dir).trials
    assert {t.number: (t.state, t.value, t.params) for t in trials[:8]} == told_before
    assert trials[8].state == optuna.trial.TrialState.FAIL
    assert trials[9].params == interrupted.params == params_of(space, params)
    assert sum(t.state != optuna.trial.TrialState.FAIL for t in trials) == 12
    assert study_of(run_dir).user_attrs["seconds"] > 1000.0  # the time spent before counts


def test_a_resume_with_another_space_is_refused(searched, tmp_path):
    outcome, _, networks, settings = searched
    run_dir = tmp_path / "run"
    shutil.copytree(outcome.run_dir, run_dir)
    other = {**networks, "search": {"s": {**SPACE, "depth": [1, 2, 3]}}}
    with pytest.raises(ConfigError, match=r"was started with another space"):
        common.sweep(other, resume=run_dir, log=lambda line: None, **settings)


@pytest.mark.parametrize("study", ["missing", "empty file", "empty database"])
def test_a_lost_study_of_a_search_with_candidates_is_refused(tmp_path, study):
    run_dir = tmp_path / "run"
    (run_dir / "trial_3").mkdir(parents=True)
    _, space = split_search({"search": {"s": SPACE}})
    if study == "empty file":
        (run_dir / STUDY_FILE).write_bytes(b"")
    elif study == "empty database":
        open_study(tmp_path, space, seed=0)  # a study file elsewhere, then emptied of its study
        optuna.delete_study(study_name="s", storage=f"sqlite:///{tmp_path / STUDY_FILE}")
        shutil.copy(tmp_path / STUDY_FILE, run_dir / STUDY_FILE)
    before = sorted(path.name for path in run_dir.iterdir())
    with pytest.raises(ConfigError, match=r"missing or empty, but the run folder holds 1 of its search's candidates"):
        open_study(run_dir, space, seed=0)
    assert sorted(path.name for path in run_dir.iterdir()) == before


def test_the_study_goes_into_a_run_folder_named_with_url_characters(tmp_path):
    run_dir = tmp_path / "my run #1 ?%"
    run_dir.mkdir()
    _, space = split_search({"search": {"s": SPACE}})
    study = open_study(run_dir, space, seed=0)
    study.set_user_attr("probe", 1)
    assert (run_dir / STUDY_FILE).is_file() and sorted(p.name for p in tmp_path.iterdir()) == [run_dir.name]


def test_a_damaged_study_is_refused_in_one_line_and_left_as_it_is(searched, tmp_path):
    outcome, _, networks, settings = searched
    run_dir = tmp_path / "run"
    shutil.copytree(outcome.run_dir, run_dir)
    damaged = (run_dir / STUDY_FILE).read_bytes()[:3000]
    (run_dir / STUDY_FILE).write_bytes(damaged)
    with pytest.raises(ConfigError, match=r"study.db: cannot be read as this search's study .*move it aside"):
        common.sweep(networks, resume=run_dir, log=lambda line: None, **settings)
    assert (run_dir / STUDY_FILE).read_bytes() == damaged


def test_a_run_that_was_not_a_search_is_not_continued_as_one(finished_run):
    run_dir, _ = finished_run
    with pytest.raises(ConfigError, match=r"not started as a search, so --search cannot continue it"):
        common.sweep({"search": {"s": SPACE}}, resume=run_dir, search=True, trials=4, log=lambda line: None)
    assert not (run_dir / STUDY_FILE).exists()
