"""Paired comparisons: is a configuration better or worse than the reference, or than the best?

Every configuration of a sweep runs on the same seeds and is tested on the same digits, so two
configurations can be compared pair by pair rather than by overlapping intervals:

- the mean paired difference in test accuracy over the seeds both ran, with its 95% t-interval
  (`scipy.stats.ttest_rel`);
- McNemar's exact test on each shared seed's test predictions: of the digits one configuration gets
  right and the other wrong, are there more one way than the other
  (`statsmodels.stats.contingency_tables.mcnemar`). A comparison counts as a difference only if
  every shared seed shows it in the same direction, so its p-value is the largest of the seeds'
  (an intersection-union test, valid at the test's level);
- the p-values of all comparisons of a run corrected together with Holm's method
  (`statsmodels.stats.multitest.multipletests`).

The verdict is "better" or "worse" when the corrected p-value is below 0.05, else "no detectable
difference". The best configuration is chosen by mean *validation* accuracy, never by the test
figures that are compared.
"""

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from explorer.config.defaults import ALPHA, CONFIDENCE

NO_DIFFERENCE = "no detectable difference"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One configuration against an anchor (the reference or the best)."""

    name: str
    anchor: str
    seeds: int  # seeds both ran
    difference: float | None  # mean paired difference in test accuracy (name minus anchor)
    ci_low: float | None
    ci_high: float | None
    p_value: float  # McNemar, the largest over the shared seeds, before correction


def paired_difference(
    values: Sequence[float], anchor_values: Sequence[float]
) -> tuple[float, float | None, float | None]:
    """The mean of `values - anchor_values`, and its t-interval over the pairs (None below two
    pairs; the mean itself when all differences are equal)."""
    values, anchor_values = np.asarray(values, dtype=float), np.asarray(anchor_values, dtype=float)
    differences = values - anchor_values
    mean = float(differences.mean())
    if len(differences) < 2:
        return mean, None, None
    if np.all(differences == differences[0]):
        return mean, mean, mean  # no spread: SciPy's interval would be undefined
    interval = scipy.stats.ttest_rel(values, anchor_values).confidence_interval(CONFIDENCE)
    return mean, float(interval.low), float(interval.high)


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
    """Compare `name` with `anchor` over the seeds both ran.

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
    difference, low, high = paired_difference(accuracy, anchor_accuracy)
    directions = {np.sign(a - b) for a, b in zip(accuracy, anchor_accuracy, strict=True)}
    if len(directions) > 1 or directions == {0}:  # the seeds disagree, or see no difference at all
        p_value = 1.0
    else:
        p_value = max(mcnemar_p(runs[seed], anchor_runs[seed]) for seed in seeds)
    return Comparison(name, anchor, len(seeds), difference, low, high, p_value)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down correction of a family of p-values."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]


def verdict(difference: float | None, corrected_p: float) -> str:
    if difference is None or corrected_p >= ALPHA:
        return NO_DIFFERENCE
    return "better" if difference > 0 else "worse"
