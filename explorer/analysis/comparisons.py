"""Paired comparisons: is a configuration better or worse than the reference, or than the best?

Every configuration of a sweep runs on the same seeds and is tested on the same digits, so two
configurations are compared pair by pair, with one test per comparison that gives the verdict, its
interval and its power together:

- **several runs each**: the paired t-test over the seeds both ran (`scipy.stats.ttest_rel`) on
  the runs' test accuracies. What varies from one run to the next (initial weights, shuffling) is
  what the test measures, so a verdict speaks about the configurations, and it gains power with
  every run (Bouthillier et al. 2021, "Accounting for variance in machine learning benchmarks").
  Its 95% interval is that test's interval, so a verdict of "better" or "worse" never sits beside
  an interval that crosses zero;
- **one run each**: McNemar's exact test on the two runs' answers to the same test digits
  (`statsmodels.stats.contingency_tables.mcnemar`; Dietterich 1998). It compares two *trained
  models* on these digits, not two configurations: another seed may well reverse it. It has no
  interval over runs and no power calculation (one run measures no spread between runs);
- the p-values of all comparisons of a run are corrected together with Holm's method
  (`statsmodels.stats.multitest.multipletests`).

The verdict is "better" or "worse" when the corrected p-value is below 0.05, else "not detected":
the sweep could not tell, which is not the same as "no effect" (`explorer.analysis.power` says how
large a difference it could have told, and how many runs a smaller one needs). The best
configuration is chosen by mean *validation* accuracy, never by the test figures that are compared.
"""

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from explorer.config.defaults import ALPHA, CONFIDENCE

NOT_DETECTED = "not detected"
PAIRED_T = "paired t over seeds"
MCNEMAR = "McNemar, one run each"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One configuration against an anchor (the reference or the best)."""

    name: str
    anchor: str
    seeds: int  # seeds both ran
    test: str  # PAIRED_T (two seeds or more) or MCNEMAR (one)
    difference: float  # mean paired difference in test accuracy (name minus anchor)
    ci_low: float | None  # the paired t-test's 95% interval; None for McNemar
    ci_high: float | None
    spread: float | None  # standard deviation of the per-seed differences; None for McNemar
    p_value: float  # before Holm's correction


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


def paired_comparison(
    runs: Mapping[int, np.ndarray], anchor_runs: Mapping[int, np.ndarray], name: str, anchor: str
) -> Comparison | None:
    """Compare `name` with `anchor` over the seeds both ran: the paired t-test from two shared
    seeds, McNemar's test with one.

    Args:
        runs, anchor_runs: seed -> which test digits the run got right (booleans, same digits).

    Returns:
        The comparison, or None when they share no seed.
    """
    seeds = sorted(set(runs) & set(anchor_runs))
    if not seeds:
        return None
    accuracy = [float(np.mean(runs[seed])) for seed in seeds]
    anchor_accuracy = [float(np.mean(anchor_runs[seed])) for seed in seeds]
    if len(seeds) == 1:
        (seed,) = seeds
        p_value = mcnemar_p(runs[seed], anchor_runs[seed])
        return Comparison(name, anchor, 1, MCNEMAR, accuracy[0] - anchor_accuracy[0], None, None, None, p_value)
    difference, low, high, spread, p_value = paired_t(accuracy, anchor_accuracy)
    return Comparison(name, anchor, len(seeds), PAIRED_T, difference, low, high, spread, p_value)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down correction of a family of p-values."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]


def verdict(difference: float | None, corrected_p: float) -> str:
    if difference is None or difference == 0 or corrected_p >= ALPHA:
        return NOT_DETECTED
    return "better" if difference > 0 else "worse"
