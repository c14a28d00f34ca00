"""Statistics of a run: per-configuration summaries over repeats, ranked, and tables as CSV.

Pure functions of result records: each returns rows or text; the sweep decides where they go.
"""

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import scipy.stats

from explorer.analysis.comparisons import SweepComparisons, compare_configurations
from explorer.config.checks import is_int
from explorer.config.defaults import CONFIDENCE

SUMMARY_COLUMNS = (
    "rank", "name", "status", "vs_best", "vs_reference", "repeats",
    "test_accuracy", "test_accuracy_std", "test_accuracy_ci_low", "test_accuracy_ci_high",
    "test_loss", "test_loss_std", "test_loss_ci_low", "test_loss_ci_high",
    "vs_best_difference", "vs_best_ci_low", "vs_best_ci_high", "vs_best_p", "vs_best_test", "vs_best_runs",
    "vs_reference_difference", "vs_reference_ci_low", "vs_reference_ci_high", "vs_reference_p", "vs_reference_test",
    "vs_reference_runs",
    "vs_reference_detectable", "vs_reference_runs_needed",
    "val_accuracy", "val_loss", "parameters", "flops_per_epoch", "train_flops", "pareto",
    "train_seconds", "seconds_per_epoch", "fused_group_size", "fused_group", "epochs_run",
    "hidden_units", "activation", "dropout", "output_activation", "loss_function", "optimizer",
    "learning_rate", "batch_size", "epochs", "augment", "batch_norm", "label_smoothing", "lr_schedule",
    "weight_decay", "max_norm", "early_stopping", "seeds", "backend", "reason",
)  # fmt: skip


REPEAT_COLUMNS = (
    "name", "repeat", "seed", "trial", "status", "test_accuracy", "test_loss", "val_accuracy", "val_loss",
    "train_seconds", "epochs_run", "resumed_from_epoch", "reason",
)  # fmt: skip


# "stopped early": Ray Tune's ASHA scheduler ended a weak configuration before its last epoch.
STATUS_ORDER = {"ok": 0, "stopped early": 1, "diverged": 2, "failed": 3}


def aggregate(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, float | int | None]:
    """Mean, sample standard deviation and a t-interval for the mean of `values`.

    Returns:
        `n`, `mean`, `std` (ddof=1) and `ci_low`/`ci_high`, the `confidence` t-interval over the
        repeats (`scipy.stats.t.interval`); spread and interval are None below two values.
    """
    array = np.asarray(values, dtype=float)
    summary: dict[str, float | int | None] = {"n": len(array), "mean": float(array.mean()) if len(array) else None}
    summary.update(std=None, ci_low=None, ci_high=None)
    if len(array) >= 2:
        std = float(array.std(ddof=1))
        low, high = (
            scipy.stats.t.interval(confidence, len(array) - 1, loc=array.mean(), scale=scipy.stats.sem(array))
            if std > 0
            else (array.mean(), array.mean())  # identical repeats: SciPy needs a positive scale
        )
        summary.update(std=std, ci_low=float(low), ci_high=float(high))
    return summary


def _configuration_row(name: str, group: Sequence[Mapping]) -> dict[str, object]:
    """One configuration's row: its repeats' figures aggregated, its fields from the first run."""
    group = sorted(group, key=lambda result: result.get("repeat", 0))
    finished = [result for result in group if result["status"] == "ok"]
    first = (finished or group)[0]
    config = first["config"]
    row: dict[str, object] = {
        "name": name,
        "status": "ok" if finished else max((r["status"] for r in group), key=STATUS_ORDER.get),
        "repeats": len(finished) if finished else len(group),
        "seeds": [result.get("seed") for result in group],
        "backend": first.get("versions", {}).get("backend"),
        "loss_function": first.get("loss_function"),
        "parameters": first.get("parameters"),
        "flops_per_epoch": first.get("flops_per_epoch"),
        "epochs_run": first.get("epochs_run"),
        "fused_group_size": first.get("fused_group_size", 1),
        "fused_group": first.get("fused_group"),  # its first run's group: the same members on every seed
        "reason": "; ".join(r["reason"] for r in group if r.get("reason")) or None,
        **{key: config[key] for key in SUMMARY_COLUMNS if key in config},
    }
    for metric in ("test_accuracy", "test_loss"):
        stats = aggregate([result[metric] for result in finished])
        row.update({metric: stats["mean"], **{f"{metric}_{key}": stats[key] for key in ("std", "ci_low", "ci_high")}})
    for metric in ("val_accuracy", "val_loss", "train_seconds", "seconds_per_epoch", "train_flops"):
        values = [result[metric] for result in finished if result.get(metric) is not None]
        row[metric] = aggregate(values)["mean"] if values else None
    return row


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (cost, accuracy) point, whether no other point is at least as cheap and at least
    as accurate, and strictly better in one of the two: the configurations worth their cost."""
    return [
        not any(
            other_cost <= cost and other_accuracy >= accuracy and (other_cost, other_accuracy) != (cost, accuracy)
            for other_cost, other_accuracy in points
        )
        for cost, accuracy in points
    ]


def _mark_pareto(rows: Sequence[dict]) -> None:
    """`pareto`: the costs (parameters, FLOPs per epoch) against which a finished configuration's
    mean test accuracy is on the Pareto front, e.g. "parameters+flops"; None when on neither."""
    finished = [row for row in rows if row["status"] == "ok"]
    fronts = {}
    for cost in ("parameters", "flops_per_epoch"):
        measured = [row for row in finished if row.get(cost) is not None]
        on_front = pareto_front([(row[cost], row["test_accuracy"]) for row in measured])
        fronts[cost] = {id(row) for row, front in zip(measured, on_front, strict=True) if front}
    for row in rows:
        marks = [
            label
            for cost, label in (("parameters", "parameters"), ("flops_per_epoch", "flops"))
            if id(row) in fronts[cost]
        ]
        row["pareto"] = "+".join(marks) or None


def _mark_comparisons(
    rows: Sequence[dict],
    results: Sequence[Mapping],
    correct: Mapping[str, Mapping[int, np.ndarray]],
    reference: str | None,
) -> SweepComparisons:
    """`vs_best` and `vs_reference`: each finished configuration's verdict against the best (by mean
    validation accuracy) and the reference, with the estimated difference in mean test accuracy,
    its 95% interval, the test that gave them, its runs and its Holm-corrected p-value; against the
    reference also the smallest difference the sweep could detect and, when none was detected,
    about how many runs would detect the one seen (`comparisons.compare_configurations`)."""
    finished = {row["name"] for row in rows if row["status"] == "ok"}
    test_accuracy: dict[str, dict[int, float]] = {row["name"]: {} for row in rows if row["name"] in finished}
    validation_accuracy: dict[str, dict[int, float]] = {name: {} for name in test_accuracy}
    for result in results:
        if result["name"] in finished and result["status"] == "ok":
            test_accuracy[result["name"]][result["seed"]] = result["test_accuracy"]
            if result.get("val_accuracy") is not None:
                validation_accuracy[result["name"]][result["seed"]] = result["val_accuracy"]
    found = compare_configurations(test_accuracy, validation_accuracy, reference, correct)
    by_name = {row["name"]: row for row in rows}
    for role, anchor in (("best", found.best), ("reference", found.reference)):
        if anchor is not None:
            by_name[anchor][f"vs_{role}"] = role
        for name, comparison in found.against(role).items():
            row = by_name[name]
            row[f"vs_{role}"] = comparison.verdict
            for key in ("difference", "ci_low", "ci_high", "test"):
                row[f"vs_{role}_{key}"] = getattr(comparison, key)
            row[f"vs_{role}_p"], row[f"vs_{role}_runs"] = comparison.corrected_p, comparison.seeds
            if role == "reference":
                row["vs_reference_detectable"] = comparison.detectable
                row["vs_reference_runs_needed"] = comparison.runs_needed
    return found


def summary_rows(
    results: Iterable[Mapping],
    correct: Mapping[str, Mapping[int, np.ndarray]] | None = None,
    reference: str | None = None,
) -> list[dict]:
    """One row per configuration, aggregated over its repeats, ranked best first.

    Finished configurations come first, by mean test accuracy (among equals the smaller network
    first), then diverged and failed ones. `pareto` marks the configurations on the front of
    accuracy against cost (`_mark_pareto`).

    Args:
        results: the trials' result records.
        correct: configuration -> seed -> which test digits that run got right: McNemar's test
            needs them when two configurations share one run (`_mark_comparisons`).
        reference: the configuration the others are compared with.
    """
    results = list(results)
    groups: dict[str, list[Mapping]] = {}
    for result in results:
        groups.setdefault(result["name"], []).append(result)
    rows = [_configuration_row(name, group) for name, group in groups.items()]
    rows.sort(
        key=lambda row: (
            STATUS_ORDER[row["status"]],
            -(row["test_accuracy"] or 0.0),
            row["parameters"] or 0,
            row["name"],
        )
    )
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    _mark_comparisons(rows, results, correct or {}, reference)
    _mark_pareto(rows)
    return [{column: row.get(column) for column in SUMMARY_COLUMNS} for row in rows]


def repeat_rows(results: Iterable[Mapping]) -> list[dict]:
    """One row per trial (configuration, seed), in configuration and repeat order."""
    ordered = sorted(results, key=lambda result: (result["name"], result.get("repeat", 0)))
    return [{column: result.get(column) for column in REPEAT_COLUMNS} for result in ordered]


def cell_text(value: object) -> object:
    if isinstance(value, (list, tuple)):
        separator = "x" if all(is_int(item) for item in value) else "/"
        return separator.join(map(str, value)) or "-"
    return value


def table_csv(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    """Rows as CSV text; lists are written as `512x512` and `relu/tanh`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: cell_text(value) for key, value in row.items()})
    return buffer.getvalue()


# The fields a factor group varies, as read from a summary row: a dense stack's width (its widest
# layer) and depth stand for its hidden_units; the loss follows the output activation.
FACTORS = {
    "width": lambda row: max(row["hidden_units"], default=0) if row.get("hidden_units") is not None else None,
    "depth": lambda row: len(row["hidden_units"]) if row.get("hidden_units") is not None else None,
    "activation": lambda row: cell_text(row.get("activation")),
    "output_activation": lambda row: row.get("output_activation"),
    "dropout": lambda row: cell_text(row.get("dropout")),
    "optimizer": lambda row: row.get("optimizer"),
    "learning_rate": lambda row: row.get("learning_rate"),
    "batch_size": lambda row: row.get("batch_size"),
    "epochs": lambda row: row.get("epochs", row.get("epochs_run")),  # as configured: early stopping may run fewer
    # The techniques (`config.techniques`); results written before them have none, and agree.
    **{
        technique: lambda row, technique=technique: row.get(technique)
        for technique in (
            "augment",
            "batch_norm",
            "label_smoothing",
            "lr_schedule",
            "weight_decay",
            "max_norm",
            "early_stopping",
        )
    },
}


def factor_groups(rows: Sequence[Mapping], reference: str | None) -> dict[str, list[Mapping]]:
    """The one-factor groups of a sweep: for each field, the finished configurations that differ
    from the reference in that field alone, with the reference itself, ordered by the field's value.
    Configurations that differ in two fields or more belong to no group."""
    finished = [row for row in rows if row["status"] == "ok"]
    anchor = next((row for row in finished if row["name"] == reference), None)
    if anchor is None:
        return {}
    anchor_values = {field: value_of(anchor) for field, value_of in FACTORS.items()}
    groups: dict[str, list[Mapping]] = {}
    for row in finished:
        differing = [field for field, value_of in FACTORS.items() if value_of(row) != anchor_values[field]]
        if len(differing) == 1:
            groups.setdefault(differing[0], [anchor]).append(row)
    return {
        field: sorted(members, key=lambda row, field=field: (str(type(FACTORS[field](row))), FACTORS[field](row)))
        for field, members in groups.items()
    }


def per_class_accuracy(
    correct: Mapping[str, Mapping[int, np.ndarray]], labels: np.ndarray, num_classes: int = 10
) -> dict[str, list[float]]:
    """Configuration -> accuracy on each digit's test images, the mean over its runs."""
    labels = np.asarray(labels)
    return {
        name: [float(np.mean([np.mean(run[labels == digit]) for run in runs.values()])) for digit in range(num_classes)]
        for name, runs in correct.items()
    }


def per_class_rows(rows: Sequence[Mapping], per_class: Mapping[str, Sequence[float]]) -> list[dict]:
    """`per_class.csv`'s rows: a configuration and its accuracy on each digit, in leaderboard order."""
    return [
        {"name": row["name"], **{f"digit_{digit}": value for digit, value in enumerate(per_class[row["name"]])}}
        for row in rows
        if row["name"] in per_class
    ]
