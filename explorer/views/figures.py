"""Figures of a run, as pure functions: values in, a Matplotlib `Figure` out.

Figures are `matplotlib.figure.Figure` objects, never pyplot, so nothing opens a window and
nothing needs a display; `views.summarize` decides where they are saved.
"""

import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure  # Figure, not pyplot: headless, no global state
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from explorer.analysis.stats import FACTORS, cell_text
from explorer.config.defaults import NUM_CLASSES
from explorer.views.digits import image_grid
from explorer.views.marks import Style, configuration_styles, place_labels


def _mean_and_band(histories: Sequence[Mapping[str, Sequence[float]]], metric: str):
    """Per-epoch mean, min and max of `metric` over histories (over the epochs all of them ran)."""
    length = min(len(history[metric]) for history in histories)
    stacked = np.array([history[metric][:length] for history in histories], dtype=float)
    return np.arange(1, length + 1), stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)


def plot_history(
    history: Mapping[str, Sequence[float]] | Sequence[Mapping[str, Sequence[float]]],
    title: str = "",
    axes: Sequence | None = None,
) -> Figure:
    """Accuracy and loss per epoch, training against validation.

    Args:
        history: Keras' `History.history` (or `read_history`): accuracy, loss, val_accuracy,
            val_loss; or a list of them, one per repeat, drawn as the mean with a band from the
            lowest to the highest repeat.
        title: figure title, usually the model name.
        axes: two Matplotlib axes to draw into; a new figure when None.

    Returns:
        The figure holding the axes.
    """
    histories = [history] if isinstance(history, Mapping) else list(history)
    if axes is None:
        figure = Figure(figsize=(10, 4), layout="constrained")
        axes = figure.subplots(1, 2)
    figure = axes[0].get_figure()
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for key, label, color in ((metric, "training", "C0"), (f"val_{metric}", "validation", "C1")):
            epochs, mean, low, high = _mean_and_band(histories, key)
            suffix = f", mean of {len(histories)}" if len(histories) > 1 else ""
            ax.plot(epochs, mean, marker="o", markersize=3, color=color, label=f"{label} {metric}{suffix}")
            if len(histories) > 1:
                ax.fill_between(epochs, low, high, color=color, alpha=0.2, label=f"{label} range over repeats")
        ax.set(xlabel="epoch", ylabel=metric, title=metric.capitalize())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    return figure


def comparison_cost(rows: Sequence[Mapping]) -> tuple[str, str]:
    """The cost the comparison plots: seconds when every model trained alone, else (fused models
    share their group's seconds) the training FLOPs, which do not depend on the machine either; a
    model whose FLOPs are unknown is then left off that axis rather than put on it at a guess."""
    fused = any((row.get("fused_group_size") or 1) > 1 for row in rows)
    if fused and any(row.get("train_flops") for row in rows if row.get("test_accuracy") is not None):
        return "train_flops", "training FLOPs per run (log scale)"
    return "train_seconds", "training time per run, seconds"


def plot_comparison(
    rows: Sequence[Mapping], histories: Mapping[str, Sequence[Mapping[str, Sequence[float]]]]
) -> Figure:
    """Compare configurations: validation accuracy curves overlaid (the mean over repeats, with a
    band from the lowest to the highest), then test accuracy against parameter count and against
    training cost (`comparison_cost`), the mean with its 95% interval as an error bar when there
    are repeats, and the configurations on the Pareto front (`pareto`) ringed. Configurations are
    numbered in the order given (the leaderboard's); each has its own colour and marker
    (`marks.configuration_styles`), its points carry its number (placed apart, `marks.place_labels`)
    and the legend on the right its number and name.

    Args:
        rows: summary rows (`summary_rows`), in legend order.
        histories: configuration name -> the histories of its repeats (`read_history`).
    """
    figure = Figure(figsize=(19, 5.8), layout="constrained")
    curves_ax, params_ax, cost_ax = figure.subplots(1, 3)
    cost, cost_label = comparison_cost(rows)
    _scale_comparison_axes(curves_ax, params_ax, cost_ax, rows, cost_label)
    styles = configuration_styles(len(rows))
    labelled: dict[object, list] = {params_ax: [], cost_ax: []}
    for number, (row, style) in enumerate(zip(rows, styles, strict=True), start=1):
        if histories.get(row["name"]):
            _validation_curve(curves_ax, histories[row["name"]], style, f"{number}. {row['name']}")
        if row.get("test_accuracy") is None:  # diverged or failed: no test figures
            continue
        low, high = row["test_accuracy_ci_low"], row["test_accuracy_ci_high"]
        error = None if low is None else [[row["test_accuracy"] - low], [high - row["test_accuracy"]]]
        fronts = (row.get("pareto") or "").split("+")
        for ax, key, front in ((params_ax, "parameters", "parameters"), (cost_ax, cost, "flops")):
            if row.get(key) is None:  # a cost that is unknown stays off the axis, never a guess
                continue
            point = (row[key], row["test_accuracy"])
            ax.errorbar(*point, yerr=error, fmt=style.marker, color=style.color, capsize=3, zorder=3)
            labelled[ax].append((point, str(number)))
            if front in fronts and (key != "train_seconds"):
                ax.plot(*point, "o", markersize=15, markerfacecolor="none", markeredgecolor="black", zorder=4)
    # One legend for the three panels, from the styles: a configuration without curves is named too.
    handles = [Line2D([], [], color=style.color, marker=style.marker, linestyle=style.line_style) for style in styles]
    labels = [f"{number}. {row['name']}" for number, row in enumerate(rows, start=1)]
    figure.legend(handles, labels, loc="outside right upper", fontsize="small")
    place_labels(labelled)
    return figure


def _validation_curve(ax, histories: Sequence[Mapping], style: Style, label: str) -> None:
    """A configuration's mean validation accuracy per epoch, in its style, with the band from its
    lowest to its highest run."""
    epochs, mean, low, high = _mean_and_band(histories, "val_accuracy")
    ax.plot(epochs, mean, style.line_style, color=style.color, marker=style.marker,
            markevery=max(1, len(epochs) // 6), markersize=5, label=label)  # fmt: skip
    if len(histories) > 1:
        ax.fill_between(epochs, low, high, color=style.color, alpha=0.12)


def _scale_comparison_axes(curves_ax, params_ax, cost_ax, rows: Sequence[Mapping], cost_label: str) -> None:
    """Titles, labels and scales, set before the points so that their labels are placed on the
    final scales."""
    curves_ax.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy per epoch")
    curves_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves_ax.grid(alpha=0.3)
    params_ax.set(
        xscale="log",
        xlabel="trainable parameters (log scale)",
        title="Test accuracy vs parameters (ringed: Pareto front)",
    )
    cost_ax.set(xlabel=cost_label, title="Test accuracy vs training cost")
    if "FLOPs" in cost_label:
        cost_ax.set(xscale="log", title="Test accuracy vs training FLOPs (ringed: Pareto front)")
    for ax in (params_ax, cost_ax):
        ax.set_ylabel(
            "test accuracy" + (" (mean, 95% interval)" if any(r.get("test_accuracy_ci_low") for r in rows) else "")
        )
        ax.grid(alpha=0.3)


def confusion_matrix(true_labels: np.ndarray, predicted: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (true_labels.astype(int), predicted.astype(int)), 1)
    return counts


def plot_confusion_matrix(counts: np.ndarray, title: str = "") -> Figure:
    """A labelled heat map of a confusion matrix with the count in every cell."""
    figure = Figure(figsize=(7, 6), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, label="test digits")
    ticks = np.arange(len(counts))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted digit", ylabel="true digit", title=title)
    threshold = counts.max() / 2
    for (true, predicted), count in np.ndenumerate(counts):
        ax.text(
            predicted,
            true,
            str(count),
            ha="center",
            va="center",
            fontsize="small",
            color="white" if count > threshold else "black",
        )
    return figure


def plot_misclassified(
    images: np.ndarray, true_labels: np.ndarray, predicted: np.ndarray, title: str = "", limit: int = 40
) -> Figure:
    """A gallery of up to `limit` wrongly classified test digits, spread evenly over all the
    mistakes, each with its true and predicted label."""
    wrong = np.flatnonzero(true_labels != predicted)
    # Spread the picks over all mistakes, so one class early in the test set does not fill the page.
    wrong = wrong[np.unique(np.linspace(0, len(wrong) - 1, min(limit, len(wrong))).astype(int))]
    columns = 10
    rows = max(1, math.ceil(len(wrong) / columns))
    size = (columns * 1.2, rows * 1.45 + 0.6)
    figure = Figure(figsize=size)
    axes = image_grid(figure, rows, columns, size[1], title_lines=2)
    for ax, index in zip(axes, wrong, strict=False):
        ax.imshow(images[index], cmap="gray_r")
        ax.set_title(f"true {true_labels[index]}\npred {predicted[index]}", fontsize="small", color="firebrick")
    if len(wrong) == 0:
        axes[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    figure.suptitle(title)
    return figure


def plot_parallel_coordinates(rows: Sequence[Mapping]) -> Figure:
    """Configuration against mean test accuracy: one line per configuration across an axis per
    hyperparameter (categories spread evenly, numbers scaled to the axis), colored by accuracy."""
    # Width and depth are those of a dense stack; a model of other layers has neither.
    finished = [row for row in rows if row.get("test_accuracy") is not None and row.get("hidden_units") is not None]
    axes_spec = [
        ("width", lambda row: max(row["hidden_units"], default=0), "number"),
        ("depth", lambda row: len(row["hidden_units"]), "number"),
        ("activation", lambda row: cell_text(row["activation"]) or "none", "category"),
        ("output", lambda row: row["output_activation"], "category"),
        ("dropout", lambda row: row["dropout"], "number"),
        ("optimizer", lambda row: row["optimizer"], "category"),
        ("learning rate", lambda row: row["learning_rate"], "number"),
        ("batch size", lambda row: row["batch_size"], "number"),
        ("test accuracy", lambda row: row["test_accuracy"], "number"),
    ]
    figure = Figure(figsize=(13, 5.5), layout="constrained")
    ax = figure.subplots()
    if not finished:
        ax.text(0.5, 0.5, "no finished configurations", ha="center", va="center")
        return figure
    positions, labels = [], []
    for column, (_, value_of, kind) in enumerate(axes_spec):
        values = [value_of(row) for row in finished]
        if kind == "category":
            categories = sorted(set(values), key=str)
            spread = {value: (index + 0.5) / len(categories) for index, value in enumerate(categories)}
            positions.append([spread[value] for value in values])
            labels.append([(spread[value], str(value)) for value in categories])
        else:
            low, high = min(values), max(values)
            span = (high - low) or 1.0
            positions.append([(value - low) / span if high > low else 0.5 for value in values])
            ticks = sorted({low, high})
            labels.append([((value - low) / span if high > low else 0.5, f"{value:g}") for value in ticks])
        ax.axvline(column, color="0.6", linewidth=1)
        for y, text in labels[-1]:
            ax.text(column + 0.04, y, text, fontsize="x-small", va="center")
    accuracies = np.array([row["test_accuracy"] for row in finished])
    norm = matplotlib.colors.Normalize(
        accuracies.min(), accuracies.max() if accuracies.max() > accuracies.min() else accuracies.min() + 1e-9
    )
    cmap = matplotlib.colormaps["viridis"]
    for index, row in enumerate(finished):
        ax.plot(range(len(axes_spec)), [axis[index] for axis in positions], color=cmap(norm(row["test_accuracy"])),
                linewidth=1.5, alpha=0.85, label=row["name"])  # fmt: skip
    figure.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="mean test accuracy")
    ax.set(
        xticks=range(len(axes_spec)), xticklabels=[title for title, _, _ in axes_spec], yticks=[], ylim=(-0.05, 1.05)
    )
    ax.set_title("Configuration against test accuracy (one line per configuration)")
    for spine in ax.spines.values():
        spine.set_visible(False)
    return figure


FACTOR_TITLES = {
    "width": "Width (units of the widest hidden layer)", "depth": "Depth (hidden layers)",
    "activation": "Hidden activation", "output_activation": "Output activation", "dropout": "Dropout",
    "optimizer": "Optimizer", "learning_rate": "Learning rate", "batch_size": "Batch size", "epochs": "Epochs",
    "augment": "Augmentation", "batch_norm": "Batch normalization", "label_smoothing": "Label smoothing",
    "lr_schedule": "Learning-rate schedule", "weight_decay": "Weight decay", "max_norm": "Max-norm",
    "early_stopping": "Early stopping (patience)",
}  # fmt: skip


LOG_FACTORS = ("width", "learning_rate", "batch_size")


def plot_factors(groups: Mapping[str, Sequence[Mapping]], reference: str) -> Figure:
    """One panel per factor group (`stats.factor_groups`), and no empty panels: the field's values
    across, mean test accuracy up with each configuration's paired 95% interval against the
    reference (the reference itself has none; a configuration compared on one seed has none
    either and is drawn hollow). Numeric values are joined by a line; categories (activations,
    optimizers) are points only, since their order means nothing. The cost, FLOPs per epoch, gets a
    second axis only where it varies across the panel."""
    columns = max(1, min(3, len(groups)))
    rows = max(1, math.ceil(len(groups) / columns))
    figure = Figure(figsize=(6 * columns, 4.4 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax in axes[max(1, len(groups)) :]:
        ax.remove()
    if not groups:
        axes[0].text(0.5, 0.5, f"no configuration differs from {reference} in exactly one field", ha="center")
        axes[0].axis("off")
        return figure
    for ax, (field, members) in zip(axes, groups.items(), strict=False):
        _factor_panel(ax, field, members, reference)
    hollow = any(row.get("vs_reference_ci_low") is None and row["name"] != reference
                 for members in groups.values() for row in members)  # fmt: skip
    note = "; hollow: no interval (one shared run)" if hollow else ""
    figure.suptitle(f"One factor at a time, against {reference} (black){note}")
    return figure


def _factor_panel(ax, field: str, members: Sequence[Mapping], reference: str) -> None:
    """One factor's panel: accuracy with paired intervals, and the cost where it varies."""
    values = [FACTORS[field](row) for row in members]
    numeric = all(isinstance(value, (int, float)) for value in values)
    positions = values if numeric else list(range(len(values)))
    for position, row in zip(positions, members, strict=True):
        low, high = row.get("vs_reference_ci_low"), row.get("vs_reference_ci_high")
        shift = row["test_accuracy"] - (row.get("vs_reference_difference") or 0.0)
        accuracy = row["test_accuracy"]
        error = None if low is None else [[accuracy - (shift + low)], [(shift + high) - accuracy]]
        color = "black" if row["name"] == reference else "C0"
        hollow = low is None and row["name"] != reference
        ax.errorbar(position, accuracy, yerr=error, fmt="o", color=color, capsize=3, zorder=3,
                    markerfacecolor="white" if hollow else color)  # fmt: skip
    if numeric:
        ax.plot(positions, [row["test_accuracy"] for row in members], color="C0", alpha=0.4)
    else:
        ax.set_xlim(-0.5, len(values) - 0.5)
    costs = [row.get("flops_per_epoch") for row in members]
    if all(costs) and len(set(costs)) > 1:
        cost_ax = ax.twinx()
        cost_ax.plot(positions, costs, "s--" if numeric else "s", color="C3", alpha=0.6)
        cost_ax.set_ylabel("GFLOP per epoch", color="C3")
        cost_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1e9:g}"))
    elif all(costs):  # a flat line on an axis of its own would only show the tick labels' noise
        ax.text(0.98, 0.03, f"the same cost throughout: {costs[0] / 1e9:.3g} GFLOP per epoch", ha="right",
                transform=ax.transAxes, fontsize="small", color="C3")  # fmt: skip
    if numeric and field in LOG_FACTORS and min(values) > 0:
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(positions, [f"{value:g}" if numeric else str(value) for value in values])
    ax.set(title=FACTOR_TITLES[field], ylabel="test accuracy (paired 95% interval)")
    ax.grid(alpha=0.3)


def plot_per_class(rows: Sequence[Mapping], per_class: Mapping[str, Sequence[float]]) -> Figure:
    """Configurations (leaderboard order) against digits: accuracy on each digit's test images,
    the mean over the configuration's runs, as a labelled heat map."""
    names = [row["name"] for row in rows if row["name"] in per_class]
    values = np.array([per_class[name] for name in names]) if names else np.zeros((0, NUM_CLASSES))
    figure = Figure(figsize=(11, 1.2 + 0.38 * max(1, len(names))), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    figure.colorbar(image, ax=ax, label="test accuracy on the digit")
    ax.set(xticks=range(NUM_CLASSES), yticks=range(len(names)), yticklabels=names, xlabel="true digit")
    ax.set_title("Accuracy per digit (mean over runs)")
    for (row, digit), value in np.ndenumerate(values):
        ax.text(digit, row, f"{value:.3f}", ha="center", va="center", fontsize="x-small",
                color="white" if value < values.mean() else "black")  # fmt: skip
    return figure


# A verdict's mark on the forest plot: (marker, colour, filled, legend label); identical: not detected.
FOREST_MARKS = {
    "better": ("^", "tab:green", True, "better"),
    "worse": ("v", "tab:red", True, "worse"),
    "not detected": ("o", "0.45", False, "not detected"),
}


def plot_forest(numbers: Sequence[Mapping], reference: str) -> Figure:
    """Every comparison with the reference (`findings.number_rows`, top down) at a glance: its
    difference in test accuracy in points as a mark (filled ▲ better, ▼ worse, hollow ○ not
    detected) on its 95% interval's line (none with one run: McNemar's test has no interval),
    grouped under each factor's name, a line at zero."""
    marked = {"identical": "not detected"}
    shown = [{**row, "verdict": marked.get(row["verdict"], row["verdict"])} for row in numbers]
    shown = [row for row in shown if row["difference_points"] is not None and row["verdict"] in FOREST_MARKS]
    groups = list(dict.fromkeys(row["group"] for row in shown))
    widest = max((len(row["label"]) for row in shown), default=0)  # the labels take their room from the axes
    size = (min(12, 4.8 + 0.065 * widest), 1.3 + 0.22 * (len(shown) + len(groups)))
    figure = Figure(figsize=size, layout="constrained")
    ax = figure.subplots()
    if not shown:
        ax.text(0.5, 0.5, f"nothing was compared with {reference}", ha="center", va="center")
        return figure
    at, y = {}, 0
    for group in groups:  # the group's name on a line of its own, then its members
        ax.text(0.01, y, group, transform=ax.get_yaxis_transform(), fontweight="bold", va="center")
        for row in (row for row in shown if row["group"] == group):
            y += 1
            at[id(row)] = y
        y += 1.3
    ranged = [row for row in shown if row["ci_low_points"] is not None]
    if ranged:
        ax.hlines([at[id(row)] for row in ranged], [row["ci_low_points"] for row in ranged],
                  [row["ci_high_points"] for row in ranged], colors=[FOREST_MARKS[row["verdict"]][1] for row in ranged],
                  linewidth=1.5, alpha=0.7)  # fmt: skip
    for verdict, (marker, color, filled, label) in FOREST_MARKS.items():
        drawn = [row for row in shown if row["verdict"] == verdict]
        if drawn:
            ax.plot([row["difference_points"] for row in drawn], [at[id(row)] for row in drawn], marker,
                    linestyle="none", color=color, markerfacecolor=color if filled else "none", label=label)  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks([at[id(row)] for row in shown], [row["label"] for row in shown], fontsize="small")
    ax.set_ylim(y - 0.3, -1)  # top down
    interval = "95% interval" if ranged else "one run each: no interval"
    ax.set(title=f"Against the reference, {reference}", xlabel=f"difference in test accuracy, points ({interval})")
    ax.grid(axis="x", alpha=0.3)
    figure.legend(loc="outside upper center", ncols=3, fontsize="small", frameon=False)
    return figure
