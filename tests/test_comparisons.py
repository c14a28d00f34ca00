"""Paired comparisons against numbers computed by hand: the paired t-test over seeds (its p-value,
interval and power), McNemar's exact test for one run, Holm's correction, and the verdicts."""

import math

import numpy as np
import pytest
from statsmodels.stats.power import TTestPower

import explorer.analysis.comparisons as comparisons
import explorer.analysis.power as power


def answers(pattern: str) -> np.ndarray:
    """'1' for a digit answered right, '0' for wrong."""
    return np.array([character == "1" for character in pattern])


def runs_with_accuracy(accuracies, digits=1000):
    """seed -> right/wrong answers on `digits` test digits with the given accuracy on each seed."""
    return {seed: np.arange(digits) < round(accuracy * digits) for seed, accuracy in enumerate(accuracies)}


def test_the_paired_t_test_by_hand():
    # Differences 0.01, 0.00, 0.02: mean 0.01, standard deviation 0.01, standard error 0.01 / sqrt(3),
    # so t = sqrt(3) on 2 degrees of freedom. With 2 degrees of freedom the t distribution's CDF is
    # 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - sqrt(3) / sqrt(5) = 0.225403; t(0.975, 2) = 4.302653,
    # so the interval's half-width is 4.302653 * 0.01 / sqrt(3) = 0.0248414.
    mean, low, high, spread, p_value = comparisons.paired_t([0.98, 0.97, 0.99], [0.97, 0.97, 0.97])
    assert mean == pytest.approx(0.01) and spread == pytest.approx(0.01)
    assert p_value == pytest.approx(1 - math.sqrt(3) / math.sqrt(5), abs=1e-9)
    assert (low, high) == (pytest.approx(0.01 - 0.0248414, abs=1e-6), pytest.approx(0.01 + 0.0248414, abs=1e-6))
    # Every difference the same: no spread, so the interval is the difference itself.
    assert comparisons.paired_t([0.98, 0.98], [0.97, 0.97]) == pytest.approx((0.01, 0.01, 0.01, 0.0, 0.0))


def test_several_runs_give_the_paired_t_test_and_one_run_mcnemar():
    several = comparisons.paired_comparison(
        runs_with_accuracy([0.98, 0.97, 0.99]), runs_with_accuracy([0.97, 0.97, 0.97]), "a", "b"
    )
    assert (several.test, several.seeds) == (comparisons.PAIRED_T, 3)
    assert several.p_value == pytest.approx(1 - math.sqrt(3) / math.sqrt(5), abs=1e-9)
    assert several.spread == pytest.approx(0.01) and several.ci_low < 0 < several.ci_high
    # One shared seed: McNemar on those two trained models' answers, with no interval over runs.
    one = comparisons.paired_comparison(runs_with_accuracy([0.98]), runs_with_accuracy([0.97, 0.5]), "a", "b")
    assert (one.test, one.seeds, one.ci_low, one.spread) == (comparisons.MCNEMAR, 1, None, None)
    # 10 digits only "a" gets right, none only "b": p = 2 / 2^10.
    assert one.difference == pytest.approx(0.01) and one.p_value == pytest.approx(2 / 2**10)
    assert comparisons.paired_comparison({1: answers("1")}, {2: answers("0")}, "a", "b") is None  # no shared seed


def test_power_grows_with_runs():
    # The same spread of differences, three runs and then nine: the verdict can only get clearer.
    three = comparisons.paired_t([0.98, 0.97, 0.99], [0.97, 0.97, 0.97])[-1]
    nine = comparisons.paired_t([0.98, 0.97, 0.99] * 3, [0.97] * 9)[-1]
    assert three > comparisons.ALPHA > nine


def test_mcnemar_exact_on_a_constructed_table():
    # 5 digits only the first gets right, 1 only the second: the exact test is a two-sided binomial
    # test of 1 in 6 at one half, p = 2 * (1 + 6) / 64 = 0.21875.
    first = answers("1111111" + "11111" + "0" + "00")
    second = answers("1111111" + "00000" + "1" + "00")
    assert comparisons.mcnemar_p(first, second) == pytest.approx(0.21875)
    assert comparisons.mcnemar_p(first, first) == pytest.approx(1.0)


def test_holm_on_known_p_values():
    # Sorted 0.01, 0.03, 0.04 are multiplied by 3, 2, 1 and made monotone: 0.03, 0.06, 0.06.
    assert comparisons.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert comparisons.holm([]) == []


def test_verdicts():
    assert comparisons.verdict(0.01, 0.001) == "better"
    assert comparisons.verdict(-0.01, 0.001) == "worse"
    assert comparisons.verdict(0.01, 0.05) == comparisons.NOT_DETECTED
    assert comparisons.verdict(None, 0.0) == comparisons.NOT_DETECTED


def test_power_agrees_with_statsmodels_where_statsmodels_is_defined():
    for effect, runs, alpha in ((0.5, 10, 0.05), (1.2, 5, 0.05), (0.8, 20, 0.01)):
        assert power.power(effect, runs, alpha) == pytest.approx(
            TTestPower().power(effect_size=effect, nobs=runs, alpha=alpha), abs=1e-9
        )
    assert power.power(0.0, 5, 0.05) == pytest.approx(0.05)  # no difference: rejected at the level only
    # statsmodels' solver: 33.37 runs for an effect of half a standard deviation at 5%.
    assert power.runs_needed(0.005, 0.01, 0.05) == math.ceil(
        TTestPower().solve_power(effect_size=0.5, nobs=None, alpha=0.05, power=0.8)
    )
    assert power.detectable_difference(0.01, 10, 0.05) == pytest.approx(
        0.01 * TTestPower().solve_power(effect_size=None, nobs=10, alpha=0.05, power=0.8), rel=1e-6
    )


def test_power_at_few_runs_and_strict_levels_where_statsmodels_gives_up():
    # Three runs at 0.05 / 24: statsmodels' TTestPower.power is NaN there; ours is a number, and the
    # detectable effect has exactly 80% power by construction.
    alpha = power.strictest_alpha(24)
    assert alpha == pytest.approx(0.05 / 24)
    detectable = power.detectable_difference(1.0, 3, alpha)
    assert 10 < detectable < 30 and power.power(detectable, 3, alpha) == pytest.approx(0.8, abs=1e-6)
    assert power.detectable_difference(None, 3, alpha) is None and power.detectable_difference(1.0, 1, alpha) is None
    assert power.runs_needed(1e-4, 1.0, alpha) == power.MAX_RUNS_NEEDED + 1  # hopeless: "more than 1,000"
    assert power.runs_needed(1000.0, 1.0, alpha) == 2 and power.runs_needed(100.0, 1.0, alpha) == 3
    assert power.runs_needed(0.0, 1.0, alpha) is None and power.runs_needed(0.1, None, alpha) is None
