"""What a sweep found, as data: one finding per factor it varied alone, why the best is the best,
and the configurations that vary several fields at once.

Built from the summary rows alone (`stats.summary_rows`), so every number of a finding is a number
of `summary.json`: the views turn them into sentences (`explorer.views.findings`) and write both
into `findings.json`.
"""

import dataclasses
from collections.abc import Mapping, Sequence

from explorer.analysis.comparisons import MCNEMAR
from explorer.analysis.power import strictest_alpha
from explorer.analysis.stats import FACTORS, factor_groups


@dataclasses.dataclass(frozen=True)
class Effect:
    """One configuration against an anchor, as its summary row says."""

    name: str
    value: object  # its value of the factor, e.g. 512 for width (None outside a factor)
    verdict: str | None  # "better", "worse", "not detected"; None when not compared
    difference: float | None  # mean paired difference in test accuracy (a fraction)
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # Holm-corrected
    runs: int | None  # the runs both configurations finished, on the same seeds
    test: str | None  # the test's name: comparisons.MCNEMAR with one run each, another with several
    detectable: float | None = None  # the smallest difference the sweep could detect (a fraction)
    runs_needed: int | None = None  # about how many runs would detect `difference`
    test_accuracy: float | None = None


@dataclasses.dataclass(frozen=True)
class FactorFinding:
    """A field the sweep varied alone: the reference's value and each other value's effect."""

    factor: str  # a key of `stats.FACTORS`
    reference_value: object
    effects: tuple[Effect, ...]  # in the factor's order, the reference left out


@dataclasses.dataclass(frozen=True)
class BestFinding:
    """The best configuration (by mean validation accuracy) and those with a higher test accuracy."""

    name: str
    val_accuracy: float
    test_accuracy: float
    runs: int
    higher_on_test: tuple[Effect, ...]  # against the best: their verdicts vs_best


@dataclasses.dataclass(frozen=True)
class Findings:
    reference: str | None
    runs: int  # the most runs any configuration finished
    tests: tuple[str, ...]  # the tests the comparisons used, McNemar's last
    comparisons: int  # how many comparisons Holm's correction covered
    strictest_alpha: float  # the level `detectable` and `runs_needed` are sized at
    best: BestFinding | None
    factors: tuple[FactorFinding, ...]
    others: tuple[Effect, ...]  # finished configurations in no factor, against the reference
    unfinished: tuple[tuple[str, str], ...]  # (name, status) of those that did not finish


def _effect(row: Mapping, role: str, value: object = None) -> Effect:
    return Effect(
        name=row["name"],
        value=value,
        verdict=row.get(f"vs_{role}"),
        difference=row.get(f"vs_{role}_difference"),
        ci_low=row.get(f"vs_{role}_ci_low"),
        ci_high=row.get(f"vs_{role}_ci_high"),
        p_value=row.get(f"vs_{role}_p"),
        runs=row.get(f"vs_{role}_runs"),
        test=row.get(f"vs_{role}_test"),
        detectable=row.get(f"vs_{role}_detectable"),
        runs_needed=row.get(f"vs_{role}_runs_needed"),
        test_accuracy=row.get("test_accuracy"),
    )


def _best(finished: Sequence[Mapping]) -> BestFinding | None:
    best = next((row for row in finished if row.get("vs_best") == "best"), None)
    if best is None:
        return None
    higher = [_effect(row, "best") for row in finished if row["test_accuracy"] > best["test_accuracy"]]
    return BestFinding(best["name"], best["val_accuracy"], best["test_accuracy"], best["repeats"], tuple(higher))


def find(rows: Sequence[Mapping], reference: str | None) -> Findings:
    """The findings of a sweep from its summary rows (`stats.summary_rows`, leaderboard order)."""
    finished = [row for row in rows if row["status"] == "ok"]
    groups = factor_groups(rows, reference)
    factors = []
    for factor, members in groups.items():
        value_of = FACTORS[factor]
        effects = tuple(_effect(row, "reference", value_of(row)) for row in members if row["name"] != reference)
        reference_row = next(row for row in members if row["name"] == reference)
        factors.append(FactorFinding(factor, value_of(reference_row), effects))
    grouped = {row["name"] for members in groups.values() for row in members}
    others = tuple(
        _effect(row, "reference")
        for row in finished
        if row["name"] not in grouped and row["name"] != reference and row.get("vs_reference_p") is not None
    )
    tests = {row.get(f"vs_{role}_test") for row in finished for role in ("best", "reference")} - {None}
    # Holm's family: the distinct pairs compared (the best against the reference, or every comparison
    # when the reference is the best, shows on two rows or in two columns, and was counted once).
    anchors = {
        "reference": next((row["name"] for row in finished if row.get("vs_reference") == "reference"), None),
        "best": next((row["name"] for row in finished if row.get("vs_best") == "best"), None),
    }
    compared = len(
        {
            frozenset((row["name"], anchor))
            for row in finished
            for role, anchor in anchors.items()
            if anchor is not None and row.get(f"vs_{role}_p") is not None
        }
    )
    return Findings(
        reference=reference if any(row["name"] == reference for row in finished) else None,
        runs=max((row["repeats"] for row in finished), default=0),
        tests=tuple(sorted(tests, key=lambda test: (test == MCNEMAR, test))),
        comparisons=compared,
        strictest_alpha=strictest_alpha(compared),
        best=_best(finished),
        factors=tuple(factors),
        others=others,
        unfinished=tuple((row["name"], row["status"]) for row in rows if row["status"] != "ok"),
    )


def as_record(findings: Findings) -> dict:
    """The findings as plain JSON-ready data."""
    return dataclasses.asdict(findings)


@dataclasses.dataclass(frozen=True)
class SearchFinding:
    """What a search did, which parameters mattered, and whether its best by validation accuracy
    held up when trained again on fresh seeds. Its validation score during the search is kept to
    name it, never as a result: it was chosen because it was high."""

    name: str
    minutes: float
    candidates: int  # those the search finished with (complete, stopped early, failed)
    complete: int
    pruned: int  # stopped early by successive halving
    budget_stopped: int  # stopped when the budget ran out
    failed: int  # diverged, or refused (fields that do not combine)
    importances: tuple[tuple[str, float], ...]  # (parameter, importance), most important first
    best: str | None  # the search's best complete candidate by validation accuracy
    best_search_val_accuracy: float | None  # its score during the search: how it was chosen, not a result
    best_status: str | None  # its verification's status ("ok", ...); None when it was not trained again
    best_rank: int | None  # its rank in the verified leaderboard (by mean test accuracy)
    ranked: int  # configurations in the verified leaderboard
    best_test_accuracy: float | None  # its mean test accuracy on fresh seeds
    best_runs: int | None
    reference: str | None
    vs_reference: Effect | None  # its verdict against the reference (verdict "reference" if it is it)
    verified_best: str | None  # the verification's best by mean validation accuracy (`vs_best`)
    vs_verified_best: Effect | None  # its verdict against that best (None when it is the best)
    confirmed: bool  # the search's best is also the verification's best


def find_search(search, rows: Sequence[Mapping]) -> SearchFinding:
    """The finding of a search, from its study (`search`: a `store.study.SearchRecord`, read by its
    attributes, since the analysis sits below the store) and the verification's summary rows."""
    candidates = search.candidates
    best = search.best
    row = next((row for row in rows if best is not None and row["name"] == best.name), None)
    verified_best = next((row["name"] for row in rows if row.get("vs_best") == "best"), None)
    finished = row is not None and row["status"] == "ok"
    return SearchFinding(
        name=search.name,
        minutes=search.seconds / 60,
        candidates=len(candidates),
        complete=sum(candidate.state == "COMPLETE" for candidate in candidates),
        pruned=sum(candidate.by_halving for candidate in candidates),
        budget_stopped=sum(candidate.state == "PRUNED" and not candidate.by_halving for candidate in candidates),
        failed=sum(candidate.state == "FAIL" for candidate in candidates),
        importances=tuple(search.importances),
        best=best.name if best is not None else None,
        best_search_val_accuracy=best.value if best is not None else None,
        best_status=row["status"] if row is not None else None,
        best_rank=row["rank"] if row is not None else None,
        ranked=len(rows),
        best_test_accuracy=row["test_accuracy"] if finished else None,
        best_runs=row["repeats"] if finished else None,
        reference=next((row["name"] for row in rows if row.get("vs_reference") == "reference"), None),
        vs_reference=_effect(row, "reference") if finished and row.get("vs_reference") else None,
        verified_best=verified_best,
        vs_verified_best=_effect(row, "best") if finished and row.get("vs_best") not in (None, "best") else None,
        confirmed=finished and best.name == verified_best,
    )
