"""How many runs a question needs: the power of the paired t-test over seeds.

The paired t-test on n seeds is a one-sample t-test on the n differences, so its power is that of
statsmodels' `TTestPower`: the chance that a true difference of `effect_size` standard deviations
of the per-seed differences is detected. Two questions are asked of it:

- the smallest difference this sweep could have detected (80% power at its number of runs);
- for a difference that was not detected, about how many runs would detect it (80% power), taking
  the observed difference and spread as if they were the truth: a rough guide, not a promise.

Both are asked at the run's strictest level, 0.05 divided by its number of comparisons (the first
step of Holm's correction, Bonferroni's level), so a difference found detectable here is detectable
after the correction too. With one run there is no spread between runs to measure, so no answer.

`power` computes the noncentral t probabilities with SciPy, as statsmodels does: statsmodels'
own `TTestPower.power` returns NaN for the very large noncentralities that two or three runs at a
strict level need, and its solver then stops at its search bound. The tests check that the two
agree where statsmodels is defined.
"""

import math

import scipy.optimize
import scipy.stats

from explorer.config.defaults import ALPHA, MAX_RUNS_NEEDED, POWER


def power(effect_size: float, runs: int, alpha: float) -> float:
    """The two-sided paired t-test's power: the chance it rejects at level `alpha` with `runs`
    pairs when the true mean difference is `effect_size` standard deviations of the differences."""
    freedom = runs - 1
    critical = scipy.stats.t.ppf(1 - alpha / 2, freedom)
    noncentrality = effect_size * math.sqrt(runs)
    # The lower tail as the upper tail of the mirrored distribution: SciPy's `nct.cdf` far in the
    # tail returns NaN where `nct.sf` returns the (negligible) probability.
    upper = scipy.stats.nct.sf(critical, freedom, noncentrality)
    lower = scipy.stats.nct.sf(critical, freedom, -noncentrality)
    return float(upper + lower)


def strictest_alpha(comparisons: int) -> float:
    """The level of Holm's first step over `comparisons` tests."""
    return ALPHA / max(comparisons, 1)


def detectable_difference(spread: float | None, runs: int, alpha: float) -> float | None:
    """The smallest true difference (in the units of `spread`) that `runs` paired runs detect with
    `POWER`; None with fewer than two runs or no measured spread."""
    if spread is None or runs < 2:
        return None
    if spread == 0:
        return 0.0
    effect = scipy.optimize.brentq(lambda size: power(size, runs, alpha) - POWER, 1e-9, 1e6)
    return effect * spread


def runs_needed(difference: float, spread: float | None, alpha: float) -> int | None:
    """About how many paired runs detect `difference` with `POWER`, if the spread stays `spread`.

    Returns:
        The number of runs (at least 2), `MAX_RUNS_NEEDED + 1` meaning "more than MAX_RUNS_NEEDED",
        or None when there is no spread or no difference to size.
    """
    if spread is None or spread == 0 or difference == 0:
        return None
    effect = abs(difference) / spread
    if power(effect, MAX_RUNS_NEEDED, alpha) < POWER:
        return MAX_RUNS_NEEDED + 1
    if power(effect, 2, alpha) >= POWER:
        return 2
    return math.ceil(scipy.optimize.brentq(lambda runs: power(effect, runs, alpha) - POWER, 2, MAX_RUNS_NEEDED))
