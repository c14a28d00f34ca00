"""Comparisons: is a configuration better or worse than the reference, or than the best?

`compare_configurations` is the one door: it takes every run's test and validation accuracy by
configuration and seed (missing runs allowed), chooses the best by mean *validation* accuracy, and
compares every configuration with the reference and with the best, one test per comparison giving
the verdict, its interval and its power together:

- **several runs each** (the default): the two-way model of `explorer.analysis.blocks`. Every
  configuration runs on the same seeds, so the seeds are blocks; the model removes what a seed does
  to every network at once with the help of all the configurations, estimates each configuration's
  own spread from its own residuals, and tests a difference with Welch's t and Satterthwaite's
  degrees of freedom. Chosen by simulation (`benchmarks/comparisons.py`): it keeps the family-wise
  error rate under 5% when one configuration or the reference is noisier than the others, where
  pooling the noise does not, and with three runs it has the power that the paired t-test (2
  degrees of freedom) lacks. With fewer than `blocks.MIN_CONFIGURATIONS` configurations the paired
  t-test over the seeds both ran (`scipy.stats.ttest_rel`) stands in;
- **one run each**: McNemar's exact test on the two runs' answers to the same test digits
  (`statsmodels.stats.contingency_tables.mcnemar`; Dietterich 1998). It compares two *trained
  models* on these digits, not two configurations: another seed may well reverse it. It has no
  interval over runs and no power calculation (one run measures no spread between runs);
- the p-values of the run's distinct comparisons (the best against the reference counted once) are
  corrected together with Holm's method (`statsmodels.stats.multitest.multipletests`).

What varies from one run to the next (initial weights, shuffling) is what the tests measure, so a
verdict speaks about the configurations (Bouthillier et al. 2021, "Accounting for variance in
machine learning benchmarks"). The verdict is "better" or "worse" when the corrected p-value is
below 0.05, else "not detected": the sweep could not tell, which is not the same as "no effect"
(`explorer.analysis.power` says how large a difference it could have told, and how many runs a
smaller one needs, for the same test).
"""

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from explorer.analysis.blocks import MIN_CONFIGURATIONS, fit_blocks
from explorer.analysis.power import detectable_difference, runs_needed, strictest_alpha
from explorer.config.defaults import ALPHA, CONFIDENCE

NOT_DETECTED = "not detected"
BLOCK_T = "two-way t over seeds"
PAIRED_T = "paired t over seeds"
MCNEMAR = "McNemar, one run each"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One configuration against an anchor (the reference or the best), tested once."""

    name: str
    anchor: str
    role: str  # "reference" or "best": which anchor
    seeds: int  # seeds both ran
    test: str  # BLOCK_T, PAIRED_T (fewer configurations than blocks.MIN_CONFIGURATIONS) or MCNEMAR
    difference: float  # the estimated difference in mean test accuracy (name minus anchor)
    ci_low: float | None  # the test's 95% interval; None for McNemar
    ci_high: float | None
    spread: float | None  # one run's standard deviation of the difference; None for McNemar
    standard_error: float | None  # of `difference`; None for McNemar
    freedom: float | None  # the t-test's degrees of freedom; None for McNemar
    freedom_per_run: float | None  # how `freedom` grows with each run (`power.runs_needed`)
    p_value: float  # before Holm's correction
    corrected_p: float = 1.0  # after Holm's correction over the run's distinct comparisons
    verdict: str = NOT_DETECTED
    detectable: float | None = None  # the smallest difference detected with 80% power (against the reference)
    runs_needed: int | None = None  # about how many runs would detect `difference` (when not detected)
    identical: bool = False  # the two gave the same accuracy on every seed both ran


@dataclasses.dataclass(frozen=True)
class SweepComparisons:
    """What `compare_configurations` found: the anchors and every comparison with them."""

    reference: str | None  # None when the reference has no finished run
    best: str | None  # the best by mean validation accuracy
    comparisons: tuple[Comparison, ...]  # against the reference, then against the best
    family: int  # the distinct comparisons Holm's correction covered
    strictest_alpha: float  # the level detectable differences and runs needed are sized at

    def against(self, role: str) -> dict[str, Comparison]:
        """Configuration -> its comparison with the anchor of `role` ("reference" or "best")."""
        return {comparison.name: comparison for comparison in self.comparisons if comparison.role == role}


def paired_t(values: Sequence[float], anchor_values: Sequence[float]) -> tuple[float, float, float, float, float]:
    """The paired t-test of `values` against `anchor_values` (two pairs or more).

    Returns:
        (mean difference, interval low, interval high, standard deviation of the differences,
        two-sided p-value). When every difference is the same, the spread is 0 and SciPy's test
        is undefined: the interval is the difference itself, and p is 0 unless the difference is 0.
    """
    differences = np.asarray(values, dtype=float) - np.asarray(anchor_values, dtype=float)
    mean = float(differences.mean())
    if np.all(differences == differences[0]):
        return mean, mean, mean, 0.0, 0.0 if mean != 0 else 1.0
    test = scipy.stats.ttest_rel(values, anchor_values)
    interval = test.confidence_interval(CONFIDENCE)
    return mean, float(interval.low), float(interval.high), float(differences.std(ddof=1)), float(test.pvalue)


def mcnemar_p(correct: np.ndarray, anchor_correct: np.ndarray) -> float:
    """McNemar's exact p-value for two classifiers' right/wrong answers on the same test digits."""
    correct, anchor_correct = np.asarray(correct, dtype=bool), np.asarray(anchor_correct, dtype=bool)
    table = [
        [int(np.sum(correct & anchor_correct)), int(np.sum(correct & ~anchor_correct))],
        [int(np.sum(~correct & anchor_correct)), int(np.sum(~correct & ~anchor_correct))],
    ]
    return float(mcnemar(table, exact=True).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down correction of a family of p-values."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]


def verdict(difference: float | None, corrected_p: float) -> str:
    if difference is None or difference == 0 or corrected_p >= ALPHA:
        return NOT_DETECTED
    return "better" if difference > 0 else "worse"


def compare_configurations(
    test_accuracy: Mapping[str, Mapping[int, float]],
    validation_accuracy: Mapping[str, Mapping[int, float]],
    reference: str | None,
    answers: Mapping[str, Mapping[int, np.ndarray]] | None = None,
) -> SweepComparisons:
    """Compare every configuration with the reference and with the best, one test each.

    Args:
        test_accuracy: configuration -> seed -> that run's test accuracy, for the runs that
            finished (a diverged, failed or interrupted run is simply absent). Ties for the best
            go to the configuration that comes first.
        validation_accuracy: the same for the validation accuracy, which alone chooses the best.
        reference: the configuration every other is compared with (None, or one with no run:
            no comparison with a reference).
        answers: configuration -> seed -> which test digits that run got right; needed only for
            McNemar's test, when two configurations share one seed and no spread between runs.

    Returns:
        The comparisons, each with its verdict after Holm's correction over the run's distinct
        comparisons, its interval, and the power figures of the same test.
    """
    names = [name for name, runs in test_accuracy.items() if runs]
    validation = {name: float(np.mean(list(runs.values()))) for name, runs in validation_accuracy.items() if runs}
    best = max((name for name in names if name in validation), key=validation.get, default=None)
    reference = reference if reference in names else None
    pairs = [(name, reference, "reference") for name in names if reference is not None and name != reference]
    if best != reference:  # else every comparison with the best is one with the reference
        pairs += [(name, best, "best") for name in names if best is not None and name not in (best, reference)]
    tester = _Tester(test_accuracy, answers or {})
    found = [comparison for comparison in (tester.compare(*pair) for pair in pairs) if comparison is not None]
    alpha = strictest_alpha(len(found))
    settled = [_settle(c, p, alpha) for c, p in zip(found, holm([c.p_value for c in found]), strict=True)]
    # The best against the reference is one comparison: the reference's row against the best shows it
    # mirrored; when the reference is the best, every comparison with it is one with the best.
    settled += [_mirrored(c) for c in settled if c.role == "reference" and c.name == best]
    if best is not None and best == reference:
        settled += [dataclasses.replace(c, role="best") for c in settled if c.role == "reference"]
    return SweepComparisons(reference, best, tuple(settled), len(found), alpha)


class _Tester:
    """Chooses each comparison's test and runs it; fits the two-way model once for all."""

    def __init__(self, test_accuracy: Mapping[str, Mapping[int, float]], answers: Mapping[str, Mapping]):
        self.runs = test_accuracy
        self.answers = answers
        several = [name for name, runs in test_accuracy.items() if len(runs) >= 2]
        self.index = {name: i for i, name in enumerate(several)} if len(several) >= MIN_CONFIGURATIONS else {}
        self.fit = None
        if self.index:
            seeds = sorted({seed for name in several for seed in test_accuracy[name]})
            table = np.full((1, len(several), len(seeds)), np.nan)
            for name, i in self.index.items():
                for seed, accuracy in test_accuracy[name].items():
                    table[0, i, seeds.index(seed)] = accuracy
            self.fit = fit_blocks(table)

    def compare(self, name: str, anchor: str, role: str) -> Comparison | None:
        shared = sorted(set(self.runs[name]) & set(self.runs[anchor]))
        first, second = self.index.get(name), self.index.get(anchor)
        if first is not None and second is not None and self.fit.estimable[first, second]:
            comparison = self._block(name, anchor, role, len(shared), first, second)
        elif len(shared) >= 2:
            comparison = self._paired(name, anchor, role, shared)
        elif shared and name in self.answers and anchor in self.answers:
            (seed,) = shared
            difference = self.runs[name][seed] - self.runs[anchor][seed]
            p_value = mcnemar_p(self.answers[name][seed], self.answers[anchor][seed])
            comparison = Comparison(
                name, anchor, role, 1, MCNEMAR, difference, None, None, None, None, None, None, p_value
            )
        else:
            return None
        if shared and self.runs[name] == self.runs[anchor]:  # the same seeds, and the same accuracy on each
            return dataclasses.replace(
                comparison, identical=True, difference=0.0, ci_low=0.0, ci_high=0.0, spread=0.0, p_value=1.0
            )
        return comparison

    def _block(self, name: str, anchor: str, role: str, seeds: int, first: int, second: int) -> Comparison:
        fit = self.fit
        difference, error = float(fit.difference[0, first, second]), float(fit.standard_error[0, first, second])
        spread, freedom = float(fit.spread[0, first, second]), float(fit.freedom[0, first, second])
        if error == 0:  # every run of both exactly on its seed's effect: no noise to test against
            p_value = 0.0 if difference != 0 else 1.0
            return Comparison(
                name, anchor, role, seeds, BLOCK_T, difference, difference, difference, 0.0, 0.0, None, None, p_value
            )
        half = float(scipy.stats.t.ppf(1 - ALPHA / 2, freedom)) * error
        p_value = float(2 * scipy.stats.t.sf(abs(difference) / error, freedom))
        runs = (spread / error) ** 2  # the runs a balanced table would need for this standard error
        per_run = freedom / (runs - 1) if runs > 1 else None
        return Comparison(
            name, anchor, role, seeds, BLOCK_T, difference, difference - half, difference + half,
            spread, error, freedom, per_run, p_value,
        )  # fmt: skip

    def _paired(self, name: str, anchor: str, role: str, shared: Sequence[int]) -> Comparison:
        values = [self.runs[name][seed] for seed in shared]
        anchor_values = [self.runs[anchor][seed] for seed in shared]
        difference, low, high, spread, p_value = paired_t(values, anchor_values)
        error = spread / np.sqrt(len(shared))
        return Comparison(
            name, anchor, role, len(shared), PAIRED_T, difference, low, high, spread, error, len(shared) - 1.0, 1.0,
            p_value,
        )  # fmt: skip


def _settle(comparison: Comparison, corrected_p: float, alpha: float) -> Comparison:
    """The comparison's verdict after Holm's correction, and its power figures at `alpha`."""
    found = verdict(comparison.difference, corrected_p)
    if comparison.identical:
        return dataclasses.replace(comparison, corrected_p=corrected_p, verdict=found, detectable=0.0)
    detectable = detectable_difference(comparison.standard_error, comparison.freedom, alpha)
    needed = (
        runs_needed(comparison.difference, comparison.spread, comparison.freedom_per_run, alpha)
        if found == NOT_DETECTED
        else None
    )
    return dataclasses.replace(
        comparison, corrected_p=corrected_p, verdict=found, detectable=detectable, runs_needed=needed
    )


def _mirrored(comparison: Comparison) -> Comparison:
    """The anchor against the configuration: the same test, seen from the other side."""
    flipped = {"better": "worse", "worse": "better"}.get(comparison.verdict, comparison.verdict)
    low, high = comparison.ci_low, comparison.ci_high
    return dataclasses.replace(
        comparison, name=comparison.anchor, anchor=comparison.name, role="best", difference=-comparison.difference,
        ci_low=-high if high is not None else None, ci_high=-low if low is not None else None, verdict=flipped,
        runs_needed=None,
    )  # fmt: skip
