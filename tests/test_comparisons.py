"""Paired comparisons against numbers computed by hand: the paired t-test over seeds (its p-value,
interval and power), McNemar's exact test for one run, Holm's correction, and the verdicts."""

import math

import numpy as np
import pytest
import scipy.stats
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


def table(rows, seeds=None):
    """configuration -> seed -> accuracy, from {name: [accuracy on seed 0, 1, ...]} (None: missing)."""
    return {
        name: {
            seed: value for seed, value in zip(seeds or range(len(values)), values, strict=True) if value is not None
        }
        for name, values in rows.items()
    }


def fabricated(configurations=10, runs=3, effects=None, spreads=None, seed=0):
    """A sweep with known truths: big seed effects, each configuration's own noise."""
    rng = np.random.default_rng(seed)
    effects = effects or {}
    spreads = spreads or {}
    seed_effects = rng.normal(0, 0.01, runs)  # a point of accuracy either way, shared by all
    return {
        f"c{i}": list(
            0.97 + effects.get(f"c{i}", 0.0) + seed_effects + rng.normal(0, spreads.get(f"c{i}", 0.001), runs)
        )
        for i in range(configurations)
    }


def test_the_two_way_model_by_hand():
    # A balanced table: each difference is the difference of the means, and its standard error comes
    # from the two configurations' own residuals of the additive model (configuration + seed).
    rows = fabricated(configurations=10, runs=4, seed=3)
    accuracy = np.array(list(rows.values()))
    t, n = accuracy.shape
    residuals = accuracy - accuracy.mean(1, keepdims=True) - accuracy.mean(0, keepdims=True) + accuracy.mean()
    variance = (residuals**2).sum(1) / ((n - 1) * (1 - 1 / t) ** 2)
    found = comparisons.compare_configurations(table(rows), table(rows), "c0").against("reference")["c1"]
    assert found.test == comparisons.BLOCK_T
    assert found.difference == pytest.approx(accuracy[1].mean() - accuracy[0].mean(), abs=1e-12)
    error = math.sqrt((variance[0] + variance[1]) / n)
    assert found.standard_error == pytest.approx(error)
    each = (n - 1) * (t - 1) / t  # each configuration's share of the residual degrees of freedom
    freedom = (variance[0] + variance[1]) ** 2 / ((variance[0] ** 2 + variance[1] ** 2) / each)
    assert found.freedom == pytest.approx(freedom)
    assert found.p_value == pytest.approx(2 * scipy.stats.t.sf(abs(found.difference) / error, freedom))
    half = scipy.stats.t.ppf(0.975, freedom) * error
    assert (found.ci_low, found.ci_high) == (
        pytest.approx(found.difference - half),
        pytest.approx(found.difference + half),
    )


def test_known_effects_are_found_through_large_seed_effects():
    # A seed moves every configuration by about a point; c1 is a point better, c2 a point worse, the
    # others the same as the reference: only the two are called, with the right sign.
    rows = fabricated(effects={"c1": 0.01, "c2": -0.01}, seed=1)
    found = comparisons.compare_configurations(table(rows), table(rows), "c0")
    verdicts = {name: c.verdict for name, c in found.against("reference").items()}
    assert verdicts == {"c1": "better", "c2": "worse", **{f"c{i}": comparisons.NOT_DETECTED for i in range(3, 10)}}
    assert all(c.corrected_p < 0.05 for c in found.comparisons if c.verdict != comparisons.NOT_DETECTED)
    assert found.best == "c1" and found.family == 9 + 8  # the best against the reference counted once
    mirrored = found.against("best")["c0"]  # the reference's row against the best: the same test, turned round
    direct = found.against("reference")["c1"]
    assert (mirrored.difference, mirrored.verdict, mirrored.corrected_p) == (
        -direct.difference,
        "worse",
        direct.corrected_p,
    )


def test_a_noisy_configuration_keeps_its_own_wide_interval():
    rows = fabricated(spreads={"c3": 0.01}, seed=2)
    found = comparisons.compare_configurations(table(rows), table(rows), "c0").against("reference")
    widths = {name: c.ci_high - c.ci_low for name, c in found.items()}
    assert widths["c3"] > 2 * max(width for name, width in widths.items() if name != "c3")


def test_missing_runs_are_allowed():
    rows = fabricated(configurations=10, runs=4, effects={"c1": 0.01}, seed=4)
    rows["c1"][2] = None  # diverged on its third seed
    rows["c2"] = [None, None, None, 0.97]  # one run only: no spread of its own
    found = comparisons.compare_configurations(table(rows), table(rows), "c0")
    c1 = found.against("reference")["c1"]
    assert (c1.test, c1.seeds, c1.verdict) == (comparisons.BLOCK_T, 3, "better")
    # Least squares on the runs there are: the seed effects come from the complete configurations.
    complete = np.array([values for name, values in rows.items() if name not in ("c1", "c2")])
    seeds = complete.mean(0) - complete.mean()
    observed = [i for i in range(4) if rows["c1"][i] is not None]
    estimate = np.mean([rows["c1"][i] - seeds[i] for i in observed]) - np.mean(rows["c0"] - seeds)
    assert c1.difference == pytest.approx(estimate, abs=1e-9)
    # c2's one run has no spread between runs to test: with no answers to the test digits, no comparison.
    assert "c2" not in found.against("reference")


def test_fallbacks_few_configurations_paired_and_one_run_mcnemar():
    few = comparisons.compare_configurations(
        table({"a": [0.98, 0.97, 0.99], "b": [0.97, 0.97, 0.97]}), table({"a": [0.9], "b": [0.8]}), "b"
    )
    several = few.against("reference")["a"]
    assert few.family == 1  # "a" is also the best: one comparison, shown from both sides
    assert (several.test, several.seeds, several.freedom) == (comparisons.PAIRED_T, 3, 2.0)
    assert several.p_value == pytest.approx(1 - math.sqrt(3) / math.sqrt(5), abs=1e-9)
    # One shared seed: McNemar on those two trained models' answers, with no interval over runs.
    answers_of = {"a": runs_with_accuracy([0.98]), "b": runs_with_accuracy([0.97])}
    one = comparisons.compare_configurations(table({"a": [0.98], "b": [0.97]}), {}, "b", answers_of)
    (mcnemar,) = one.comparisons
    assert (mcnemar.test, mcnemar.seeds, mcnemar.ci_low, mcnemar.spread, mcnemar.detectable) == (
        comparisons.MCNEMAR, 1, None, None, None,
    )  # fmt: skip
    # 10 digits only "a" gets right, none only "b": p = 2 / 2^10.
    assert mcnemar.difference == pytest.approx(0.01) and mcnemar.p_value == pytest.approx(2 / 2**10)
    no_shared_seed = comparisons.compare_configurations(table({"a": [0.9]}, [1]) | table({"b": [0.8]}, [2]), {}, "b")
    assert no_shared_seed.comparisons == ()


def test_identical_configurations_are_said_identical_not_sized():
    rows = fabricated(seed=5)
    rows["c7"] = list(rows["c0"])
    found = comparisons.compare_configurations(table(rows), table(rows), "c0").against("reference")["c7"]
    assert found.identical and found.verdict == comparisons.NOT_DETECTED
    assert (found.difference, found.spread, found.detectable, found.runs_needed) == (0.0, 0.0, 0.0, None)


def test_the_best_is_chosen_by_validation_accuracy_alone():
    rows = fabricated(effects={"c1": 0.01}, seed=6)
    validation = table(rows) | {"c4": {0: 0.999, 1: 0.999, 2: 0.999}}
    assert comparisons.compare_configurations(table(rows), validation, "c0").best == "c4"
    assert comparisons.compare_configurations(table(rows), validation, "absent").reference is None


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
    # The paired t-test on n runs: noncentrality effect * sqrt(n), n - 1 degrees of freedom.
    for effect, runs, alpha in ((0.5, 10, 0.05), (1.2, 5, 0.05), (0.8, 20, 0.01)):
        assert power.power(effect * math.sqrt(runs), runs - 1, alpha) == pytest.approx(
            TTestPower().power(effect_size=effect, nobs=runs, alpha=alpha), abs=1e-9
        )
    assert power.power(0.0, 4, 0.05) == pytest.approx(0.05)  # no difference: rejected at the level only
    # statsmodels' solver: 33.37 runs for an effect of half a standard deviation at 5%.
    assert power.runs_needed(0.005, 0.01, 1.0, 0.05) == math.ceil(
        TTestPower().solve_power(effect_size=0.5, nobs=None, alpha=0.05, power=0.8)
    )
    assert power.detectable_difference(0.01 / math.sqrt(10), 9, 0.05) == pytest.approx(
        0.01 * TTestPower().solve_power(effect_size=None, nobs=10, alpha=0.05, power=0.8), rel=1e-6
    )


def test_power_at_few_runs_and_strict_levels_where_statsmodels_gives_up():
    # Three runs at 0.05 / 24: statsmodels' TTestPower.power is NaN there; ours is a number, and the
    # detectable effect has exactly 80% power by construction.
    alpha = power.strictest_alpha(24)
    assert alpha == pytest.approx(0.05 / 24)
    detectable = power.detectable_difference(1.0, 2, alpha)
    assert 10 < detectable < 30 and power.power(detectable, 2, alpha) == pytest.approx(0.8, abs=1e-6)
    assert power.detectable_difference(None, 2, alpha) is None and power.detectable_difference(1.0, None, alpha) is None
    assert power.runs_needed(1e-4, 1.0, 1.0, alpha) == power.MAX_RUNS_NEEDED + 1  # hopeless: "more than 1,000"
    assert power.runs_needed(1000.0, 1.0, 1.0, alpha) == 2 and power.runs_needed(100.0, 1.0, 1.0, alpha) == 3
    assert power.runs_needed(0.0, 1.0, 1.0, alpha) is None and power.runs_needed(0.1, None, 1.0, alpha) is None
    # The two-way model's degrees of freedom grow twice as fast: it needs fewer runs, never more.
    assert power.runs_needed(0.3, 1.0, 2.0, alpha) < power.runs_needed(0.3, 1.0, 1.0, alpha)


def test_when_the_reference_is_the_best_each_comparison_is_made_once():
    from explorer.analysis import findings, stats

    rows = fabricated(effects={"c0": 0.01}, seed=7)  # the reference is clearly the best
    found = comparisons.compare_configurations(table(rows), table(rows), "c0")
    assert found.best == found.reference == "c0" and found.family == 9
    by_reference, by_best = found.against("reference"), found.against("best")
    assert by_best.keys() == by_reference.keys()
    assert all(by_best[name].corrected_p == by_reference[name].corrected_p for name in by_best)
    results = [
        {"name": name, "repeat": seed, "seed": seed, "status": "ok", "test_accuracy": value, "test_loss": 0.1,
         "val_accuracy": value, "config": {}}
        for name, values in rows.items() for seed, value in enumerate(values)
    ]  # fmt: skip
    assert findings.find(stats.summary_rows(results, reference="c0"), "c0").comparisons == 9
