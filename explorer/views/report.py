"""The run's report: one self-contained HTML page built from the run folder.

The page's HTML, CSS and script are files beside this module (`report_files/`); this module fills
in the run's facts, the leaderboard and the figures, embedded so the page opens anywhere, offline.
"""

import base64
import dataclasses
import html
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

from explorer.analysis.stats import cell_text
from explorer.config.checks import is_number
from explorer.config.defaults import MAX_RUNS_NEEDED, POWER
from explorer.store.study import Candidate
from explorer.views.tables import CELL_FORMATS, FUSED_NOTE, VERDICT_LEGEND, configuration_text, verdict_cell

REPORT_COLUMNS = (
    ("rank", "#"), ("name", "model"), ("test_accuracy", "test acc"), ("test_accuracy_half_ci", "± 95% CI"),
    ("vs_reference", "vs reference"), ("vs_best", "vs best"), ("test_loss", "test loss"),
    ("val_accuracy", "val acc"), ("parameters", "params"), ("trained", "train s"),
    ("repeats", "runs"), ("configuration", "configuration"),
)  # fmt: skip


REPORT_FILES = Path(__file__).parent / "report_files"

# Columns whose cells are a mark or a group's name rather than a plain number; they sort by number.
MARKED = frozenset({"vs_reference", "vs_best", "trained"})


# The figure beside the findings at the top: every comparison with the reference (`figures.plot_forest`).
FOREST = "forest.png"

# The run folder's figures the report shows further down, in order, with their titles.
REPORT_FIGURES = (
    ("comparison.png", "Comparison"),
    ("factors.png", "One factor at a time"),
    ("per_class.png", "Accuracy per digit"),
    ("parallel_coordinates.png", "Configuration against test accuracy"),
    ("confusion_matrix.png", "Confusion matrix of the best configuration (by validation accuracy)"),
    ("misclassified.png", "Its mistakes"),
    ("first_layer.png", "What its first layer learned"),
    ("first_layer_progress.png", "How its first layer learned it, epoch by epoch"),
    ("discordant.png", "What changed against the reference, digit by digit"),
)


def image_tag(png: bytes, alt: str) -> str:
    """An <img> with the PNG embedded, so the report is one file that opens anywhere, offline."""
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def _report_cell(value: object, key: str) -> tuple[str, str]:
    """(what the cell shows, what it sorts by): numbers sort as numbers, the rest as text."""
    if value is None:
        return "-", ""
    if is_number(value):
        return CELL_FORMATS.get(key, "{}").format(value), repr(value)
    return str(cell_text(value)), str(cell_text(value))


def _facts(run: Mapping) -> dict[str, str]:
    """How the run was made, as escaped HTML: command, seed, repeats, training, data, versions."""
    data = run.get("data", {})
    return {
        "command": f"<code>{html.escape(str(run.get('command', '')))}</code>",
        "started": html.escape(str(run.get("started_at", ""))),
        "seed": html.escape(str(run.get("seed", ""))),
        "runs per configuration": html.escape(str(run.get("repeats", 1))),
        "training": html.escape(FUSED_NOTE if run.get("fuse") else "one model at a time")
        + html.escape(f"; executor: {run.get('executor', 'local')}"),
        "data": html.escape(f"{data.get('kind', '')} {data.get('location', '')} "
                            f"({data.get('train_size', 0):,} train / {data.get('test_size', 0):,} test digits)"),
        "versions": html.escape(", ".join(f"{key} {value}" for key, value in run.get("versions", {}).items())),
        **({"runs compared": html.escape(", ".join(run["compared"])),
            "differences": "<br>".join(map(html.escape, run.get("differences") or ["none found"]))}
           if run.get("compared") else {}),
    }  # fmt: skip


def fused_groups(rows: Sequence[Mapping]) -> dict[str, list[Mapping]]:
    """Fused group identity -> its members' rows, in leaderboard order, in order of first member."""
    groups: dict[str, list[Mapping]] = {}
    for row in rows:
        if row.get("fused_group"):
            groups.setdefault(row["fused_group"], []).append(row)
    return groups


def _trained_cells(rows: Sequence[Mapping]) -> tuple[dict[str, tuple[str, object]], str]:
    """Each configuration's "train s" cell (its own seconds, or its fused group's letter) with its
    sort value, and the paragraph that gives each fused group's seconds once."""
    cells = {row["name"]: (CELL_FORMATS["train_seconds"].format(row["train_seconds"]), row["train_seconds"])
             for row in rows if row.get("train_seconds") is not None}  # fmt: skip
    notes = []
    for index, (_, members) in enumerate(fused_groups(rows).items()):
        letter = chr(ord("A") + index) if index < 26 else str(index + 1)
        seconds = members[0]["train_seconds"]
        cells.update({row["name"]: (f"group {letter}", seconds) for row in members})
        names = ", ".join(row["name"] for row in members)
        notes.append(f"<b>group {letter}</b>: {seconds:.1f} s a run for {len(members)} networks together ({names})")
    paragraph = "<p>Fused groups, trained as one model: " + "; ".join(notes) + ".</p>" if notes else ""
    return cells, paragraph


def _leaderboard(rows: Sequence[Mapping]) -> tuple[str, str]:
    """The sortable leaderboard's header and body rows, as HTML."""
    trained, _ = _trained_cells(rows)
    table = []
    for row in rows:
        low, high = row.get("test_accuracy_ci_low"), row.get("test_accuracy_ci_high")
        half = None if low is None else (high - low) / 2
        table.append({**row, "test_accuracy_half_ci": half, "configuration": configuration_text(row)})
    # Columns of numbers align right, like their cells; the others left.
    numeric = {key for key, _ in REPORT_COLUMNS if any(is_number(values.get(key)) for values in table)}
    numeric |= MARKED
    header = "".join(
        f'<th class="{"" if key in numeric else "text"}" data-key="{key}">{html.escape(title)}</th>'
        for key, title in REPORT_COLUMNS
    )
    body = []
    for row, values in zip(rows, table, strict=True):
        cells = []
        for key, _ in REPORT_COLUMNS:
            if key in ("vs_reference", "vs_best"):
                shown, sort_by = verdict_cell(row, key.removeprefix("vs_")), row.get(f"{key}_difference")
                sort_value = "" if sort_by is None else repr(sort_by)
            elif key == "trained":
                shown, sort_by = trained.get(row["name"], ("-", None))
                sort_value = "" if sort_by is None else repr(sort_by)
            else:
                shown, sort_value = _report_cell(values.get(key), key)
            css = ("" if key in numeric else "text") + (" mark" if key in MARKED else "")
            cells.append(f'<td class="{css.strip()}" data-value="{html.escape(sort_value)}">{html.escape(shown)}</td>')
        row_class = row["status"] if row["status"] != "ok" else ("best" if row.get("vs_best") == "best" else "")
        body.append(f'<tr class="{row_class}">{"".join(cells)}</tr>')
    return header, "".join(body)


NUMBER_COLUMNS = ("", "verdict", "difference", "95% interval", "p (Holm)", "test", "runs", "could detect",
                  "runs needed")  # fmt: skip
NUMBER_MARKS = {"better": "▲ better", "worse": "▼ worse", "not detected": "· not detected"}


def _number_cells(row: Mapping) -> list[str]:
    """A comparison's numbers (`findings.number_rows`) as the table's cells, in points."""
    low, high, detectable, needed = (row[key] for key in ("ci_low_points", "ci_high_points", "detectable_points",
                                                           "runs_needed"))  # fmt: skip
    if row["verdict"] == "identical":
        could = "identical"
    elif detectable is None:
        could = "-"
    else:
        could = "over 100" if detectable >= 100 else f"{detectable:.2f}"
    return [
        row["label"], NUMBER_MARKS.get(row["verdict"], row["verdict"]),
        "-" if row["difference_points"] is None else f"{row['difference_points']:+.2f}",
        "-" if low is None else f"{low:+.2f} to {high:+.2f}",
        "-" if row["p_holm"] is None else f"{row['p_holm']:.3g}", str(row["test"] or "-"), str(row["runs"] or "-"),
        could, "-" if needed is None else (f"over {MAX_RUNS_NEEDED:,}" if needed > MAX_RUNS_NEEDED else str(needed)),
    ]  # fmt: skip


def numbers_table(numbers: Sequence[Mapping], reference: object) -> str:
    """The numbers behind the findings, one row per comparison with the reference, under each
    group's name, as HTML; empty without comparisons."""
    if not numbers:
        return ""
    body = []
    for group in dict.fromkeys(row["group"] for row in numbers):
        body.append(
            f'<tr class="group"><th class="text" colspan="{len(NUMBER_COLUMNS)}">{html.escape(group)}</th></tr>'
        )
        for row in (row for row in numbers if row["group"] == group):
            cells = _number_cells(row)
            body.append(f'<tr data-verdict="{html.escape(row["verdict"])}"><td class="text">{html.escape(cells[0])}</td>'
                        + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells[1:]) + "</tr>")  # fmt: skip
    header = "".join(f"<th>{html.escape(title)}</th>" for title in NUMBER_COLUMNS)
    return (
        f"<h3>The numbers behind the findings</h3><p>Against the reference, {html.escape(str(reference))}, in points "
        "of test accuracy: the difference, its 95% interval (none with one run), the p-value after Holm's "
        "correction over the run's comparisons, the test, the runs both finished, the smallest difference this "
        f"sweep could detect ({POWER:.0%} of the time) and about how many runs each would detect the difference "
        "seen (for one not detected).</p>"
        f'<div class="scroll"><table id="numbers"><thead><tr>{header}</tr></thead><tbody>{"".join(body)}'
        "</tbody></table></div>"
    )


def _findings(findings: Sequence[str], numbers: Sequence[Mapping], forest: bytes | None, reference: object) -> str:
    """What the sweep found: the sentences with the forest plot beside them, the numbers below."""
    if not findings:
        return ""
    items = "".join(f"<li>{html.escape(sentence)}</li>" for sentence in findings)
    figure = image_tag(forest, "every comparison with the reference") if forest else ""
    return (
        f'<h2>What this sweep found</h2><div class="answers"><ul class="findings">{items}</ul>{figure}</div>'
        + numbers_table(numbers, reference)
    )


def _model_summaries(rows: Sequence[Mapping], summaries: Mapping[str, str]) -> str:
    """Each configuration's `model.summary()`, folded, in leaderboard order."""
    folded = "".join(
        f"<details><summary>{html.escape(row['name'])}</summary><pre>{html.escape(summaries[row['name']])}</pre></details>"
        for row in rows
        if row["name"] in summaries
    )
    return f'<h2>The networks, as Keras summarises them</h2><div class="summaries">{folded}</div>' if folded else ""


# A search's figures (`views.search_figures`), shown in its section, in order, with their titles.
SEARCH_FIGURES = (
    ("search_history.png", "The search's history: validation accuracy against candidates and time"),
    ("search_importances.png", "Which parameters mattered"),
)


@dataclasses.dataclass(frozen=True)
class SearchPart:
    """What the report's "Search" section shows: the search's figures, its findings' sentences and
    its top candidates, with the verification's summary row of those trained again."""

    figures: Mapping[str, bytes]  # file name in SEARCH_FIGURES -> PNG
    sentences: Sequence[str]
    candidates: Sequence[Candidate]  # the top ones, best first (`search_figures.top_candidates`)
    verified: Mapping[str, Mapping]  # configuration -> its summary row
    parameters: Sequence[str] = ()  # the parameters in the order shown: the most important first


def _parameter_text(params: Mapping[str, object], order: Sequence[str]) -> str:
    """ "learning_rate 0.00312, width 212, activation relu": the most important first."""
    names = sorted(params, key=lambda name: (order.index(name) if name in order else len(order), name))
    return ", ".join(f"{name} {params[name]:.3g}" if isinstance(params[name], float) else f"{name} {params[name]}"
                     for name in names)  # fmt: skip


def _verified_text(row: Mapping | None) -> str:
    if row is None:
        return "-"
    if row.get("test_accuracy") is None:
        return str(row["status"])
    runs = row.get("repeats")
    return f"{row['test_accuracy']:.4f} test, {runs} run{'' if runs == 1 else 's'} (rank {row['rank']})"


def search_section(part: SearchPart | None) -> str:
    """The report's "Search" section, as HTML; empty without a search."""
    if part is None:
        return ""
    items = "".join(f"<li>{html.escape(sentence)}</li>" for sentence in part.sentences)
    figures = "".join(
        f"<h3>{html.escape(title)}</h3>{image_tag(part.figures[name], title)}"
        for name, title in SEARCH_FIGURES
        if name in part.figures
    )
    header = "".join(f"<th>{title}</th>" for title in
                     ("#", "candidate", "val acc (search)", "epochs", "stopped", "trained again", "parameters"))  # fmt: skip
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in (
            str(index), candidate.name, f"{candidate.value:.4f}", str(candidate.epochs_run or "-"),
            candidate.stopped or candidate.state.lower(), _verified_text(part.verified.get(candidate.name)),
            _parameter_text(candidate.params, list(part.parameters)),
        )) + "</tr>"
        for index, candidate in enumerate(part.candidates, start=1)
    )  # fmt: skip
    return (
        '<section id="search"><h2>Search</h2>'
        f'<ul class="findings">{items}</ul>{figures}'
        "<h3>Its best candidates</h3><p>Validation accuracy during the search chose them; it is not a result "
        "(the highest of many is high partly by luck). Those trained again on fresh seeds give their mean "
        "test accuracy and rank in the leaderboard above.</p>"
        f'<div class="scroll"><table id="search-candidates"><thead><tr>{header}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></section>"
    )


@dataclasses.dataclass(frozen=True)
class ReportParts:
    """What the report shows beside the summary rows, read from the run folder."""

    figures: Mapping[str, bytes] = dataclasses.field(default_factory=dict)  # name in REPORT_FIGURES, FOREST -> PNG
    curves: Mapping[str, bytes] = dataclasses.field(default_factory=dict)  # configuration -> PNG of its curves
    summaries: Mapping[str, str] = dataclasses.field(default_factory=dict)  # configuration -> `model.summary()`
    findings: Sequence[str] = ()  # what the sweep found, in sentences (`views.findings`)
    drawing: str = ""  # the "Draw a digit" panel's HTML (`views.drawing`), after the leaderboard
    search: SearchPart | None = None  # a search's section (`search_section`), when the run searched
    numbers: Sequence[Mapping] = ()  # the numbers behind the findings (`findings.number_rows`)


def render_report(run: Mapping, run_name: str, rows: Sequence[Mapping], parts: ReportParts) -> str:
    """The run's report as one self-contained HTML page: what the sweep found (beside it the forest
    plot, `FOREST` in `parts.figures`; below it the numbers behind it), how it was run, the
    sortable leaderboard with its fused groups' seconds, the "Draw a digit" panel, a search's section
    (after a search), the figures (those missing are left out),
    every configuration's `model.summary()` (folded) and curves; images embedded.

    Args:
        run: the run's record (`run.json`).
        run_name: the run folder's name, the page's title.
        rows: the summary rows (`summary_rows`).
        parts: the figures, curves, summaries, findings, "Draw a digit" panel and search to show.
    """
    figures, curves, summaries, findings = parts.figures, parts.curves, parts.summaries, parts.findings
    header, body = _leaderboard(rows)
    sections = "".join(
        f"<h2>{html.escape(title)}</h2>{image_tag(figures[name], title)}"
        for name, title in REPORT_FIGURES
        if name in figures
    )
    if "factors.png" not in figures:
        sections += (
            "<h2>One factor at a time</h2><p>No configuration of this sweep differs from the reference in "
            "exactly one field (width, depth, activation, output, dropout, optimizer, learning rate, batch "
            "size or epochs), so there is no factor to show on its own.</p>"
        )
    sections += _model_summaries(rows, summaries)
    curve_tags = "".join(image_tag(png, f"curves of {name}") for name, png in curves.items())
    page = string.Template((REPORT_FILES / "report.html").read_text(encoding="utf-8"))
    reference = next((row["name"] for row in rows if row.get("vs_reference") == "reference"), run.get("reference"))
    data = run.get("data", {})
    banner = (
        '<p class="banner">These figures come from the embedded 5,000-digit sample of MNIST '
        f"({data.get('train_size', 0):,} training and {data.get('test_size', 0):,} test digits), not the full "
        "MNIST: they are lower and noisier, and not comparable with published MNIST results.</p>"
        if data.get("kind") == "embedded-sample"
        else ""
    )
    return page.substitute(
        banner=banner,
        run_name=html.escape(run_name),
        reference=html.escape(str(run.get("reference") or "not recorded")),
        style=(REPORT_FILES / "report.css").read_text(encoding="utf-8"),
        script=(REPORT_FILES / "report.js").read_text(encoding="utf-8"),
        facts="".join(f"<dt>{html.escape(key)}</dt><dd>{value}</dd>" for key, value in _facts(run).items()),
        findings=_findings(findings, parts.numbers, figures.get(FOREST), reference),
        legend=html.escape(VERDICT_LEGEND),
        groups=_trained_cells(rows)[1],
        header=header,
        body=body,
        drawing=parts.drawing,
        search=search_section(parts.search),
        sections=sections,
        curves=curve_tags,
    )
