"""The comparison, factor and forest figures read at a glance: a colour and marker per configuration,
labels apart, categories as points, a cost axis only where the cost varies, no empty panels, and
every comparison with the reference as one mark under its factor."""

import itertools

import matplotlib.colors
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from explorer.views.figures import FOREST_MARKS, plot_comparison, plot_factors, plot_forest
from explorer.views.marks import configuration_styles, place_labels


def _row(number, **fields):
    base = {
        "name": f"net_{number}", "status": "ok", "test_accuracy": 0.95 + number / 1000,
        "test_accuracy_ci_low": None, "test_accuracy_ci_high": None, "parameters": 100_000 + number,
        "train_seconds": 10.0, "train_flops": 1e12 + number * 1e9, "fused_group_size": 13, "pareto": None,
        "hidden_units": [128], "activation": "relu", "output_activation": "softmax", "dropout": 0.0,
        "optimizer": "adam", "learning_rate": 0.001, "batch_size": 128, "epochs_run": 20,
        "flops_per_epoch": 3.4e10, "vs_reference_ci_low": -0.01, "vs_reference_ci_high": 0.01,
        "vs_reference_difference": 0.0,
    }  # fmt: skip
    return {**base, **fields}


@pytest.mark.parametrize("count", [13, 20, 25])
def test_every_configuration_has_its_own_colour_and_marker(count):
    styles = configuration_styles(count)
    assert len({style.color for style in styles}) == count
    assert len({(style.marker, style.line_style) for style in styles}) == count


def _label_boxes(figure, ax):
    FigureCanvasAgg(figure).draw()
    renderer = figure.canvas.get_renderer()
    return [Text.get_window_extent(text, renderer) for text in ax.texts]  # the text, without its leader line


def test_labels_of_points_piled_on_one_spot_do_not_overlap():
    figure = Figure(figsize=(6, 5), layout="constrained")
    ax = figure.subplots()
    points = [(1e5 * (1 + index / 200), 0.97 + index / 10_000) for index in range(8)]  # 8 points in one spot
    ax.set_xscale("log")
    ax.plot(*zip(*points, strict=True), "o")
    ax.plot([1e3, 1e7], [0.90, 0.99], "o")  # the axes' extent, so the cluster is small on it
    place_labels({ax: [(point, str(number)) for number, point in enumerate(points, start=1)]})
    boxes = _label_boxes(figure, ax)
    assert len(boxes) == 8
    overlapping = [(a, b) for a, b in itertools.combinations(range(8), 2) if boxes[a].overlaps(boxes[b])]
    assert overlapping == []


def test_comparison_gives_thirteen_configurations_thirteen_colours_and_a_legend_on_the_right():
    rows = [_row(number) for number in range(1, 14)]
    histories = {row["name"]: [{"val_accuracy": [0.9, 0.95]}] for row in rows}
    figure = plot_comparison(rows, histories)
    _, params_ax, cost_ax = figure.axes
    colours = {matplotlib.colors.to_hex(line.get_color()) for line in params_ax.lines if line.get_marker() != "o"
               or line.get_markerfacecolor() != "none"}  # fmt: skip
    assert len(colours) == 13
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()][12] == "13. net_13"
    assert sorted(text.get_text() for text in cost_ax.texts) == sorted(str(number) for number in range(1, 14))


def test_a_model_of_unknown_flops_stays_off_the_cost_axis():
    rows = [_row(1), _row(2), _row(3, train_flops=None)]
    figure = plot_comparison(rows, {})
    _, params_ax, cost_ax = figure.axes
    assert sorted(text.get_text() for text in params_ax.texts) == ["1", "2", "3"]
    assert sorted(text.get_text() for text in cost_ax.texts) == ["1", "2"]
    (legend,) = figure.legends  # named in the legend all the same, with no curves to draw
    assert [text.get_text() for text in legend.get_texts()] == ["1. net_1", "2. net_2", "3. net_3"]


def test_categories_are_points_and_a_flat_cost_gets_no_axis():
    members = [_row(1, name="ref"), _row(2, activation="tanh"), _row(3, activation="gelu")]
    figure = plot_factors({"activation": members}, "ref")
    (ax,) = figure.axes  # one panel, no twin axis for a cost that does not change
    joined = [line for line in ax.lines if len(line.get_xdata()) > 1]
    assert joined == []  # no line joins gelu, relu and tanh as if they were ordered
    assert any("the same cost throughout: 34 GFLOP" in text.get_text() for text in ax.texts)


def test_a_varying_cost_gets_its_axis_and_numbers_are_joined():
    members = [_row(1, hidden_units=[32], flops_per_epoch=1e10), _row(2, name="ref"),
               _row(3, hidden_units=[512], flops_per_epoch=1.4e11)]  # fmt: skip
    figure = plot_factors({"width": members}, "ref")
    ax, cost_ax = figure.axes
    assert cost_ax.get_ylabel() == "GFLOP per epoch"
    assert any(list(line.get_xdata()) == [32, 128, 512] for line in ax.lines)


def test_no_empty_panels_and_a_run_without_interval_is_hollow():
    groups = {
        "width": [_row(1, name="ref"), _row(2, hidden_units=[512], flops_per_epoch=1.4e11)],
        "activation": [_row(1, name="ref"), _row(3, activation="tanh", vs_reference_ci_low=None)],
        "dropout": [_row(1, name="ref"), _row(4, dropout=0.2)],
        "learning_rate": [_row(1, name="ref"), _row(5, learning_rate=0.01)],
    }
    figure = plot_factors(groups, "ref")
    titled = [ax for ax in figure.axes if ax.get_title()]
    assert len(titled) == 4 and all(ax.axison for ax in figure.axes)  # 3 + 1 panels, the two blanks removed
    assert "hollow: no interval" in figure.get_suptitle()
    activation_ax = next(ax for ax in titled if ax.get_title() == "Hidden activation")
    faces = [matplotlib.colors.to_hex(line.get_markerfacecolor()) for line in activation_ax.lines]
    assert "#ffffff" in faces


def _number(group, label, verdict, difference, interval=0.4):
    """A comparison's row as `findings.number_rows` gives it (points); no interval with one run."""
    low, high = (None, None) if interval is None else (difference - interval, difference + interval)
    return {"group": group, "label": label, "configuration": label, "verdict": verdict,
            "difference_points": difference, "ci_low_points": low, "ci_high_points": high}  # fmt: skip


NUMBERS = [
    _number("Width", "32 units", "worse", -1.01), _number("Width", "64 units", "worse", -0.37),
    _number("Width", "256 units", "better", 0.27), _number("Width", "512 units", "not detected", 0.10),
    _number("Hidden activation", "sigmoid", "identical", 0.0, interval=0.0),
    _number("Other (several fields)", "trial_49 (373-373 relu, dropout 0.16, adam 0.00082)", "better", 0.8),
]  # fmt: skip


def _marks(ax):
    """(x, y, marker, filled) of every mark drawn, lines without markers left out."""
    return [(x, y, line.get_marker(), line.get_markerfacecolor() != "none")
            for line in ax.lines if line.get_marker() not in ("None", "", None)
            for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]  # fmt: skip


def test_the_forest_has_one_mark_per_comparison_under_its_factor():
    figure = plot_forest(NUMBERS, "dense_128_relu")
    [ax] = figure.axes
    marks = _marks(ax)
    assert len(marks) == len(NUMBERS)
    assert [label.get_text() for label in ax.get_yticklabels()] == [row["label"] for row in NUMBERS]
    by_label = dict(zip([label.get_text() for label in ax.get_yticklabels()], ax.get_yticks(), strict=True))
    at = {y: (x, marker, filled) for x, y, marker, filled in marks}
    assert at[by_label["32 units"]] == (-1.01, "v", True) and at[by_label["256 units"]] == (0.27, "^", True)
    assert at[by_label["512 units"]] == (0.10, "o", False) and at[by_label["sigmoid"]] == (0.0, "o", False)
    # The factors' names head their groups, top down; a line at zero; an interval line for each.
    headings = [text.get_text() for text in ax.texts]
    assert headings == ["Width", "Hidden activation", "Other (several fields)"]
    assert any(list(line.get_xdata()) == [0, 0] for line in ax.lines)
    [intervals] = ax.collections
    assert len(intervals.get_segments()) == len(NUMBERS)
    assert ax.yaxis_inverted() and ax.get_title() == "Against the reference, dense_128_relu"
    assert {text.get_text() for text in figure.legends[0].get_texts()} == {label for *_, label in FOREST_MARKS.values()}


def test_with_one_run_the_forest_has_marks_without_intervals():
    one_run = [
        {**_number(row["group"], row["label"], row["verdict"], row["difference_points"], None)} for row in NUMBERS
    ]
    [ax] = plot_forest(one_run, "ref").axes
    assert len(_marks(ax)) == len(NUMBERS) and not ax.collections
    assert "no interval" in ax.get_xlabel()
