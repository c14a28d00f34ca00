"""Repeats: seeds, aggregation (mean, spread, t-interval), tie marking and the aggregate files."""

import csv
import json

import numpy as np
import pytest
import scipy.stats

import explorer.analysis.stats
import explorer.config.models
import explorer.models.trials
import explorer.store.schema
import explorer.views.tables
import model_builder_loop
import model_builder_seq

from conftest import dense_trial, dense_variant


def test_aggregate_matches_a_hand_computed_t_interval():
    stats = explorer.analysis.stats.aggregate([0.97, 0.98, 0.99])
    # mean 0.98; sample std 0.01; standard error 0.01 / sqrt(3) = 0.0057735;
    # t(0.975, 2 degrees of freedom) = 4.3026527; half-width 0.0248414.
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(0.98)
    assert stats["std"] == pytest.approx(0.01)
    assert stats["ci_low"] == pytest.approx(0.98 - 0.0248414, abs=1e-7)
    assert stats["ci_high"] == pytest.approx(0.98 + 0.0248414, abs=1e-7)


def test_aggregate_of_one_value_has_no_spread_and_identical_values_a_zero_interval():
    assert explorer.analysis.stats.aggregate([0.5]) == {
        "n": 1,
        "mean": 0.5,
        "std": None,
        "ci_low": None,
        "ci_high": None,
    }
    assert explorer.analysis.stats.aggregate([0.5, 0.5]) == {
        "n": 2,
        "mean": 0.5,
        "std": 0.0,
        "ci_low": 0.5,
        "ci_high": 0.5,
    }


def _result(name, repeat, accuracy, parameters=101_770):
    return {
        "name": name, "repeat": repeat, "trial": name if repeat == 0 else f"{name}@seed{repeat}", "seed": repeat,
        "status": "ok", "test_accuracy": accuracy, "test_loss": 1 - accuracy, "val_accuracy": accuracy,
        "val_loss": 0.1, "parameters": parameters, "train_seconds": 10.0, "seconds_per_epoch": 0.5, "epochs_run": 20,
        "config": dense_trial(name, {}).facts.description, "versions": {"backend": "jax"},
    }  # fmt: skip


def _correct(right: int, total: int = 1000) -> np.ndarray:
    """`right` of `total` test digits answered correctly, the first ones wrong."""
    answers = np.ones(total, dtype=bool)
    answers[: total - right] = False
    return answers


def test_paired_verdicts_against_the_best_and_the_reference():
    accuracy = {"best": [0.980, 0.981, 0.979], "close": [0.979, 0.981, 0.978], "behind": [0.950, 0.951, 0.949]}
    results = [_result(name, r, a) for name, values in accuracy.items() for r, a in enumerate(values)]
    # The same test digits each seed: "behind" misses a superset of what "best" misses, "close" one more.
    correct = {
        name: {seed: _correct(round(a * 1000)) for seed, a in enumerate(values)} for name, values in accuracy.items()
    }
    rows = explorer.analysis.stats.summary_rows(results, correct, reference="close")
    assert [(row["name"], row["vs_best"], row["vs_reference"], row["repeats"]) for row in rows] == [
        ("best", "best", "not detected", 3),
        ("close", "not detected", "reference", 3),
        ("behind", "worse", "worse", 3),
    ]  # fmt: skip
    behind = rows[2]
    assert behind["vs_best_difference"] == pytest.approx(-0.030) and behind["vs_best_p"] < 1e-6
    assert behind["vs_best_ci_low"] == pytest.approx(-0.030) == behind["vs_best_ci_high"]  # the same gap each seed
    assert rows[0]["test_accuracy"] == pytest.approx(0.98) and rows[0]["seeds"] == [0, 1, 2]
    table = explorer.views.tables.format_leaderboard(rows)
    assert "0.9800 ± 0.0025" in table and "· +0.07" in table and "▼ -3.00" in table
    assert max(len(line) for line in table.splitlines()) <= 100


def test_the_best_is_chosen_by_validation_accuracy_not_by_test_accuracy():
    results = [{**_result("tests_best", 0, 0.99), "val_accuracy": 0.90}, _result("validates_best", 0, 0.98)]
    rows = explorer.analysis.stats.summary_rows(results)
    assert [(row["name"], row["vs_best"]) for row in rows] == [("tests_best", None), ("validates_best", "best")]


def test_repeats_get_distinct_recorded_seeds_and_folders():
    variants = [dense_variant("a"), dense_variant("b")]
    trials = explorer.models.trials.plan_trials(variants, seed=42, repeats=3)
    assert [(t.name, t.repeat) for t in trials] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
    seeds = [t.seed for t in trials[:3]]
    assert seeds[0] == 42 and len(set(seeds)) == 3 and [t.seed for t in trials[3:]] == seeds
    assert [t.folder for t in trials[:3]] == ["a", f"a@seed{seeds[1]}", f"a@seed{seeds[2]}"]
    again = explorer.models.trials.plan_trials(variants, seed=42, repeats=3)
    assert [(t.folder, t.seed) for t in again] == [(t.folder, t.seed) for t in trials]  # derived, so reproducible


def _assert_aggregate_files(run_dir, names, repeats):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert sorted(row["name"] for row in summary) == sorted(names)
    with (run_dir / "repeats.csv").open() as handle:
        trials = list(csv.DictReader(handle))
    assert len(trials) == len(names) * repeats
    for row in summary:
        mine = [float(t["test_accuracy"]) for t in trials if t["name"] == row["name"]]
        assert row["repeats"] == repeats and len({t["seed"] for t in trials if t["name"] == row["name"]}) == repeats
        assert row["test_accuracy"] == pytest.approx(np.mean(mine))
        # The 95% t-interval over the repeats, computed here from the repeats' own accuracies.
        half = scipy.stats.t.ppf(0.975, repeats - 1) * np.std(mine, ddof=1) / np.sqrt(repeats)
        assert row["test_accuracy_ci_high"] - row["test_accuracy"] == pytest.approx(half, abs=1e-9)
        assert row["test_accuracy"] - row["test_accuracy_ci_low"] == pytest.approx(half, abs=1e-9)
        assert (run_dir / "curves" / f"{row['name']}.png").is_file()
    assert {"comparison.png", "confusion_matrix.png", "misclassified.png"} <= {p.name for p in run_dir.iterdir()}


def test_a_single_run_is_the_first_repeat_and_more_repeats_resume_it(tmp_path, synthetic_npz, capsys):
    names = ["softmax_regression", "dense_32_relu"]
    argv = ["--quick", "--data", str(synthetic_npz), "--only", *names]
    assert model_builder_loop.main([*argv, "--repeats", "1", "--out", str(tmp_path / "run")]) == 0
    single = {name: (tmp_path / "run" / name / "result.json").read_bytes() for name in names}
    capsys.readouterr()
    # A single run is the first repeat, exactly (its seed, folder and fingerprint): asking for three
    # repeats keeps it and trains the other two.
    assert model_builder_loop.main([*argv, "--repeats", "3", "--resume", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert out.count("finished earlier with the same configuration; kept") == 2
    assert "2 models fused: repeat 2 of 3" in out and "2 models fused: repeat 3 of 3" in out  # a seed per repeat
    assert {name: (tmp_path / "run" / name / "result.json").read_bytes() for name in names} == single
    results = explorer.store.schema.read_results(tmp_path / "run")
    first = {r["name"]: r for r in results if r["repeat"] == 0}
    assert all(
        r["seed"] != first[r["name"]]["seed"] and r["test_loss"] != first[r["name"]]["test_loss"]
        for r in results
        if r["repeat"]
    )
    _assert_aggregate_files(tmp_path / "run", names, repeats=3)


def test_seq_script_quick_run_with_three_repeats(tmp_path, synthetic_npz, monkeypatch):
    two = list(model_builder_seq.VARIANTS)[:2]
    monkeypatch.setattr(model_builder_seq, "VARIANTS", two)
    argv = ["--quick", "--repeats", "3", "--data", str(synthetic_npz), "--out", str(tmp_path / "run")]
    assert model_builder_seq.main(argv) == 0
    _assert_aggregate_files(tmp_path / "run", [variant.name for variant in two], repeats=3)
