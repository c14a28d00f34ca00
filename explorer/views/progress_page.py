"""`report.html` while the run trains: a light page that refreshes itself.

Written when the run starts and after every group, in place of the final report until the run ends:
what has finished (each model's test accuracy), what is training, the validation curves so far and
about how long the run has left. It holds no verdicts, findings or summary: a look after every group
would be a repeated look that the comparisons' error rate does not cover, so they come once, in the
final report, which replaces this page (and does not refresh).
"""

import dataclasses
import html
import io
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from explorer.views.report import image_tag

REFRESH_SECONDS = 10


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a run stands, as the progress page says it."""

    run_name: str
    groups_done: int
    groups: int
    training: tuple[str, ...]  # the trials of the group training now (none: between groups)
    finished: tuple[tuple[str, float | None], ...]  # (trial, test accuracy; None: it did not finish "ok")
    time_left: str  # "about 3 min left", or "" before the first epoch


def curves_so_far(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """Every finished model's validation accuracy per epoch, one line each."""
    figure = Figure(figsize=(7.5, 3.6))
    axes = figure.add_subplot()
    for name, history in histories.items():
        accuracy = history.get("val_accuracy", ())
        axes.plot(range(1, len(accuracy) + 1), accuracy, linewidth=1, label=name)
    axes.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy so far")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if 0 < len(histories) <= 13:
        axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def progress_page(progress: Progress, histories: Mapping[str, Mapping[str, Sequence[float]]]) -> str:
    """The page, refreshing itself every REFRESH_SECONDS seconds."""
    rows = "".join(
        f"<tr><td>{html.escape(trial)}</td><td>{'-' if accuracy is None else f'{accuracy:.4f}'}</td></tr>"
        for trial, accuracy in progress.finished
    )
    training = ", ".join(html.escape(name) for name in progress.training) or "nothing (the report comes next)"
    curves = image_tag(_png(curves_so_far(histories)), "validation accuracy so far") if histories else ""
    left = f"; {html.escape(progress.time_left)}" if progress.time_left else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>{html.escape(progress.run_name)}: training</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td{{padding:0 1em}}img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(progress.run_name)}: training</h1>
<p>{progress.groups_done} of {progress.groups} group(s) done{left}. Training now: {training}.</p>
<p>This page refreshes itself every {REFRESH_SECONDS} s. The comparisons, the findings and the figures
come once the run ends, when the full report replaces this page.</p>
{curves}
<h2>Finished ({len(progress.finished)})</h2>
<table><tr><th>model</th><th>test accuracy</th></tr>{rows}</table>
</body></html>
"""
