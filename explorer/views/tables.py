"""Tables of a run as text: the terminal leaderboard, the formats of its cells (the report uses the
same formats), and how a configuration is described in words, in one cell (`configuration_text`)
or, after a search candidate's name, in short (`network_text`, `named`).
"""

import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from explorer.analysis.stats import cell_text
from explorer.store.folders import CANDIDATE_PREFIX

FUSED_NOTE = (
    "fused: networks that share seed, epochs, batch size and optimizer trained together, as "
    "branches of one model, so each one's seconds are its group's (--no-fuse times each alone)"
)


LEADERBOARD_COLUMNS = (
    ("rank", "#"),
    ("name", "model"),
    ("test_accuracy", "test acc"),
    ("vs_reference", "vs ref"),
    ("vs_best", "vs best"),
    ("test_loss", "test loss"),
    ("parameters", "params"),
    ("repeats", "runs"),
)  # within 100 columns; seconds, FLOPs and validation figures are in summary.csv and the report


# A verdict as a short mark, followed in its cell by the difference in points.
VERDICT_MARKS = {"better": "▲", "worse": "▼", "not detected": "·"}
VERDICT_LEGEND = (
    "vs ref, vs best: ▲ better, ▼ worse, · not detected, then the difference in test accuracy in points "
    "(a t-test over seeds, McNemar's test with one run; Holm-corrected at 5%). The best is chosen by "
    "mean validation accuracy, not test accuracy."
)


# A search names its candidates `trial_<number>` (`store.study.candidate_name`); `--compare` puts
# the run's label in front (`RUN.trial_7`). Written out here: the study's module imports Optuna.
CANDIDATE_NAME = re.compile(rf"(?:.*\.)?{CANDIDATE_PREFIX}\d+")


def is_candidate(name: str) -> bool:
    """Whether a configuration is a search's candidate, whose name says nothing of its network."""
    return CANDIDATE_NAME.fullmatch(name) is not None


def technique_words(row: Mapping) -> list[str]:
    """The techniques a configuration uses, in words ("augment standard", "batch norm", ...)."""
    words = {
        "augment": lambda value: None if value in (None, "none") else f"augment {value}",
        "batch_norm": lambda value: "batch norm" if value else None,
        "max_norm": lambda value: f"max-norm {value:g}" if value else None,
        "label_smoothing": lambda value: f"label smoothing {value:g}" if value else None,
        "lr_schedule": lambda value: None if value in (None, "constant") else f"{value} schedule",
        "weight_decay": lambda value: f"weight decay {value:g}" if value else None,
        "early_stopping": lambda value: f"early stopping {value}" if value else None,
    }
    return [text for key, say in words.items() if (text := say(row.get(key))) is not None]


def _hidden_text(row: Mapping, number=cell_text) -> str:
    """ "373-373 relu, dropout 0.16, batch norm": the hidden layers and what they use."""
    units = row.get("hidden_units")
    network = f"{'-'.join(map(str, units))} {cell_text(row.get('activation'))}" if units else "no hidden layer"
    if row.get("dropout"):
        network += f", dropout {number(row['dropout'])}"
    return network + "".join(f", {words}" for words in technique_words(row))


def configuration_text(row: Mapping) -> str:
    """A configuration in one cell: the network (hidden widths, activation, dropout, output), then
    how it trains (optimizer, learning rate, batch size, epochs run)."""
    training = f"{row.get('optimizer')} {cell_text(row.get('learning_rate'))}, batch {row.get('batch_size')}"
    if row.get("epochs_run"):
        training += f", {row['epochs_run']} epoch{'' if row['epochs_run'] == 1 else 's'}"
    if row.get("hidden_units") is None:  # `architecture: "other"`: the model is not a plain stack of Dense layers
        return f"not a plain dense stack (see its summary below); {training}"
    return f"{_hidden_text(row)} → {row.get('output_activation')}; {training}"


def _short(value: object) -> str:
    """A sampled number in two significant figures (0.000823 reads 0.00082), the rest as it is."""
    return f"{value:.2g}" if isinstance(value, float) else str(cell_text(value))


def network_text(row: Mapping) -> str:
    """A configuration's network in short, as said after a search candidate's name: "373-373 relu,
    dropout 0.16, adam 0.00082" (an output other than softmax is said too: "→ sigmoid")."""
    if row.get("hidden_units") is None:
        network = "not a plain dense stack"
    else:
        network = _hidden_text(row, _short)
        if row.get("output_activation") not in (None, "softmax"):
            network += f" → {row['output_activation']}"
    return f"{network}, {row.get('optimizer')} {_short(row.get('learning_rate'))}"


def candidate_networks(rows: Sequence[Mapping]) -> dict[str, str]:
    """Search candidate -> its network in short (`network_text`), for the rows that are candidates."""
    return {row["name"]: network_text(row) for row in rows if is_candidate(row["name"])}


def named(name: str, networks: Mapping[str, str]) -> str:
    """A configuration's name, followed by its network when it is a search candidate's:
    "trial_49 (373-373 relu, dropout 0.16, adam 0.00082)"."""
    return f"{name} ({networks[name]})" if name in networks else name


def verdict_cell(row: Mapping, role: str) -> str:
    """`▲ +0.52`: a comparison's verdict mark and its difference in points; `best` or `ref` for
    the anchors themselves, `-` when not compared."""
    verdict = row.get(f"vs_{role}")
    if verdict is None:
        return "-"
    if verdict not in VERDICT_MARKS:
        return {"reference": "ref"}.get(verdict, verdict)
    return f"{VERDICT_MARKS[verdict]} {row[f'vs_{role}_difference'] * 100:+.2f}"


# How numbers read in the terminal leaderboard and in the report.
CELL_FORMATS = {
    "test_accuracy": "{:.4f}", "test_accuracy_half_ci": "{:.4f}", "test_loss": "{:.4f}", "val_accuracy": "{:.4f}",
    "parameters": "{:,}", "train_seconds": "{:.1f}", "seconds_per_epoch": "{:.2f}",
}  # fmt: skip


def _leaderboard_cell(row: Mapping, key: str) -> str:
    value = row[key]
    if key == "test_accuracy":
        if value is None:
            return row["status"]
        low, high = row["test_accuracy_ci_low"], row["test_accuracy_ci_high"]
        shown = CELL_FORMATS[key].format(value)
        return shown if low is None else f"{shown} ± {CELL_FORMATS[key].format((high - low) / 2)}"
    if key in ("vs_reference", "vs_best"):
        return verdict_cell(row, key.removeprefix("vs_"))
    return "-" if value is None else CELL_FORMATS.get(key, "{}").format(value)


WIDTH = 100  # the explorer's own terminal lines fit this many columns (Keras' progress is Keras')


def wrapped(text: str, indent: str = "") -> str:
    """`text` within WIDTH columns; a path longer than a line stays whole on a line of its own."""
    return textwrap.fill(text, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def closing_lines(
    rows: Sequence[Mapping],
    run_dir: Path,
    written: Sequence[str],
    took: object,
    embedded_sample: bool,
    findings: Sequence[str] = (),
) -> list[str]:
    """What a sweep prints once its views are written: the leaderboard, how it trained, where the
    report and the other files are, a reminder when the digits were the embedded sample, and last
    what the sweep found (`views.findings`), one wrapped paragraph per sentence."""
    if not rows:
        return ["\nNo model has finished yet, so there is nothing to summarize."]
    lines = ["\n" + format_leaderboard(rows), wrapped(VERDICT_LEGEND)]
    if any((row["fused_group_size"] or 1) > 1 for row in rows):
        lines.append(wrapped(f"Training was {FUSED_NOTE}."))
    lines.append(f"\n{len(rows)} configuration(s) in {took}. Report: {run_dir / 'report.html'}")
    lines.append(
        wrapped(f"(also {', '.join(written)}, findings.json, and each model's folder: history, curves, model)")
    )
    if embedded_sample:
        lines.append("Reminder: these figures come from the embedded 5,000-digit sample, not full MNIST.")
    return lines + findings_lines(findings, "What this sweep found:")


def findings_lines(findings: Sequence[str], title: str) -> list[str]:
    """The findings (`views.findings`) under `title`, one wrapped paragraph per sentence; none
    without findings."""
    if not findings:
        return []
    return [f"\n{title}", *(wrapped(f"- {sentence}", indent="  ") for sentence in findings)]


def format_leaderboard(rows: Sequence[Mapping]) -> str:
    """An aligned text table of the summary rows, within 100 columns for names of up to 30
    characters; a search candidate's network (`network_text`) on a line of its own under its name;
    with repeats, test accuracy reads `mean ± half the 95% interval`, and the verdicts read as marks
    and differences (`verdict_cell`, `VERDICT_LEGEND`)."""
    header = [title for _, title in LEADERBOARD_COLUMNS]
    body = [[_leaderboard_cell(row, key) for key, _ in LEADERBOARD_COLUMNS] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        # Names read best left-aligned, numbers right-aligned.
        return "  ".join(
            cell.ljust(width) if title in ("model", "vs best", "vs ref") else cell.rjust(width)
            for cell, width, title in zip(cells, widths, header, strict=True)
        )

    lines = [line(header), line(["-" * width for width in widths])]
    under_name = " " * lines[0].index("model")
    for row, cells in zip(rows, body, strict=True):
        lines.append(line(cells))
        if is_candidate(row["name"]):  # its name says nothing of its network: said beneath it
            lines.append(f"{under_name}({network_text(row)})".ljust(len(lines[0])))
    return "\n".join(lines)
