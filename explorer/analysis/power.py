"""How many runs a question needs: the power of the t-test that gave a comparison its verdict.

A difference is tested with a t statistic, its estimate over its standard error, on `freedom`
degrees of freedom (`explorer.analysis.comparisons`). Its power against a true difference `delta`
is that of a noncentral t with noncentrality `delta / standard_error`. Two questions are asked of it:

- the smallest difference this sweep could have detected (80% power with its runs);
- for a difference that was not detected, about how many runs would detect it (80% power), taking
  the observed difference and spread as if they were the truth: a rough guide, not a promise. With
  `n` runs of each configuration the standard error is `spread / sqrt(n)` and the degrees of freedom
  grow as `freedom_per_run * (n - 1)` (1 for the paired t-test; up to 2 for the two-way model, whose
  two spreads are measured apart).

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


def power(noncentrality: float, freedom: float, alpha: float) -> float:
    """The two-sided t-test's power: the chance it rejects at level `alpha` on `freedom` degrees of
    freedom when the true difference is `noncentrality` standard errors."""
    critical = scipy.stats.t.ppf(1 - alpha / 2, freedom)
    # The lower tail as the upper tail of the mirrored distribution: SciPy's `nct.cdf` far in the
    # tail returns NaN where `nct.sf` returns the (negligible) probability.
    upper = scipy.stats.nct.sf(critical, freedom, noncentrality)
    lower = scipy.stats.nct.sf(critical, freedom, -noncentrality)
    return float(upper + lower)


def strictest_alpha(comparisons: int) -> float:
    """The level of Holm's first step over `comparisons` tests."""
    return ALPHA / max(comparisons, 1)


def detectable_difference(standard_error: float | None, freedom: float | None, alpha: float) -> float | None:
    """The smallest true difference (in the units of `standard_error`) that the test detects with
    `POWER`; None without a standard error or degrees of freedom (one run)."""
    if standard_error is None or freedom is None or not freedom > 0:
        return None
    if standard_error == 0:
        return 0.0
    noncentrality = scipy.optimize.brentq(lambda size: power(size, freedom, alpha) - POWER, 1e-9, 1e6)
    return noncentrality * standard_error


def runs_needed(difference: float, spread: float | None, freedom_per_run: float | None, alpha: float) -> int | None:
    """About how many runs of each configuration detect `difference` with `POWER`, if one run's
    spread of the difference stays `spread`.

    Returns:
        The number of runs (at least 2), `MAX_RUNS_NEEDED + 1` meaning "more than MAX_RUNS_NEEDED",
        or None when there is no spread or no difference to size.
    """
    if spread is None or spread == 0 or difference == 0 or not freedom_per_run:
        return None

    def power_with(runs: float) -> float:
        return power(abs(difference) * math.sqrt(runs) / spread, freedom_per_run * (runs - 1), alpha)

    if power_with(MAX_RUNS_NEEDED) < POWER:
        return MAX_RUNS_NEEDED + 1
    if power_with(2) >= POWER:
        return 2
    return math.ceil(scipy.optimize.brentq(lambda runs: power_with(runs) - POWER, 2, MAX_RUNS_NEEDED))
