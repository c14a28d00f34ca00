"""The findings: built from fabricated results with known effects, then every sentence checked
against the summary rows' numbers."""

import numpy as np
import pytest

import explorer.analysis.findings as findings_data
import explorer.analysis.stats as stats
import explorer.views.findings as findings_text
from explorer.analysis.comparisons import PAIRED_T

REFERENCE_FIELDS = {
    "hidden_units": [128], "activation": "relu", "dropout": 0.0, "output_activation": "softmax",
    "optimizer": "adam", "learning_rate": 0.001, "batch_size": 128,
}  # fmt: skip

# name -> (fields that differ from the reference, test accuracy per seed, validation accuracy per seed)
SWEEP = {
    "ref": ({}, [0.970, 0.972, 0.968], [0.970, 0.972, 0.968]),
    "wide": ({"hidden_units": [512]}, [0.986, 0.988, 0.987], [0.975, 0.976, 0.974]),  # better, best on test
    "narrow": ({"hidden_units": [32]}, [0.950, 0.951, 0.949], [0.950, 0.951, 0.949]),  # worse
    "mid": ({"hidden_units": [256]}, [0.972, 0.971, 0.971], [0.972, 0.971, 0.971]),  # too close to tell
    "tanh": ({"activation": "tanh"}, [0.969, 0.973, 0.966], [0.969, 0.973, 0.966]),  # too close to tell
    "both": ({"hidden_units": [512, 512], "dropout": 0.2}, [0.985, 0.986, 0.984], [0.990, 0.991, 0.989]),
}
DIGITS = 1000


def _results(sweep, seeds=3):
    results, correct = [], {}
    for name, (fields, test, validation) in sweep.items():
        for seed in range(seeds):
            results.append({
                "name": name, "repeat": seed, "trial": f"{name}@{seed}", "seed": seed, "status": "ok",
                "test_accuracy": test[seed], "test_loss": 0.1, "val_accuracy": validation[seed], "val_loss": 0.1,
                "parameters": 1000, "config": {**REFERENCE_FIELDS, **fields}, "versions": {"backend": "jax"},
            })  # fmt: skip
            correct.setdefault(name, {})[seed] = np.arange(DIGITS) < round(test[seed] * DIGITS)
    return results, correct


@pytest.fixture(scope="module")
def sweep_rows():
    results, correct = _results(SWEEP)
    results.append({**results[0], "name": "broken", "trial": "broken", "status": "failed", "test_accuracy": None})
    return {row["name"]: row for row in stats.summary_rows(results, correct, reference="ref")}


def _numbers(row, role="reference"):
    difference, low, high = (row[f"vs_{role}_{key}"] * 100 for key in ("difference", "ci_low", "ci_high"))
    return f"{difference:+.2f} points, 95% CI {low:+.2f} to {high:+.2f}"


def test_the_verdicts_have_the_effects_the_results_were_made_with(sweep_rows):
    verdicts = {name: row["vs_reference"] for name, row in sweep_rows.items()}
    assert verdicts == {
        "ref": "reference", "wide": "better", "narrow": "worse", "mid": "not detected", "tanh": "not detected",
        "both": "better", "broken": None,
    }  # fmt: skip
    assert sweep_rows["both"]["vs_best"] == "best"  # by validation, though "wide" tests higher
    for name in ("mid", "tanh"):
        row = sweep_rows[name]
        assert row["vs_reference_detectable"] > abs(row["vs_reference_difference"])
        assert row["vs_reference_runs_needed"] > 3
    assert sweep_rows["wide"]["vs_reference_runs_needed"] is None  # detected: no runs needed


def test_every_sentence_and_its_numbers(sweep_rows):
    rows = list(sweep_rows.values())
    found = findings_data.find(rows, "ref")
    assert [finding.factor for finding in found.factors] == ["width", "activation"]
    sentences = findings_text.finding_sentences(found)
    best, wide = sweep_rows["both"], sweep_rows["wide"]
    mid, tanh, narrow = sweep_rows["mid"], sweep_rows["tanh"], sweep_rows["narrow"]

    def sizing(row):
        return (
            f"; this sweep could detect about {row['vs_reference_detectable'] * 100:.2f} points; about "
            f"{row['vs_reference_runs_needed']} runs would detect {row['vs_reference_difference'] * 100:+.2f}"
        )

    assert sentences[0] == (
        f"The best is both, chosen by mean validation accuracy ({best['val_accuracy'] * 100:.2f}%), never by test "
        f"accuracy; its mean test accuracy is {best['test_accuracy'] * 100:.2f}% over 3 runs."
    )
    assert sentences[1] == (
        f"wide has a higher mean test accuracy ({wide['test_accuracy'] * 100:.2f}%) but a lower validation accuracy, "
        f"so it is not the best; its difference from the best was not detected with 3 runs ({_numbers(wide, 'best')})."
    )
    assert sentences[2] == (
        f"Width (against ref, 128 units, 3 runs each): better at 512 units ({_numbers(wide)}); worse at 32 units "
        f"({_numbers(narrow)}); not detected with 3 runs at 256 units ({_numbers(mid)}{sizing(mid)})."
    )
    assert sentences[3] == (
        f"Hidden activation (against ref, relu, 3 runs each): not detected with 3 runs at tanh "
        f"({_numbers(tanh)}{sizing(tanh)})."
    )
    assert sentences[4] == f"Varying several fields at once, against ref: better at both ({_numbers(best)})."
    assert sentences[5] == "broken failed: it is left out of the comparisons."
    assert sentences[6].startswith(
        f"How sure: each verdict is a test at 5% after Holm's correction over the run's {found.comparisons} comparisons"
    )
    assert found.comparisons == 10  # five against the reference, five against the best
    assert not any("no effect" in sentence and "not that there is no effect" not in sentence for sentence in sentences)
    assert len(sentences) == 7


def test_one_run_compares_two_trained_models_not_configurations():
    results, correct = _results(SWEEP, seeds=1)
    rows = stats.summary_rows(results, correct, reference="ref")
    sentences = findings_text.finding_sentences(findings_data.find(rows, "ref"))
    narrow = next(row for row in rows if row["name"] == "narrow")
    assert narrow["vs_reference_test"] == "McNemar, one run each" and narrow["vs_reference_detectable"] is None
    assert f"worse at 32 units ({narrow['vs_reference_difference'] * 100:+.2f} points, p = " in sentences[2]
    assert "could detect" not in " ".join(sentences)
    assert sentences[-1].startswith("With one run each, a verdict (McNemar's test on the same test digits) compares")


def test_findings_are_data_before_they_are_text(sweep_rows):
    record = findings_data.as_record(findings_data.find(list(sweep_rows.values()), "ref"))
    assert record["best"]["name"] == "both" and record["runs"] == 3
    width = record["factors"][0]
    assert width["factor"] == "width" and width["reference_value"] == 128
    assert [(effect["value"], effect["verdict"]) for effect in width["effects"]] == [
        (32, "worse"), (256, "not detected"), (512, "better")
    ]  # fmt: skip


def test_two_runs_at_a_strict_level_cannot_detect_any_possible_difference():
    # Two runs leave the t-test one degree of freedom: at Holm's strictest level the smallest
    # detectable difference can pass 100 points, which no two accuracies can differ by.
    effect = findings_data.Effect("wide", 512, "not detected", 0.041, -0.35, 0.43, 1.0, 2, PAIRED_T,
                                  detectable=12.14, runs_needed=23)  # fmt: skip
    text = findings_text._effect_text(effect, "512 units")
    assert text == (
        "512 units (+4.10 points, 95% CI -35.00 to +43.00; with 2 runs this sweep could not detect even a "
        "100-point difference; about 23 runs would detect +4.10)"
    )
