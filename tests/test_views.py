"""Views: summary rows, the leaderboard, the CSV, the confusion matrix and the figures."""

import csv
import io

import numpy as np
import pytest
from matplotlib.figure import Figure

import common
import explorer.analysis.stats
import explorer.config.models
import explorer.views.figures
import explorer.views.tables

from conftest import dense_trial


def record(name, test_accuracy, parameters, **extra):
    return {
        "name": name,
        "status": "ok",
        "test_accuracy": test_accuracy,
        "test_loss": 1 - test_accuracy,
        "val_accuracy": test_accuracy,
        "val_loss": 0.5,
        "parameters": parameters,
        "train_seconds": 12.5,
        "seconds_per_epoch": 0.61,
        "epochs_run": 20,
        "loss_function": "categorical_crossentropy",
        "seed": 42,
        "versions": {"backend": "jax"},
        "config": dense_trial(name, extra).facts.description,
    }


RESULTS = [
    record("narrow", 0.95, 25_450, hidden_units=[32]),
    record("wide", 0.98, 669_706, hidden_units=[512, 512], dropout=0.2),
    record("tied_small", 0.98, 101_770, activation="tanh"),
]


def test_summary_ranks_by_test_accuracy_then_size():
    rows = explorer.analysis.stats.summary_rows(RESULTS)
    assert [(row["rank"], row["name"]) for row in rows] == [(1, "tied_small"), (2, "wide"), (3, "narrow")]
    assert list(rows[0]) == list(explorer.analysis.stats.SUMMARY_COLUMNS)
    assert rows[1]["hidden_units"] == [512, 512] and rows[1]["dropout"] == 0.2 and rows[0]["activation"] == "tanh"


def test_summary_csv_reads_back():
    parsed = list(
        csv.DictReader(
            io.StringIO(
                explorer.analysis.stats.table_csv(
                    explorer.analysis.stats.summary_rows(RESULTS), explorer.analysis.stats.SUMMARY_COLUMNS
                )
            )
        )
    )
    assert [row["name"] for row in parsed] == ["tied_small", "wide", "narrow"]
    assert parsed[1]["hidden_units"] == "512x512" and float(parsed[1]["test_accuracy"]) == 0.98


def test_leaderboard_is_aligned():
    table = explorer.views.tables.format_leaderboard(explorer.analysis.stats.summary_rows(RESULTS))
    lines = table.splitlines()
    assert len(lines) == 2 + len(RESULTS) and len({len(line) for line in lines}) == 1
    assert "0.9800" in lines[2] and "669,706" in lines[3]
    assert lines[2].index("tied_small") == lines[0].index("model")


def test_a_search_candidate_is_named_with_its_network_wherever_it_appears():
    from explorer.store.study import candidate_name

    assert candidate_name(49) == f"{explorer.views.tables.CANDIDATE_PREFIX}49"  # as the search names them
    tables = explorer.views.tables
    assert [tables.is_candidate(name) for name in ("trial_49", "run_a.trial_7", "trial_x", "my_trial_3")] == [
        True, True, False, False
    ]  # fmt: skip
    row = {"name": "trial_49", "hidden_units": [373, 373], "activation": "relu", "dropout": 0.16123,
           "output_activation": "softmax", "optimizer": "adam", "learning_rate": 0.000823456, "batch_norm": True,
           "batch_size": 128, "epochs_run": 12}  # fmt: skip
    assert tables.network_text(row) == "373-373 relu, dropout 0.16, batch norm, adam 0.00082"
    assert tables.network_text({**row, "output_activation": "sigmoid", "dropout": 0.0, "batch_norm": False}) == (
        "373-373 relu → sigmoid, adam 0.00082"
    )
    assert tables.configuration_text(row) == (
        "373-373 relu, dropout 0.16123, batch norm → softmax; adam 0.000823456, batch 128, 12 epochs"
    )
    rows = explorer.analysis.stats.summary_rows([*RESULTS, record("trial_3", 0.97, 1_000, hidden_units=[212])])
    lines = tables.format_leaderboard(rows).splitlines()
    said = lines.index(next(line for line in lines if "trial_3 " in line)) + 1  # its network beneath its name
    assert lines[said].strip() == "(212 relu, adam 0.001)" and lines[said].index("(") == lines[0].index("model")
    assert len(lines) == 2 + len(rows) + 1 and len({len(line) for line in lines}) == 1  # aligned, one line more


def test_diverged_and_failed_models_rank_last_and_show_their_status():
    diverged = {**record("exploding", 0.0, 25_450), "status": "diverged", "test_accuracy": None, "test_loss": None}
    failed = {"name": "huge", "status": "failed", "reason": "MemoryError: out of memory", "test_accuracy": None,
              "config": dense_trial("huge", {}).facts.description}  # fmt: skip
    rows = explorer.analysis.stats.summary_rows([failed, diverged, *RESULTS])
    assert [(row["name"], row["status"]) for row in rows][-2:] == [("exploding", "diverged"), ("huge", "failed")]
    assert rows[-1]["reason"] == "MemoryError: out of memory"
    lines = explorer.views.tables.format_leaderboard(rows).splitlines()
    assert "diverged" in lines[-2] and "failed" in lines[-1] and len({len(line) for line in lines}) == 1


def test_confusion_matrix_counts_pairs():
    true = np.array([0, 1, 1, 2, 2, 2])
    predicted = np.array([0, 1, 2, 2, 2, 0])
    counts = explorer.views.figures.confusion_matrix(true, predicted, num_classes=3)
    assert counts.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 2]]


def test_plots_return_labelled_figures():
    history = {"loss": [0.5, 0.3], "val_loss": [0.4, 0.35], "accuracy": [0.8, 0.9], "val_accuracy": [0.85, 0.88]}
    curves = common.plot_history(history, title="wide")
    assert isinstance(curves, Figure) and [ax.get_title() for ax in curves.axes] == ["Accuracy", "Loss"]
    assert [line.get_label() for line in curves.axes[0].lines] == ["training accuracy", "validation accuracy"]

    rows = explorer.analysis.stats.summary_rows(RESULTS)
    comparison = explorer.views.figures.plot_comparison(rows, {row["name"]: [history] for row in rows})
    curves_ax, params_ax, _ = comparison.axes
    assert [line.get_label() for line in curves_ax.lines] == ["1. tied_small", "2. wide", "3. narrow"]
    assert params_ax.get_xscale() == "log" and len(params_ax.containers) == len(RESULTS)  # one errorbar each
    on_front = sum("parameters" in (row["pareto"] or "") for row in rows)
    assert len(params_ax.lines) == len(RESULTS) + on_front  # each point, and a ring around the Pareto ones
    assert [text.get_text() for text in params_ax.texts] == ["1", "2", "3"]


def test_plot_history_draws_into_given_axes():
    figure = Figure()
    axes = figure.subplots(1, 2)
    history = {"loss": [1.0], "val_loss": [1.0], "accuracy": [0.5], "val_accuracy": [0.5]}
    assert common.plot_history(history, axes=axes) is figure


def test_misclassified_gallery_shows_true_and_predicted_labels():
    images = np.zeros((50, 28, 28), np.uint8)
    true = np.arange(50) % 10
    predicted = true.copy()
    predicted[[3, 17, 41]] = 0
    figure = explorer.views.figures.plot_misclassified(images, true, predicted, title="x")
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["true 3\npred 0", "true 7\npred 0", "true 1\npred 0"]
    assert explorer.views.figures.plot_misclassified(images, true, true).axes[0].texts[0].get_text() == "no mistakes"


def test_the_pareto_front_of_constructed_points():
    # (cost, accuracy): b is dominated by a (dearer, no better); d is dominated by c; e ties c on
    # both and stays (neither is strictly better).
    points = [(1, 0.90), (2, 0.90), (3, 0.95), (4, 0.94), (3, 0.95), (5, 0.97)]
    assert explorer.analysis.stats.pareto_front(points) == [True, False, True, False, True, True]


def test_summary_flags_the_pareto_configurations():
    rows = explorer.analysis.stats.summary_rows(RESULTS)
    # By hand: wide (669,706 parameters) is no more accurate than tied_small (101,770); narrow is cheapest.
    assert {row["name"]: row["pareto"] for row in rows} == {
        "tied_small": "parameters",
        "wide": None,
        "narrow": "parameters",
    }


def test_fused_runs_plot_cost_in_flops_and_lone_runs_in_seconds():
    lone = explorer.analysis.stats.summary_rows(
        [{**result, "train_flops": 1e9 * (i + 1)} for i, result in enumerate(RESULTS)]
    )
    fused = [{**row, "fused_group_size": 3} for row in lone]
    assert explorer.views.figures.comparison_cost(lone)[0] == "train_seconds"
    assert explorer.views.figures.comparison_cost(fused)[0] == "train_flops"
    histories = {row["name"]: [{"val_accuracy": [0.9, 0.95]}] for row in fused}
    _, _, cost_ax = explorer.views.figures.plot_comparison(fused, histories).axes
    assert cost_ax.get_xscale() == "log" and "FLOPs" in cost_ax.get_xlabel()


def _factor_row(name, status="ok", **fields):
    base = {"hidden_units": [128], "activation": "relu", "output_activation": "softmax", "dropout": 0.0,
            "optimizer": "adam", "learning_rate": 0.001, "batch_size": 128, "epochs_run": 20}  # fmt: skip
    return {"name": name, "status": status, "test_accuracy": 0.97, "flops_per_epoch": 3.4e10, **base, **fields}


def test_factor_groups_are_the_one_field_differences_from_the_reference():
    rows = [
        _factor_row("ref"),
        _factor_row("wide", hidden_units=[512]),
        _factor_row("narrow", hidden_units=[32]),
        _factor_row("deep", hidden_units=[128, 128]),
        _factor_row("tanh", activation="tanh"),
        _factor_row("fast", learning_rate=0.01),
        _factor_row("wide_dropout", hidden_units=[512], dropout=0.2),  # two fields: in no group
        _factor_row("regression", hidden_units=[], activation=None),  # width, depth and activation differ
        _factor_row("broken", status="failed", activation="gelu"),  # not finished: in no group
    ]
    groups = explorer.analysis.stats.factor_groups(rows, "ref")
    assert {field: [row["name"] for row in members] for field, members in groups.items()} == {
        "width": ["narrow", "ref", "wide"],
        "depth": ["ref", "deep"],
        "activation": ["ref", "tanh"],
        "learning_rate": ["ref", "fast"],
    }
    assert explorer.analysis.stats.factor_groups(rows, "not-in-the-sweep") == {}
    figure = explorer.views.figures.plot_factors(groups, "ref")
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles[:4] == [
        "Width (units of the widest hidden layer)",
        "Depth (hidden layers)",
        "Hidden activation",
        "Learning rate",
    ]
    empty = explorer.views.figures.plot_factors({}, "ref")
    assert "differs from ref in exactly one field" in empty.axes[0].texts[0].get_text()


def test_per_class_accuracy_by_hand():
    labels = np.array([0, 0, 1, 1, 1, 2])
    correct = {
        "m": {1: np.array([True, False, True, True, True, True]), 2: np.array([True, True, False, True, True, False])}
    }
    per_class = explorer.analysis.stats.per_class_accuracy(correct, labels, num_classes=3)
    # digit 0: 1/2 and 2/2; digit 1: 3/3 and 2/3; digit 2: 1/1 and 0/1.
    assert per_class["m"] == pytest.approx([0.75, 5 / 6, 0.5])
    rows = explorer.analysis.stats.per_class_rows([{"name": "m"}, {"name": "absent"}], per_class)
    assert rows == [{"name": "m", "digit_0": 0.75, "digit_1": pytest.approx(5 / 6), "digit_2": 0.5}]
