"""A search in the views: its study read back from a study.db written here with Optuna (no
training), its two figures, its findings (what it did, what mattered, whether the verification
confirmed its best) and the report's "Search" section, which is there only after a search."""

import json
import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

import explorer.analysis.findings as findings_data
import explorer.analysis.stats as stats
import explorer.views.search_findings as findings_text
from explorer.data.loading import load_prepared
from explorer.store.folders import STUDY_FILE
from explorer.store.schema import read_results
from explorer.store.study import read_search
from explorer.views.findings import MAX_SENTENCE
from explorer.views.report import ReportParts, SearchPart, render_report, search_section
from explorer.views.search_figures import (
    search_history_figure,
    search_importances_figure,
    top_candidates,
    verified_winner,
)
from explorer.views.summarize import build_views
from explorer.views.tables import candidate_networks, network_text

DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    "width": IntDistribution(8, 512, log=True),
    "activation": CategoricalDistribution(["relu", "tanh"]),
}


def _trial(state, value, curve, stopped, seconds, params):
    """A trial as the search tells it: its epochs' validation accuracies, why it stopped, when."""
    user_attrs = {"config": json.dumps({"hidden_units": [params["width"]]}), "epochs_run": len(curve),
                  "seconds_at_end": seconds, "val_loss": 0.2}  # fmt: skip
    if stopped is not None:
        user_attrs["stopped"] = stopped
    return create_trial(
        state=state,
        value=value,
        params=params,
        distributions=DISTRIBUTIONS,
        intermediate_values={epoch: v for epoch, v in enumerate(curve, start=1)},
        user_attrs=user_attrs,
    )


def _params(rng):
    return {
        "learning_rate": float(10 ** rng.uniform(-4, -1)),
        "width": int(rng.integers(8, 513)),
        "activation": str(rng.choice(["relu", "tanh"])),
    }


def synthetic_trials(complete=12, seed=0):
    """`complete` complete candidates whose accuracy depends on the learning rate alone (the
    closer to 1e-2, the better), then one pruned by halving, one stopped by the budget, one
    refused and one interrupted (failed without a reason: asked again, so left out)."""
    rng = np.random.default_rng(seed)
    trials = []
    for number in range(complete):
        params = _params(rng)
        value = 0.97 - 0.02 * abs(math.log10(params["learning_rate"]) + 2)
        curve = [value - 0.02, value - 0.01, value]
        trials.append(_trial(TrialState.COMPLETE, value, curve, "complete (3 epochs)", 30.0 * (number + 1), params))
    at = 30.0 * complete
    return [
        *trials,
        _trial(TrialState.PRUNED, 0.80, [0.80], "pruned after epoch 1", at + 10, _params(rng)),
        _trial(TrialState.PRUNED, 0.85, [0.84, 0.85], "stopped by the budget after epoch 2", at + 20, _params(rng)),
        _trial(TrialState.FAIL, None, [], "refused: dropout with no hidden layer", at + 21, _params(rng)),
        _trial(TrialState.FAIL, None, [0.5], None, at + 22, _params(rng)),
    ]


def write_study(run_dir, trials, name="mine", seconds=400.0):
    """A study.db in `run_dir` as the search leaves it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{run_dir / STUDY_FILE}")
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    study.set_user_attr("seconds", seconds)
    study.set_user_attr("space", "fingerprint")
    for trial in trials:
        study.add_trial(trial)
    storage.engine.dispose()
    return study


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """One study read back, shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("searched") / "run"
    write_study(run_dir, synthetic_trials())
    return read_search(run_dir)


# --- Reading the study --------------------------------------------------------------------------------


def test_the_record_holds_the_candidates_told_and_not_those_asked_again(record):
    assert record.name == "mine"
    assert record.seconds == 400.0
    assert [c.number for c in record.candidates] == list(range(15))  # 12 complete, pruned, budget, refused
    by_number = {c.number: c for c in record.candidates}
    assert [by_number[n].state for n in (0, 12, 13, 14)] == ["COMPLETE", "PRUNED", "PRUNED", "FAIL"]
    assert by_number[12].value == pytest.approx(0.80)  # a pruned one carries its last epoch's value
    assert by_number[12].by_halving and not by_number[13].by_halving
    assert by_number[13].stopped == "stopped by the budget after epoch 2"
    assert by_number[14].value is None and by_number[14].stopped.startswith("refused:")
    assert (by_number[13].epochs_run, by_number[13].seconds_at_end) == (2, 380.0)
    assert set(by_number[0].params) == set(DISTRIBUTIONS)
    values = [c.value for c in record.complete]
    assert record.best.value == max(values) and record.best.name == f"trial_{record.best.number}"


def test_the_importances_put_first_the_parameter_the_accuracy_depends_on(record):
    names = [name for name, _ in record.importances]
    assert sorted(names) == sorted(DISTRIBUTIONS)
    assert names[0] == "learning_rate"
    assert sum(value for _, value in record.importances) == pytest.approx(1.0)


@pytest.mark.parametrize("complete", [0, 1])
def test_too_few_complete_candidates_leave_the_importances_empty(tmp_path, complete):
    write_study(tmp_path, synthetic_trials(complete=complete))
    found = read_search(tmp_path)
    assert len(found.complete) == complete
    assert found.importances == ()


def test_no_study_is_no_search(tmp_path):
    assert read_search(tmp_path) is None
    (tmp_path / STUDY_FILE).mkdir()  # a folder of that name is no study either
    assert read_search(tmp_path) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: np.random.default_rng(0).bytes(4096),  # garbage
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: b"",  # empty
        lambda data: b"SQLite format 3\x00" + bytes(200),  # a header and nothing else
    ],
    ids=["garbage", "truncated", "empty", "header-only"],
)
def test_a_damaged_study_is_no_search_and_is_left_as_it_was(tmp_path, damage):
    write_study(tmp_path, synthetic_trials(complete=3))
    path = tmp_path / STUDY_FILE
    path.write_bytes(damage(path.read_bytes()))
    before = path.read_bytes()
    assert read_search(tmp_path) is None
    assert path.read_bytes() == before  # opened read-only: nothing created or written


def test_a_study_in_a_folder_whose_path_needs_quoting_is_read(tmp_path):
    write_study(tmp_path / "plain", synthetic_trials(complete=2))
    folder = (tmp_path / "plain").rename(tmp_path / "my run #1 ?%+")
    assert len(read_search(folder).complete) == 2


# --- Figures ------------------------------------------------------------------------------------------


def _labelled(ax, label):
    return [line for line in ax.get_lines() if line.get_label() == label]


def test_the_history_has_both_panels_the_best_so_far_and_the_starred_winner(record):
    winner = record.complete[3].name
    verified = {"ref": 0.95, winner: 0.99, record.best.name: 0.98}
    figure = search_history_figure(record, verified)
    number_ax, time_ax = figure.axes
    assert number_ax.get_xlabel() == "candidate (in the order asked)"
    assert time_ax.get_xlabel() == "minutes of search spent"
    [best_line] = _labelled(number_ax, "best complete so far")
    values = [c.value for c in record.complete]
    assert list(best_line.get_ydata()) == pytest.approx(list(np.maximum.accumulate(values)))
    [complete] = _labelled(number_ax, "complete")
    assert len(complete.get_xdata()) == 12
    [pruned] = _labelled(number_ax, "stopped early (pruned or out of budget): at its last epoch")
    assert sorted(pruned.get_ydata()) == pytest.approx([0.80, 0.85])
    for ax in (number_ax, time_ax):
        [star] = _labelled(ax, f"verified best: {winner}")
        assert star.get_marker() == "*"
        [ringed] = _labelled(ax, "trained again on fresh seeds")
        assert len(ringed.get_xdata()) == 2  # the reference is no candidate
    [star] = _labelled(time_ax, f"verified best: {winner}")
    assert star.get_xdata()[0] == pytest.approx(record.complete[3].seconds_at_end / 60)
    assert "1 diverged or refused, not shown" in figure._suptitle.get_text()
    named = search_history_figure(record, verified, {winner: "373-373 relu, adam 0.00082"})  # its network said
    assert _labelled(named.axes[0], f"verified best: {winner} (373-373 relu, adam 0.00082)")


def test_a_verified_best_that_is_no_candidate_is_said_not_starred(record):
    figure = search_history_figure(record, {record.best.name: 0.97, "ref": 0.98})
    assert not any(line.get_marker() == "*" for ax in figure.axes for line in ax.get_lines())
    assert "the verified best, ref, is not a search candidate" in figure._suptitle.get_text()


def test_the_verified_winner_is_the_first_of_equals():
    assert verified_winner({"a": 0.9, "b": 0.95, "c": 0.95}) == "b"
    assert verified_winner({}) is None


def test_the_importances_are_bars_the_most_important_on_top(record):
    [ax] = search_importances_figure(record).axes
    bars = ax.patches
    assert [bar.get_width() for bar in bars] == pytest.approx([v for _, v in record.importances][::-1])
    assert ax.get_yticklabels()[-1].get_text() == record.importances[0][0]


def test_without_importances_the_figure_says_why(tmp_path):
    write_study(tmp_path, synthetic_trials(complete=1))
    [ax] = search_importances_figure(read_search(tmp_path)).axes
    assert not ax.patches
    assert [text.get_text() for text in ax.texts] == ["too few complete candidates (1) to weigh the parameters"]


def test_the_top_candidates_are_the_complete_ones_first(record):
    top = top_candidates(record, count=14)
    assert [c.state for c in top] == ["COMPLETE"] * 12 + ["PRUNED"] * 2
    assert [c.value for c in top[:12]] == sorted((c.value for c in record.complete), reverse=True)


# --- Findings -----------------------------------------------------------------------------------------

DIGITS = 1000
FIELDS = {"hidden_units": [128], "activation": "relu", "dropout": 0.0, "output_activation": "softmax",
          "optimizer": "adam", "learning_rate": 0.001, "batch_size": 128}  # fmt: skip


def verification_rows(accuracies):
    """Summary rows of a verification: name -> (test accuracy per seed, validation accuracy per seed)."""
    results, correct = [], {}
    for index, (name, (test, validation)) in enumerate(accuracies.items()):
        for seed, (on_test, on_validation) in enumerate(zip(test, validation, strict=True)):
            results.append({
                "name": name, "repeat": seed, "trial": f"{name}@{seed}", "seed": seed, "status": "ok",
                "test_accuracy": on_test, "test_loss": 0.1, "val_accuracy": on_validation, "val_loss": 0.1,
                "parameters": 1000 + index, "config": {**FIELDS, "hidden_units": [128 + index]},
            })  # fmt: skip
            correct.setdefault(name, {})[seed] = np.arange(DIGITS) < round(on_test * DIGITS)
    return stats.summary_rows(results, correct, reference="ref")


def _search_lines(record, rows):
    finding = findings_data.find_search(record, rows)
    lines = findings_text.search_sentences(finding, candidate_networks(rows))
    assert all(len(line) <= MAX_SENTENCE for line in lines)
    return finding, lines


def test_the_search_and_its_important_parameters_in_sentences(record):
    finding, lines = _search_lines(record, [])
    assert (finding.candidates, finding.complete, finding.pruned, finding.budget_stopped, finding.failed) == (
        15, 12, 1, 1, 1)  # fmt: skip
    assert lines[0] == (
        "The search 'mine' tried 15 candidates in 6.7 min (12 complete, 1 stopped early by successive halving, "
        "1 stopped by the budget, 1 diverged or refused)."
    )
    top = ", ".join(f"{name} {value:.2f}" for name, value in record.importances[:2])
    assert lines[1] == (
        "The parameters that mattered most, by Optuna's importance evaluator (PED-ANOVA over the 12 complete "
        f"candidates; importances sum to 1): {top} and {record.importances[2][0]} {record.importances[2][1]:.2f}."
    )


def test_the_verification_confirmed_the_search_best(record):
    best = record.best.name
    rows = verification_rows({
        best: ([0.975, 0.977, 0.976], [0.980, 0.981, 0.979]),
        "trial_2": ([0.970, 0.971, 0.969], [0.970, 0.972, 0.971]),
        "ref": ([0.950, 0.952, 0.951], [0.950, 0.951, 0.949]),
    })  # fmt: skip
    finding, lines = _search_lines(record, rows)
    row = next(row for row in rows if row["name"] == best)
    assert finding.confirmed and finding.verified_best == best
    assert (finding.best_rank, finding.ranked, finding.best_runs) == (1, 3, 3)
    assert finding.vs_reference.verdict == row["vs_reference"] == "better"
    assert lines[2] == (
        f"The search's best by validation accuracy was {best} ({network_text(row)}), at {record.best.value:.4f} "
        "during the search (it was chosen because it was high, so that score is not a result)."
    )
    assert network_text(row) == f"{row['hidden_units'][0]} relu, adam 0.001"  # the candidate said with its network
    assert lines[3] == (
        f"Trained again on fresh seeds, its mean test accuracy is {row['test_accuracy'] * 100:.2f}% over 3 runs, "
        f"rank 1 of 3 in the verified leaderboard; against the reference, ref, it is better "
        f"({row['vs_reference_difference'] * 100:+.2f} points, 95% CI {row['vs_reference_ci_low'] * 100:+.2f} to "
        f"{row['vs_reference_ci_high'] * 100:+.2f})."
    )
    assert lines[4] == (
        f"The verification confirmed it: {best} is also the verification's best by mean validation accuracy on "
        "fresh seeds."
    )


def test_the_verification_did_not_confirm_the_search_best(record):
    best = record.best.name
    rows = verification_rows({
        best: ([0.960, 0.962, 0.961], [0.960, 0.962, 0.961]),
        "trial_2": ([0.975, 0.977, 0.976], [0.980, 0.981, 0.979]),
        "ref": ([0.963, 0.962, 0.964], [0.950, 0.951, 0.949]),
    })  # fmt: skip
    finding, lines = _search_lines(record, rows)
    assert not finding.confirmed and finding.verified_best == "trial_2"
    assert finding.vs_verified_best.verdict == "worse"
    assert finding.vs_reference.verdict == "not detected"
    assert "rank 3 of 3 in the verified leaderboard; against the reference, ref, it is not detectably " in lines[3]
    trial_2 = next(row for row in rows if row["name"] == "trial_2")
    assert lines[4].startswith(
        "The verification did not confirm it: the verification's best by mean validation accuracy on fresh seeds "
        f"is trial_2 ({network_text(trial_2)}); against it, {best} is worse ("
    )
    # The search's own score names how it was chosen; it is never the result.
    assert sum(f"{record.best.value:.4f}" in line for line in lines) == 1
    assert "not a result" in lines[2]


def test_a_search_best_not_trained_again_is_not_confirmed(record):
    rows = verification_rows({"ref": ([0.95, 0.96], [0.95, 0.96])})
    finding, lines = _search_lines(record, rows)
    assert not finding.confirmed and finding.best_status is None
    assert lines[2].endswith("it has not been trained again on fresh seeds in this run folder, so nothing confirms it.")


def test_a_search_that_completed_nothing_verified_nothing(tmp_path):
    write_study(tmp_path, synthetic_trials(complete=0))
    finding, lines = _search_lines(read_search(tmp_path), [])
    assert finding.best is None and not finding.confirmed
    assert lines[1:] == [
        "Too few candidates completed (0) for Optuna to weigh the parameters' importance.",
        "No candidate of the search trained to its last epoch, so none was verified.",
    ]


# --- The report ---------------------------------------------------------------------------------------


def test_the_report_has_a_search_section_only_after_a_search(record):
    rows = verification_rows({record.best.name: ([0.97, 0.98], [0.97, 0.98]), "ref": ([0.95, 0.96], [0.95, 0.96])})
    png = b"\x89PNG fake"
    part = SearchPart(
        figures={"search_history.png": png, "search_importances.png": png},
        sentences=["The search 'mine' tried 15 candidates."],
        candidates=top_candidates(record, count=5),
        verified={row["name"]: row for row in rows},
        parameters=[name for name, _ in record.importances],
    )
    page = render_report({}, "run", rows, ReportParts(search=part))
    assert page.count('<section id="search"><h2>Search</h2>') == 1
    assert page.count("data:image/png;base64,") == 2
    assert "<li>The search &#x27;mine&#x27; tried 15 candidates.</li>" in page
    table = page.split('id="search-candidates"')[1]
    assert table.count("<tr><td>") == 5
    best_row = next(row for row in rows if row["name"] == record.best.name)
    assert f"<td>{record.best.name}</td><td>{record.best.value:.4f}</td><td>3</td>" in table
    assert f"{best_row['test_accuracy']:.4f} test, 2 runs (rank 1)" in table
    assert f"<td>learning_rate {record.best.params['learning_rate']:.3g}, " in table
    assert 'id="search"' not in render_report({}, "run", rows, ReportParts())
    assert search_section(None) == ""


def test_the_views_of_a_searched_run_folder(finished_run):
    """build_views on a finished run whose folder holds a study: its first model stands for the
    search's best, verified; the figures, findings.json's numbers and the report's section follow."""
    run_dir, arguments = finished_run
    write_study(run_dir, synthetic_trials())
    best = read_search(run_dir).best.name
    results = [{**result, "trial": result.get("trial", result["name"]),
                "name": best if result["name"] == "first" else result["name"]}
               for result in read_results(run_dir)]  # fmt: skip
    data = load_prepared(arguments[3], seed=0, validation_split=0.1, quick=False, log=lambda line: None).data
    views = build_views(run_dir, data, "second", results)
    assert {"search_history", "search_importances"} <= set(views.figures)
    assert views.findings[0].startswith("The search 'mine' tried 15 candidates in 6.7 min")
    written = json.loads((run_dir / "findings.json").read_text())
    assert written["search"]["best"] == best and written["search"]["ranked"] == 2
    verified_best = next(row["name"] for row in views.rows if row["vs_best"] == "best")
    assert written["search"]["verified_best"] == verified_best
    assert written["search"]["confirmed"] == (verified_best == best)
    assert written["sentences"][: len(views.findings)] == list(views.findings)
    page = (run_dir / "report.html").read_text()
    assert page.count('<section id="search">') == 1 and f"<td>{best}</td>" in page
    (run_dir / STUDY_FILE).unlink()
    views = build_views(run_dir, data, "second", results)
    assert "search_history" not in views.figures and not (run_dir / "search_history.png").exists()
    assert 'id="search"' not in (run_dir / "report.html").read_text()
    assert "search" not in json.loads((run_dir / "findings.json").read_text())
