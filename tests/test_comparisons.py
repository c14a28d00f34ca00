"""Paired comparisons against known numbers: the paired t-interval, McNemar's exact test, Holm's
correction, and the verdicts they give."""

import numpy as np
import pytest

import explorer.analysis.comparisons as comparisons


def answers(pattern: str) -> np.ndarray:
    """'1' for a digit answered right, '0' for wrong."""
    return np.array([character == "1" for character in pattern])


def test_the_paired_interval_by_hand():
    # Differences 0.01, 0.00, 0.02: mean 0.01, standard deviation 0.01, standard error 0.01 / sqrt(3);
    # t(0.975, 2 degrees of freedom) = 4.302653, so the half-width is 0.024841.
    mean, low, high = comparisons.paired_difference([0.98, 0.97, 0.99], [0.97, 0.97, 0.97])
    assert mean == pytest.approx(0.01)
    assert (low, high) == (pytest.approx(0.01 - 0.0248414, abs=1e-6), pytest.approx(0.01 + 0.0248414, abs=1e-6))
    assert comparisons.paired_difference([0.98], [0.97]) == (pytest.approx(0.01), None, None)


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
    assert comparisons.verdict(0.01, 0.05) == comparisons.NO_DIFFERENCE
    assert comparisons.verdict(None, 0.0) == comparisons.NO_DIFFERENCE


def test_a_difference_must_show_on_every_shared_seed():
    many_right, few_right = answers("1" * 100), answers("0" * 30 + "1" * 70)
    # Better on seed 1, worse on seed 2: the seeds disagree, so no difference is claimed.
    disagreeing = comparisons.paired_comparison({1: many_right, 2: few_right}, {1: few_right, 2: many_right}, "a", "b")
    assert disagreeing.p_value == 1.0 and disagreeing.seeds == 2
    # Better on both: the p-value is the larger of the two seeds' (here equal).
    agreeing = comparisons.paired_comparison(
        {1: many_right, 2: many_right, 3: many_right}, {1: few_right, 2: few_right}, "a", "b"
    )
    assert agreeing.seeds == 2 and agreeing.difference == pytest.approx(0.30)
    assert agreeing.p_value == pytest.approx(comparisons.mcnemar_p(many_right, few_right))
    assert comparisons.paired_comparison({1: many_right}, {2: few_right}, "a", "b") is None  # no shared seed
