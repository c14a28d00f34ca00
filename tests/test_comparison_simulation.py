"""A small version of benchmarks/comparisons.py: the chosen comparison keeps the family-wise
false-positive rate near 5% in the hardest scenarios, and the simulation would catch one that
does not (a test that can fail)."""

import dataclasses

import numpy as np
import pytest

from explorer.analysis import simulation
from explorer.config.defaults import DEFAULT_REPEATS

SWEEPS = 400
# 5% plus three Monte Carlo standard errors at 400 sweeps (1.1 points each).
BOUND = 0.05 + 3 * np.sqrt(0.05 * 0.95 / SWEEPS)


@pytest.fixture(scope="module")
def hard_scenarios():
    named = {scenario.name: scenario for scenario in simulation.scenarios()}
    return [named["one configuration 3x noisier"], named["the reference 3x noisier"]]


@pytest.mark.parametrize("runs", [3, DEFAULT_REPEATS])
def test_the_chosen_method_keeps_the_family_wise_rate(hard_scenarios, runs):
    for scenario in hard_scenarios:
        rates = simulation.error_rates(simulation.block_test, np.random.default_rng(7), SWEEPS, runs, scenario)
        assert rates.false_positive <= BOUND, scenario.name
        assert rates.false_positive_low <= rates.false_positive <= rates.false_positive_high


def test_the_simulation_catches_a_method_that_is_too_sure(hard_scenarios):
    # The same model with every standard error halved: it must fail the bound.
    def overconfident(test):
        fit = simulation.fit_blocks(test)
        halved = dataclasses.replace(fit, standard_error=fit.standard_error / 2)
        return simulation.p_values(halved)

    rates = simulation.error_rates(overconfident, np.random.default_rng(7), SWEEPS, 3, hard_scenarios[0])
    assert rates.false_positive > BOUND


def test_the_default_runs_detect_the_width_effects():
    # The target: 80% power for the four width effects the 7-run sweep measured, with the
    # default number of runs, on the spreads measured on full MNIST (at 400 sweeps, 0.75 leaves
    # room for Monte Carlo error around a true 80% or more).
    scenario = simulation.scenarios()[1]
    rates = simulation.error_rates(simulation.block_test, np.random.default_rng(8), SWEEPS, DEFAULT_REPEATS, scenario)
    assert min(rates.power[i] for i in simulation.WIDTHS) >= 0.75
