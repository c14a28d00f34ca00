"""The views of a run folder, written into it: summaries, figures, TensorBoard and the report.

Everything is read from the run folder, so a killed run, a Ray worker elsewhere and a resumed run
end in the same place.
"""

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from explorer.analysis.findings import as_record, find, find_search
from explorer.analysis.stats import (
    REPEAT_COLUMNS,
    SUMMARY_COLUMNS,
    factor_groups,
    per_class_accuracy,
    per_class_rows,
    repeat_rows,
    summary_rows,
    table_csv,
)
from explorer.config.defaults import FIRST_LAYER_UNITS
from explorer.data.prepare import PreparedData
from explorer.models.backend import TENSORFLOW_IMPORT_NOISE, native_stderr_filtered
from explorer.store.files import read_json, save_figure, write_json_atomic, write_text_atomic
from explorer.store.folders import TENSORBOARD_FOLDER
from explorer.store.resume import sound_results
from explorer.store.schema import read_history, read_results
from explorer.store.study import SearchRecord, read_search
from explorer.store.trial_folder import first_layer_epochs
from explorer.views.digits import first_layer_kernel, plot_discordant, plot_first_layer, plot_first_layer_progress
from explorer.views.drawing import PanelInputs, best_runs, drawing_panel
from explorer.views.figures import (
    confusion_matrix,
    plot_comparison,
    plot_confusion_matrix,
    plot_factors,
    plot_forest,
    plot_history,
    plot_misclassified,
    plot_parallel_coordinates,
    plot_per_class,
)
from explorer.views.findings import finding_sentences, number_rows
from explorer.views.report import FOREST, REPORT_FIGURES, SEARCH_FIGURES, ReportParts, SearchPart, render_report
from explorer.views.search_figures import search_history_figure, search_importances_figure, top_candidates
from explorer.views.search_findings import search_sentences
from explorer.views.tables import candidate_networks
from explorer.views.tensorboard import write_tensorboard_hparams

PER_CLASS_COLUMNS = ("name", *(f"digit_{digit}" for digit in range(10)))
Save = Callable[[Figure, Path], None]  # writes a figure into the run folder (and keeps it)


@dataclasses.dataclass(frozen=True)
class Views:
    """What `build_views` made: the summary rows, best first, and the figures it wrote."""

    rows: list[dict]
    figures: dict[str, Figure]
    findings: tuple[str, ...] = ()  # what the sweep found, in sentences (`views.findings`)


def trial_folder(run_dir: Path, result: Mapping) -> Path:
    """Where a result's files are: its trial's folder, or the `folder` it names (`--compare`)."""
    return Path(result["folder"]) if "folder" in result else run_dir / result.get("trial", result["name"])


def correct_answers(
    run_dir: Path, results: Sequence[Mapping], test_labels: np.ndarray
) -> dict[str, dict[int, np.ndarray]]:
    """Configuration -> seed -> which test digits each finished run got right (`test_predictions.npy`)."""
    correct: dict[str, dict[int, np.ndarray]] = {}
    for result in results:
        path = trial_folder(run_dir, result) / "test_predictions.npy"
        if result["status"] != "ok" or not path.is_file():
            continue
        try:
            predicted = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            continue
        if predicted.shape == test_labels.shape:
            correct.setdefault(result["name"], {})[result["seed"]] = predicted == test_labels
    return correct


def build_views(
    run_dir: Path, data: PreparedData, reference: str | None = None, results: Sequence[Mapping] | None = None
) -> Views:
    """Write the sweep's summaries and figures from what is on disk in `run_dir`.

    Writes `summary.csv` and `summary.json` (one row per configuration), `findings.json` (what
    the sweep found, as data, as sentences and as the numbers behind them: `analysis.findings`,
    `views.findings`), `forest.png` (every comparison with the reference), `repeats.csv` (one row
    per trial), `comparison.png`, `parallel_coordinates.png`, `curves/<name>.png` for
    configurations with several repeats (mean and band), for the best configuration by mean
    *validation* accuracy (the test set is not used to choose) its first repeat's
    `confusion_matrix.png` and `misclassified.png`, the TensorBoard HParams summaries when the run
    logs to TensorBoard, `per_class.csv` and `per_class.png` (accuracy per digit), `factors.png`
    (one panel per factor varied alone), the best configuration's `first_layer.png` and, against
    the reference, `discordant.png`, and last `report.html`, which shows all of it and computes
    each configuration's best network by validation on a digit drawn in it (`views.drawing`).
    After a search (the folder holds `study.db`), also `search_history.png` and
    `search_importances.png`, the search's findings first, and the report's "Search" section.

    Every finished configuration is compared with `reference` and with the best (see
    `stats.summary_rows`). `results` replaces the run folder's own (`--compare` gathers several).

    Returns:
        The summary rows, best first, every figure written, by its path in the run folder
        without ".png" ("comparison", "curves/dense_128_relu", ...), and the findings' sentences.
    """
    kept = read_results(run_dir) if results is None else results  # only what resume keeps is drawn:
    results = sound_results(kept, functools.partial(trial_folder, run_dir), len(data.test_labels))
    if not results:
        return Views([], {})
    figures: dict[str, Figure] = {}

    def save(figure: Figure, path: Path) -> None:
        save_figure(figure, path)
        figures[path.relative_to(run_dir).with_suffix("").as_posix()] = figure

    correct = correct_answers(run_dir, results, data.test_labels)
    rows = summary_rows(results, correct, reference)
    write_text_atomic(run_dir / "summary.csv", table_csv(rows, SUMMARY_COLUMNS))
    write_json_atomic(run_dir / "summary.json", rows)
    search = read_search(run_dir)
    written = _write_findings(run_dir, rows, reference, search)
    _write_forest(run_dir, written.numbers, reference, save)
    _write_search_views(run_dir, rows, search, save)
    write_text_atomic(run_dir / "repeats.csv", table_csv(repeat_rows(results), REPEAT_COLUMNS))
    _write_curves(run_dir, rows, results, save)
    save(plot_parallel_coordinates(rows), run_dir / "parallel_coordinates.png")
    _write_answer_views(run_dir, rows, per_class_accuracy(correct, data.test_labels), reference, save)
    if (run_dir / TENSORBOARD_FOLDER).is_dir():  # the run was started with --tensorboard
        with native_stderr_filtered(TENSORFLOW_IMPORT_NOISE):
            write_tensorboard_hparams(run_dir / TENSORBOARD_FOLDER, results)

    best = next((row for row in rows if row["vs_best"] == "best"), None)  # by mean validation accuracy
    if best is not None:
        _write_best_model_views(run_dir, data, results, best, save)
    _write_inside_views(run_dir, data, results, best, reference if reference in correct else None, save)
    searched = _search_part(run_dir, rows, search, written.search_sentences)
    write_text_atomic(run_dir / "report.html", _report(run_dir, rows, results, written, data, searched))
    return Views(rows, figures, written.sentences)


@dataclasses.dataclass(frozen=True)
class WrittenFindings:
    """All the findings' sentences (a search's first), the search's alone, and the numbers behind them."""

    sentences: tuple[str, ...]
    search_sentences: tuple[str, ...]
    numbers: list[dict]


def _write_findings(
    run_dir: Path, rows: Sequence[Mapping], reference: str | None, search: SearchRecord | None
) -> WrittenFindings:
    """`findings.json`: the findings as data (a search's under "search"), as sentences, the
    search's first, and the numbers behind them ("numbers": one row per comparison with the
    reference, in points). A search candidate is named with its network."""
    findings = find(rows, reference)
    networks = candidate_networks(rows)
    searched = find_search(search, rows) if search is not None else None
    search_lines = tuple(search_sentences(searched, networks)) if searched is not None else ()
    sentences = search_lines + tuple(finding_sentences(findings, networks))
    numbers = number_rows(findings, networks)
    extra = {"search": as_record(searched)} if searched is not None else {}
    record = {**as_record(findings), **extra, "sentences": list(sentences), "numbers": numbers}
    write_json_atomic(run_dir / "findings.json", record)
    return WrittenFindings(sentences, search_lines, numbers)


def _write_forest(run_dir: Path, numbers: Sequence[Mapping], reference: str | None, save: Save) -> None:
    """`forest.png`: every comparison with the reference (`figures.plot_forest`); none without one."""
    if reference is not None and any(row["difference_points"] is not None for row in numbers):
        save(plot_forest(numbers, reference), run_dir / FOREST)
    else:
        (run_dir / FOREST).unlink(missing_ok=True)  # from an earlier summary of this folder


def _write_search_views(run_dir: Path, rows: Sequence[Mapping], search: SearchRecord | None, save: Save) -> None:
    """`search_history.png` (the verified best starred, named with its network: the best finished
    configuration by mean validation accuracy on fresh seeds) and `search_importances.png`; removed
    without a search."""
    if search is None:
        for name, _ in SEARCH_FIGURES:
            (run_dir / name).unlink(missing_ok=True)
        return
    verified = {row["name"]: row["val_accuracy"] for row in rows
                if row["status"] == "ok" and row.get("val_accuracy") is not None}  # fmt: skip
    save(search_history_figure(search, verified, candidate_networks(rows)), run_dir / "search_history.png")
    save(search_importances_figure(search), run_dir / "search_importances.png")


def _search_part(
    run_dir: Path, rows: Sequence[Mapping], search: SearchRecord | None, sentences: Sequence[str]
) -> SearchPart | None:
    if search is None:
        return None
    figures = {name: (run_dir / name).read_bytes() for name, _ in SEARCH_FIGURES if (run_dir / name).is_file()}
    parameters = [name for name, _ in search.importances]
    return SearchPart(figures, sentences, top_candidates(search), {row["name"]: row for row in rows}, parameters)


def _report(
    run_dir: Path,
    rows: Sequence[Mapping],
    results: Sequence[Mapping],
    findings: WrittenFindings,
    data: PreparedData,
    search: SearchPart | None = None,
) -> str:
    """The report's page, from what the run folder holds: its run.json, figures, curves and models."""
    names = [FOREST, *(name for name, _ in REPORT_FIGURES)]
    figures = {name: (run_dir / name).read_bytes() for name in names if (run_dir / name).is_file()}
    curves = {name: path.read_bytes() for name, path in _curve_images(run_dir, rows, results).items() if path.is_file()}
    run = read_json(run_dir / "run.json")
    run = run if isinstance(run, dict) else {}
    folders = {name: trial_folder(run_dir, result) for name, result in best_runs(results).items()}
    drawing = drawing_panel(PanelInputs(rows, folders, data.test_images, data.test_labels))
    parts = ReportParts(figures, curves, model_summaries(run_dir, results), findings.sentences, drawing, search,
                        findings.numbers)  # fmt: skip
    return render_report(run, run_dir.name, rows, parts)


def _write_curves(run_dir: Path, rows: Sequence[Mapping], results: Sequence[Mapping], save: Save) -> None:
    """`comparison.png`, and `curves/<name>.png` (mean and band) for configurations with several runs."""
    histories: dict[str, list[dict]] = {}
    for result in sorted(results, key=lambda result: result.get("repeat", 0)):
        if result["status"] != "failed":
            histories.setdefault(result["name"], []).append(read_history(trial_folder(run_dir, result) / "history.csv"))
    save(plot_comparison(rows, histories), run_dir / "comparison.png")
    for name, repeats in histories.items():
        if len(repeats) > 1:
            (run_dir / "curves").mkdir(exist_ok=True)
            save(plot_history(repeats, title=f"{name}: {len(repeats)} repeats"), run_dir / "curves" / f"{name}.png")


def _curve_images(run_dir: Path, rows: Sequence[Mapping], results: Sequence[Mapping]) -> dict[str, Path]:
    """Configuration -> the curves the report shows for it: the mean and band over its runs, else
    its one run's `curves.png`."""
    first_folders: dict[str, Path] = {}
    for result in sorted(results, key=lambda result: result.get("repeat", 0)):
        first_folders.setdefault(result["name"], trial_folder(run_dir, result))
    return {
        row["name"]: run_dir / "curves" / f"{row['name']}.png"
        if (run_dir / "curves" / f"{row['name']}.png").is_file()
        else first_folders[row["name"]] / "curves.png"
        for row in rows
    }


def first_run(results: Sequence[Mapping], name: str) -> Mapping | None:
    """The finished run of configuration `name` with the lowest repeat number, if any."""
    finished = [result for result in results if result["name"] == name and result["status"] == "ok"]
    return min(finished, key=lambda result: result.get("repeat", 0), default=None)


def model_summaries(run_dir: Path, results: Sequence[Mapping]) -> dict[str, str]:
    """Configuration -> what `model.summary()` printed for it (its first run's
    `model_summary.txt`; configurations without one are left out)."""
    summaries = {}
    for result in sorted(results, key=lambda result: result.get("repeat", 0)):
        path = trial_folder(run_dir, result) / "model_summary.txt"
        if result["name"] not in summaries and path.is_file():
            summaries[result["name"]] = path.read_text(encoding="utf-8")
    return summaries


def _write_answer_views(
    run_dir: Path, rows: Sequence[Mapping], per_class: Mapping[str, Sequence[float]], reference: str | None, save: Save
) -> None:
    """`per_class.csv` and `per_class.png` (accuracy per digit), and `factors.png` (one panel per
    factor the sweep varies alone; none when it varies none)."""
    write_text_atomic(run_dir / "per_class.csv", table_csv(per_class_rows(rows, per_class), PER_CLASS_COLUMNS))
    save(plot_per_class(rows, per_class), run_dir / "per_class.png")
    groups = factor_groups(rows, reference)
    if groups:
        save(plot_factors(groups, reference), run_dir / "factors.png")
    else:
        (run_dir / "factors.png").unlink(missing_ok=True)  # from an earlier summary of this folder


def _write_best_model_views(
    run_dir: Path, data: PreparedData, results: Sequence[Mapping], best: Mapping, save: Save
) -> None:
    """The confusion matrix and the gallery of mistakes of `best`'s first finished run."""
    trial = first_run(results, best["name"])
    predicted = np.load(trial_folder(run_dir, trial) / "test_predictions.npy", allow_pickle=False)
    counts = confusion_matrix(data.test_labels, predicted)
    accuracy = np.trace(counts) / counts.sum()
    label = f"{best['name']} (best by validation accuracy, seed {trial['seed']})"
    save(plot_confusion_matrix(counts, f"{label}: test accuracy {accuracy:.4f}"), run_dir / "confusion_matrix.png")
    wrong = int(counts.sum() - np.trace(counts))
    gallery_title = f"{label}: {wrong} of {counts.sum():,} test digits misclassified ({min(wrong, 40)} shown)"
    save(
        plot_misclassified(data.test_images, data.test_labels, predicted, gallery_title), run_dir / "misclassified.png"
    )


def _write_inside_views(
    run_dir: Path,
    data: PreparedData,
    results: Sequence[Mapping],
    best: Mapping | None,
    reference: str | None,
    save: Save,
) -> None:
    """`first_layer.png`: the first-layer weights of `best`'s first run; `discordant.png`: the test
    digits that `best` and `reference` classify differently, on the first seed both ran. A figure
    that does not apply (no best, a model that is not a dense stack, the best is the reference) is
    removed, so an earlier one is not shown as this run's."""
    layer = None
    if best is not None:
        trial = first_run(results, best["name"])
        layer = first_layer_kernel(trial_folder(run_dir, trial) / "model.keras")
    if layer is not None:
        kernel, is_output = layer
        what = "no hidden layer: its ten class templates" if is_output else "first-layer weights, one image per unit"
        title = f"{best['name']} (best by validation accuracy, seed {trial['seed']}): {what}"
        save(plot_first_layer(kernel, title), run_dir / "first_layer.png")
    else:
        (run_dir / "first_layer.png").unlink(missing_ok=True)
    epochs = first_layer_epochs(trial_folder(run_dir, trial)) if layer is not None and not layer[1] else {}
    if epochs:  # a hidden layer's units as it learned them; a network without one has its templates
        save(
            plot_first_layer_progress(epochs, f"{best['name']}: its first {FIRST_LAYER_UNITS} units"),
            run_dir / "first_layer_progress.png",
        )
    else:
        (run_dir / "first_layer_progress.png").unlink(missing_ok=True)
    pair = discordant_pair(results, best, reference)
    if pair is None:
        (run_dir / "discordant.png").unlink(missing_ok=True)
        return
    seed, trials = pair
    predicted = {
        trial["name"]: np.load(trial_folder(run_dir, trial) / "test_predictions.npy", allow_pickle=False)
        for trial in trials
    }
    title = f"What changed, digit by digit: {best['name']} (best) against {reference} (reference), seed {seed}"
    save(plot_discordant(data.test_images, data.test_labels, predicted, title), run_dir / "discordant.png")


def discordant_pair(
    results: Sequence[Mapping], best: Mapping | None, reference: str | None
) -> tuple[int, list[Mapping]] | None:
    """The first seed on which both the best and the reference finished, and their two runs."""
    if best is None or reference is None or best["name"] == reference:
        return None
    runs = {
        (result["name"], result["seed"]): result
        for result in results
        if result["status"] == "ok" and result["name"] in (best["name"], reference)
    }
    shared = sorted({seed for name, seed in runs if (best["name"], seed) in runs and (reference, seed) in runs})
    if not shared:
        return None
    return shared[0], [runs[best["name"], shared[0]], runs[reference, shared[0]]]


@dataclasses.dataclass(frozen=True)
class SweepOutcome:
    """How a sweep ended: the process exit code, its run folder, and its views (rows, figures)."""

    exit_code: int
    run_dir: Path | None = None  # None when nothing was opened (--plan, or Ctrl-C before training)
    views: Views = dataclasses.field(default_factory=lambda: Views([], {}))

    @property
    def leaderboard(self):  # -> pandas.DataFrame; pandas is imported only when asked for
        """The summary as a pandas DataFrame, one row per configuration, best first, indexed by name."""
        import pandas as pd

        table = pd.DataFrame(self.views.rows, columns=SUMMARY_COLUMNS)
        return table.set_index("name")

    @property
    def figures(self) -> dict:
        """The figures written into the run folder, as Matplotlib `Figure`s, by their path without
        ".png": "comparison", "factors", "per_class", "first_layer", "curves/dense_128_relu", ..."""
        return self.views.figures

    @property
    def findings(self) -> tuple[str, ...]:
        """What the sweep found, in sentences: the same as the terminal's last lines and the top of
        the report (`findings.json` holds them with the numbers they come from)."""
        return self.views.findings
