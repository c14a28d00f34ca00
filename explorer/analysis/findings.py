"""What a sweep found, as data: one finding per factor it varied alone, why the best is the best,
and the configurations that vary several fields at once.

Built from the summary rows alone (`stats.summary_rows`), so every number of a finding is a number
of `summary.json`: the views turn them into sentences (`explorer.views.findings`) and write both
into `findings.json`.
"""

import dataclasses
from collections.abc import Mapping, Sequence

from explorer.analysis.comparisons import MCNEMAR, PAIRED_T
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
    test: str | None  # comparisons.PAIRED_T or comparisons.MCNEMAR
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
    tests: tuple[str, ...]  # the tests the comparisons used
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
    compared = sum(row.get(f"vs_{role}_p") is not None for row in finished for role in ("best", "reference"))
    return Findings(
        reference=reference if any(row["name"] == reference for row in finished) else None,
        runs=max((row["repeats"] for row in finished), default=0),
        tests=tuple(test for test in (PAIRED_T, MCNEMAR) if test in tests),
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
