"""The findings: built from fabricated results with known effects, then every sentence checked
against the summary rows' numbers, and the numbers behind them in findings.json and the report."""

import json

import numpy as np
import pytest

import explorer.analysis.findings as findings_data
import explorer.analysis.stats as stats
import explorer.views.findings as findings_text
import explorer.views.report as report
import explorer.views.summarize as summarize
from explorer.analysis.comparisons import MCNEMAR
from explorer.views.tables import candidate_networks, format_leaderboard

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


def _points(row, key="difference", role="reference"):
    return f"{row[f'vs_{role}_{key}'] * 100:+.2f}"


def test_every_sentence_and_its_numbers(sweep_rows):
    rows = list(sweep_rows.values())
    found = findings_data.find(rows, "ref")
    assert [finding.factor for finding in found.factors] == ["width", "activation"]
    sentences = findings_text.finding_sentences(found)
    best, wide, mid, tanh, narrow = (sweep_rows[name] for name in ("both", "wide", "mid", "tanh", "narrow"))
    assert sentences[0] == (  # the bottom line first: the largest difference detected, and the other way
        f"Bottom line: what mattered most against the reference, ref, was width 32 units, "
        f"{-narrow['vs_reference_difference'] * 100:.2f} points worse; the largest gain was width 512 units, "
        f"{_points(wide)} points."
    )
    assert sentences[1] == (
        f"The best, by mean validation accuracy (never by test accuracy), is both: {best['val_accuracy'] * 100:.2f}% "
        f"validation, {best['test_accuracy'] * 100:.2f}% test over 3 runs."
    )
    assert sentences[2] == (
        "wide scored higher on test but lower on validation, so it is not the best; against the best, wide was not "
        f"detectably different ({_points(wide, role='best')} points)."
    )
    assert sentences[3] == (
        f"Width: 32 units was worse ({_points(narrow)} points), 256 units not detectably different ({_points(mid)}), "
        f"512 units better ({_points(wide)}); against 128 units."
    )
    assert (
        sentences[4] == f"Hidden activation: tanh was not detectably different ({_points(tanh)} points); against relu."
    )
    assert sentences[5] == f"Varying several fields at once: both was better ({_points(best)} points); against ref."
    assert sentences[6] == "broken failed: it is left out of the comparisons."
    assert sentences[7] == (
        f"How sure: with 3 runs each, each verdict is {findings_text.TEST_WORDS[mid['vs_reference_test']]}, "
        f"at 5% after Holm's correction over the run's {found.comparisons} comparisons; \"not detected\" means this "
        "sweep could not tell, not that there is no effect."
    )
    assert len(sentences) == 8
    assert sum(sentence.startswith("How sure") for sentence in sentences) == 1  # said once
    assert not any("no effect" in sentence and "not that there is no effect" not in sentence for sentence in sentences)
    assert not any("CI" in sentence or "could detect" in sentence for sentence in sentences)  # numbers: the table


def test_the_bottom_line_says_plainly_that_nothing_was_detected_with_the_runs():
    close = {name: SWEEP[name] for name in ("ref", "mid", "tanh")}
    results, correct = _results(close)
    found = findings_data.find(stats.summary_rows(results, correct, reference="ref"), "ref")
    sentences = findings_text.finding_sentences(found)
    assert sentences[0] == (
        "Bottom line: with 3 runs each, this sweep detected no difference from the reference, ref, in any of its 2 "
        "comparisons with it; that is not evidence that there is none."
    )


def test_one_run_compares_two_trained_models_not_configurations():
    results, correct = _results(SWEEP, seeds=1)
    rows = stats.summary_rows(results, correct, reference="ref")
    sentences = findings_text.finding_sentences(findings_data.find(rows, "ref"))
    narrow = next(row for row in rows if row["name"] == "narrow")
    assert narrow["vs_reference_test"] == MCNEMAR and narrow["vs_reference_detectable"] is None
    assert f"Width: 32 units was worse ({_points(narrow)} points)" in sentences[3]
    assert sentences[-1].startswith(
        "How sure: with 1 run each, each verdict is McNemar's test on the same test digits, which with one run "
        "compares two trained models, not two configurations (--repeats 8, the default, compares configurations), at 5% after Holm's"
    )


def test_a_test_the_views_do_not_know_is_named_by_its_own_name(sweep_rows):
    found = findings_data.find(list(sweep_rows.values()), "ref")
    renamed = findings_data.Findings(**{**vars(found), "tests": ("a future test",)})
    assert "each verdict is a test over the seeds both ran (a future test), at 5%" in findings_text.how_sure(renamed)


def test_identical_configurations_are_said_to_be_identical():
    same = {**SWEEP, "same": ({"activation": "sigmoid"}, *SWEEP["ref"][1:])}  # the reference's accuracies exactly
    results, correct = _results(same)
    rows = stats.summary_rows(results, correct, reference="ref")
    found = findings_data.find(rows, "ref")
    [activation] = [sentence for sentence in findings_text.finding_sentences(found) if sentence.startswith("Hidden")]
    tanh = next(row for row in rows if row["name"] == "tanh")
    assert activation == (
        f"Hidden activation: sigmoid gave identical results on every run, tanh not detectably different "
        f"({_points(tanh)} points); against relu."
    )
    [numbers] = [row for row in findings_text.number_rows(found) if row["configuration"] == "same"]
    assert numbers["verdict"] == "identical" and numbers["detectable_points"] == 0
    assert report._number_cells(numbers)[1:2] + report._number_cells(numbers)[7:8] == ["identical", "identical"]
    assert "0.00 points" not in " ".join(findings_text.finding_sentences(found))


def test_findings_are_data_before_they_are_text(sweep_rows):
    record = findings_data.as_record(findings_data.find(list(sweep_rows.values()), "ref"))
    assert record["best"]["name"] == "both" and record["runs"] == 3
    width = record["factors"][0]
    assert width["factor"] == "width" and width["reference_value"] == 128
    assert [(effect["value"], effect["verdict"]) for effect in width["effects"]] == [
        (32, "worse"), (256, "not detected"), (512, "better")
    ]  # fmt: skip


def test_findings_json_holds_the_numbers_behind_each_sentence(sweep_rows, tmp_path):
    rows = list(sweep_rows.values())
    written = summarize._write_findings(tmp_path, rows, "ref", None)
    record = json.loads((tmp_path / "findings.json").read_text())
    assert {"reference", "best", "factors", "others", "unfinished", "comparisons", "sentences"} <= set(record)
    assert record["sentences"] == list(written.sentences) and record["numbers"] == written.numbers
    # One row per comparison with the reference, grouped by factor, then the configurations varying several fields.
    assert [(row["group"], row["label"], row["verdict"]) for row in record["numbers"]] == [
        ("Width", "32 units", "worse"), ("Width", "256 units", "not detected"), ("Width", "512 units", "better"),
        ("Hidden activation", "tanh", "not detected"), (findings_text.OTHERS, "both", "better"),
    ]  # fmt: skip
    mid = sweep_rows["mid"]
    [numbers] = [row for row in record["numbers"] if row["configuration"] == "mid"]
    assert numbers == {
        "group": "Width", "label": "256 units", "configuration": "mid", "verdict": "not detected",
        "difference_points": pytest.approx(mid["vs_reference_difference"] * 100),
        "ci_low_points": pytest.approx(mid["vs_reference_ci_low"] * 100),
        "ci_high_points": pytest.approx(mid["vs_reference_ci_high"] * 100),
        "p_holm": mid["vs_reference_p"], "test": mid["vs_reference_test"], "runs": 3,
        "detectable_points": pytest.approx(mid["vs_reference_detectable"] * 100),
        "runs_needed": mid["vs_reference_runs_needed"],
    }  # fmt: skip


def test_the_report_shows_the_numbers_beside_the_sentences(sweep_rows):
    found = findings_data.find(list(sweep_rows.values()), "ref")
    numbers = findings_text.number_rows(found)
    parts = report.ReportParts(findings=findings_text.finding_sentences(found), numbers=numbers,
                               figures={report.FOREST: b"\x89PNG forest"})  # fmt: skip
    page = report.render_report({"reference": "ref"}, "run", list(sweep_rows.values()), parts)
    table = page.split('<table id="numbers">')[1].split("</table>")[0]
    assert table.count('<tr class="group">') == 3 and table.count('<td class="text">') == len(numbers)
    mid = sweep_rows["mid"]
    low, high = (mid[f"vs_reference_ci_{end}"] * 100 for end in ("low", "high"))
    assert f"<td>{_points(mid)}</td><td>{low:+.2f} to {high:+.2f}</td>" in table
    # The forest plot sits beside the sentences, before the leaderboard.
    assert page.index("What this sweep found") < page.index("data:image/png") < page.index("<h2>Leaderboard")


def test_two_runs_at_a_strict_level_cannot_detect_any_possible_difference():
    # Two runs leave the t-test one degree of freedom: at Holm's strictest level the smallest
    # detectable difference can pass 100 points, which no two accuracies can differ by.
    effect = findings_data.Effect("wide", 512, "not detected", 0.041, -0.35, 0.43, 1.0, 2, "a t-test",
                                  detectable=12.14, runs_needed=23)  # fmt: skip
    cells = report._number_cells(findings_text.number_row("Width", "512 units", effect))
    assert cells == ["512 units", "· not detected", "+4.10", "-35.00 to +43.00", "1", "a t-test", "2", "over 100", "23"]


def test_a_search_candidate_is_named_with_its_network():
    sweep = {**SWEEP, "trial_49": ({"hidden_units": [373, 373], "dropout": 0.1612, "learning_rate": 0.000823},
                                   [0.975, 0.976, 0.974], [0.95, 0.95, 0.95])}  # fmt: skip
    results, correct = _results(sweep)
    rows = stats.summary_rows(results, correct, reference="ref")
    networks = candidate_networks(rows)
    described = "trial_49 (373-373 relu, dropout 0.16, adam 0.00082)"
    assert networks == {"trial_49": "373-373 relu, dropout 0.16, adam 0.00082"}
    found = findings_data.find(rows, "ref")
    [others] = [line for line in findings_text.finding_sentences(found, networks) if line.startswith("Varying")]
    assert described in others
    assert [row["label"] for row in findings_text.number_rows(found, networks)][-1] == described
    lines = format_leaderboard(rows).splitlines()
    [at] = [index for index, line in enumerate(lines) if "trial_49" in line]
    assert lines[at + 1].strip() == "(373-373 relu, dropout 0.16, adam 0.00082)"  # beneath its name


# --- A large sweep: no sentence runs past MAX_SENTENCE characters ---------------------------------------


def _large_sweep():
    """Twenty widths, ten activations' worth of learning rates, forty configurations varying several
    fields (search candidates among them), and a dozen that did not finish."""
    rng = np.random.default_rng(0)
    sweep = {"ref": ({}, [0.900, 0.901, 0.899], [0.899, 0.900, 0.898])}

    def accuracies(shift):
        test = list(0.9 + shift + rng.normal(0, 0.001, 3))
        return test, [value - 0.001 for value in test]

    for width in range(16, 16 + 20 * 24, 24):
        sweep[f"width_{width}"] = ({"hidden_units": [width]}, *accuracies((width - 128) / 10_000))
    for rate in (0.0001, 0.0003, 0.003, 0.01, 0.03, 0.1, 0.3):
        sweep[f"lr_{rate}"] = ({"learning_rate": rate}, *accuracies(-abs(np.log10(rate) + 3) / 20))
    for number in range(40):
        fields = {"hidden_units": [int(rng.integers(64, 600))] * 2, "dropout": float(rng.uniform(0, 0.5)),
                  "learning_rate": float(10 ** rng.uniform(-4, -2)), "activation": "tanh"}  # fmt: skip
        sweep[f"trial_{number}" if number % 2 else f"a_rather_long_configuration_name_{number}"] = (
            fields, *accuracies(rng.normal(0, 0.03)))  # fmt: skip
    return sweep


def test_no_sentence_is_longer_than_four_hundred_characters_on_a_large_sweep():
    results, correct = _results(_large_sweep())
    results += [{**results[0], "name": f"broken_configuration_number_{n}", "trial": f"b{n}", "status": "failed",
                 "test_accuracy": None} for n in range(12)]  # fmt: skip
    rows = stats.summary_rows(results, correct, reference="ref")
    found = findings_data.find(rows, "ref")
    sentences = findings_text.finding_sentences(found, candidate_networks(rows))
    assert max(map(len, sentences)) <= findings_text.MAX_SENTENCE, max(sentences, key=len)
    assert sentences[0].startswith("Bottom line: what mattered most against the reference, ref, was ")
    assert any(sentence.startswith("Varying several fields at once, configurations: of 40, ") for sentence in sentences)
    assert len(findings_text.number_rows(found)) == len(_large_sweep()) - 1  # every comparison is in the table
