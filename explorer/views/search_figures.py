"""Figures of a search, as pure functions: its study's record in, a Matplotlib `Figure` out.

The search's history (every candidate's validation accuracy, against its number and against the
minutes spent, with the best so far) and its parameters' importances. Validation accuracy is what
the search selected on; the verification's figures, on the test set, are the ordinary views'.
"""

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure  # Figure, not pyplot: headless, no global state
from matplotlib.ticker import MaxNLocator

from explorer.store.study import Candidate, SearchRecord
from explorer.views import tables

# How each state of a candidate is drawn: (marker, colour, filled, legend label).
STATE_MARKS = {
    "COMPLETE": ("o", "C0", True, "complete"),
    "PRUNED": ("v", "0.55", False, "stopped early (pruned or out of budget): at its last epoch"),
}


def verified_winner(verified: Mapping[str, float]) -> str | None:
    """The configuration the verification found best: the highest mean validation accuracy on
    fresh seeds, the first given among equals (give them in leaderboard order)."""
    return max(verified, key=verified.__getitem__, default=None)


def _best_so_far(candidates: Sequence[Candidate]) -> list[float]:
    """The running best value over `candidates`, in the order given."""
    best, values = float("-inf"), []
    for candidate in candidates:
        best = max(best, candidate.value)
        values.append(best)
    return values


def _history_panel(ax, candidates: Sequence[Candidate], x_of, winner: str | None, verified: Mapping, named) -> None:
    """One panel: each candidate's validation accuracy at `x_of(candidate)`, by state, the best
    complete so far as a step line, the verified candidates ringed and the winner starred, named
    with its network (`named`)."""
    for state, (marker, color, filled, label) in STATE_MARKS.items():
        drawn = [candidate for candidate in candidates if candidate.state == state]
        if drawn:
            ax.plot([x_of(c) for c in drawn], [c.value for c in drawn], marker, color=color, linestyle="none",
                    markerfacecolor=color if filled else "none", markersize=5, label=label)  # fmt: skip
    complete = sorted((c for c in candidates if c.state == "COMPLETE"), key=x_of)
    if complete:
        ax.step([x_of(c) for c in complete], _best_so_far(complete), where="post", color="C1",
                label="best complete so far")  # fmt: skip
    ringed = [c for c in candidates if c.name in verified]
    if ringed:
        ax.plot([x_of(c) for c in ringed], [c.value for c in ringed], "o", markersize=11, markerfacecolor="none",
                markeredgecolor="black", linestyle="none", label="trained again on fresh seeds")  # fmt: skip
    won = next((c for c in candidates if c.name == winner), None)
    if won is not None:
        ax.plot(x_of(won), won.value, "*", color="C3", markersize=16, markeredgecolor="black", linestyle="none",
                label=f"verified best: {named(won.name)}", zorder=5)  # fmt: skip
        ax.annotate(won.name, (x_of(won), won.value), xytext=(8, -12), textcoords="offset points", color="C3")
    ax.set_ylabel("validation accuracy (during the search)")
    ax.grid(alpha=0.3)


def search_history_figure(
    record: SearchRecord, verified: Mapping[str, float], networks: Mapping[str, str] | None = None
) -> Figure:
    """The search's history in two panels: every candidate's validation accuracy (complete ones
    filled, those stopped early hollow, at the epoch they stopped) with the best complete so far,
    against its number and against the minutes the search had spent when it was told.

    Args:
        record: the study (`store.study.read_search`).
        verified: every configuration the verification trained, reference configurations included,
            -> its mean validation accuracy on fresh seeds, in leaderboard order. Verified candidates
            are ringed; the best of them all (`verified_winner`) is starred when it is a candidate.
        networks: verified candidate -> its network in short (`tables.candidate_networks`), said in
            the legend after the starred winner's name.
    """
    figure = Figure(figsize=(13, 4.8), layout="constrained")
    number_ax, time_ax = figure.subplots(1, 2, sharey=True)
    shown = [c for c in record.candidates if c.value is not None]
    timed = [c for c in shown if c.seconds_at_end is not None]
    winner = verified_winner(verified)

    def named(name: str) -> str:
        return tables.named(name, networks or {})

    _history_panel(number_ax, shown, lambda c: c.number, winner, verified, named)
    _history_panel(time_ax, timed, lambda c: c.seconds_at_end / 60, winner, verified, named)
    number_ax.set(xlabel="candidate (in the order asked)", title="Validation accuracy against candidates")
    number_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    time_ax.set(xlabel="minutes of search spent", title="Validation accuracy against time")
    number_ax.legend(fontsize="small", loc="best")
    if not shown:
        number_ax.text(0.5, 0.5, "no candidate finished", ha="center", va="center", transform=number_ax.transAxes)
    failed = len(record.candidates) - len(shown)
    notes = [f"{failed} diverged or refused, not shown"] if failed else []
    if winner is not None and winner not in {c.name for c in record.candidates}:
        notes.append(f"the verified best, {winner}, is not a search candidate")
    figure.suptitle(f"Search {record.name!r}: {len(record.candidates)} candidates in {record.seconds / 60:.1f} min"
                    + (f" ({'; '.join(notes)})" if notes else ""))  # fmt: skip
    return figure


def search_importances_figure(record: SearchRecord) -> Figure:
    """The parameters' importances (Optuna's PED-ANOVA over the complete candidates) as horizontal
    bars, the most important on top; a note instead when too few candidates completed."""
    figure = Figure(figsize=(7.5, 1.6 + 0.45 * max(1, len(record.importances))), layout="constrained")
    ax = figure.subplots()
    complete = len(record.complete)
    ax.set_title(f"Parameter importance (Optuna's PED-ANOVA over {complete} complete candidates)")
    if not record.importances:
        ax.text(0.5, 0.5, f"too few complete candidates ({complete}) to weigh the parameters",
                ha="center", va="center", transform=ax.transAxes)  # fmt: skip
        ax.axis("off")
        return figure
    names = [name for name, _ in record.importances][::-1]  # the most important on top
    values = [value for _, value in record.importances][::-1]
    bars = ax.barh(names, values, color="C0")
    ax.bar_label(bars, fmt="%.2f", padding=3, fontsize="small")
    ax.set(xlabel="importance (the parameters' sum to 1)", xlim=(0, max(values) * 1.15 or 1))
    ax.grid(axis="x", alpha=0.3)
    return figure


def top_candidates(record: SearchRecord, count: int = 10) -> list[Candidate]:
    """The search's best `count` candidates: the complete ones by validation accuracy, then those
    stopped early by theirs (a score at fewer epochs), the first asked among equals."""
    ranked = sorted((c for c in record.candidates if c.value is not None),
                    key=lambda c: (c.state != "COMPLETE", -c.value, c.number))  # fmt: skip
    return ranked[:count]
