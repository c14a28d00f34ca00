"""Sweeps simulated under known truths, to check a comparison method before it decides a verdict.

A simulated sweep has the default sweep's shape: 13 configurations on the same seeds, one of them
the reference, the best chosen by mean validation accuracy as the sweep chooses it. Each run's
accuracy is its configuration's true mean, plus its seed's effect (shared by every configuration
on that seed), plus the run's own noise with its configuration's spread. Every simulated sweep is
compared the way `compare_configurations` compares a real one: each configuration against the
reference and against the best, the best against the reference once, Holm's correction over them.

Two figures come out of many such sweeps:

- under the null (every configuration equally good), the **family-wise false-positive rate**: the
  share of sweeps with at least one "better" or "worse" verdict, all of them false;
- under known effects (the differences the 7-run default sweep measured), the **power**: the share
  of sweeps in which a configuration's true difference from the reference is detected.

`benchmarks/comparisons.py` prints them for several scenarios and methods; a fast test runs a
small version. Pure NumPy and SciPy: every table of a scenario is tested at once.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import scipy.stats
from statsmodels.stats.proportion import proportion_confint

from explorer.analysis.blocks import BlockFit, fit_blocks
from explorer.config.defaults import ALPHA

# The default sweep, in `model_builder_loop.py`'s order; the reference is dense_128_relu.
CONFIGURATIONS = (
    "dense_32_relu", "dense_64_relu", "dense_128_relu", "dense_256_relu", "dense_512_relu",
    "dense_128_sigmoid", "dense_128_tanh", "dense_128_gelu", "dense_128x2_relu", "dense_128x3_relu",
    "dense_128_relu_sigmoid_out", "softmax_regression", "dense_512x2_relu_dropout",
)  # fmt: skip
REFERENCE = CONFIGURATIONS.index("dense_128_relu")
WIDTHS = tuple(
    CONFIGURATIONS.index(name) for name in ("dense_32_relu", "dense_64_relu", "dense_256_relu", "dense_512_relu")
)
NOISY = CONFIGURATIONS.index("dense_128_tanh")  # the configuration made noisier, or given an outlier run

# Differences from the reference in test accuracy (points), as the 7-run default sweep on full
# MNIST measured them (docs/results.md).
MEASURED_EFFECTS = (-1.01, -0.37, 0.0, 0.27, 0.50, -0.17, 0.01, 0.11, -0.01, 0.03, 0.23, -5.07, 0.45)
# Each configuration's spread between runs (points, standard deviation of a run's own noise), as
# the two-way model estimated it from that same 7-run sweep (`fit_blocks(...).variance`).
MEASURED_SPREADS = (0.178, 0.064, 0.103, 0.118, 0.115, 0.059, 0.129, 0.115, 0.255, 0.161, 0.084, 0.068, 0.183)
SEED_SPREAD = 0.03  # points: what a seed did to every configuration at once there (both tests remove it)
VALIDATION_NOISE = 1.5  # 6,000 validation digits against 10,000 test digits: a noisier figure


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    spreads: tuple[float, ...]  # per configuration, points
    outlier: float = 0.0  # one run of `NOISY` moved by this many of its spreads


def scenarios() -> tuple[Scenario, ...]:
    """Equal spreads; the spreads measured on full MNIST; one configuration three times noisier;
    the reference three times noisier; one run of one configuration an outlier."""
    typical = float(np.median(MEASURED_SPREADS))
    equal = (typical,) * len(CONFIGURATIONS)

    def tripled(index: int) -> tuple[float, ...]:
        return tuple(3 * spread if i == index else spread for i, spread in enumerate(equal))

    return (
        Scenario("equal spreads", equal),
        Scenario("spreads measured on full MNIST", MEASURED_SPREADS),
        Scenario("one configuration 3x noisier", tripled(NOISY)),
        Scenario("the reference 3x noisier", tripled(REFERENCE)),
        Scenario("one run an outlier (-6 spreads)", equal, outlier=-6.0),
    )


def simulate(
    rng: np.random.Generator, sweeps: int, runs: int, scenario: Scenario, effects: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """`sweeps` simulated tables [sweep, configuration, seed] of test accuracy (fractions), and
    each sweep's best configuration by mean validation accuracy."""
    means = 0.97 + np.asarray(effects)[None, :, None] / 100
    spreads = np.asarray(scenario.spreads)[None, :, None] / 100
    shape = (sweeps, len(CONFIGURATIONS), runs)
    seeds = rng.normal(0, SEED_SPREAD / 100, (sweeps, 1, runs))
    test = means + seeds + rng.normal(0, 1, shape) * spreads
    test[:, NOISY, 0] += scenario.outlier * spreads[0, NOISY, 0]
    validation = (
        means
        + rng.normal(0, SEED_SPREAD / 100, (sweeps, 1, runs))
        + rng.normal(0, 1, shape) * spreads * VALIDATION_NOISE
    )
    return test, validation.mean(axis=2).argmax(axis=1)


def p_values(fit: BlockFit) -> tuple[np.ndarray, np.ndarray]:
    """Every pair's difference and two-sided p-value from a fit of the two-way model."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p_values = 2 * scipy.stats.t.sf(np.abs(fit.difference / fit.standard_error), fit.freedom)
    return fit.difference, np.nan_to_num(p_values, nan=1.0)


def block_test(test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chosen method (`explorer.analysis.blocks`): every pair's difference and p-value."""
    return p_values(fit_blocks(test))


def paired_test(test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paired t-test over seeds on every pair (the method before this one)."""
    differences = test[:, :, None, :] - test[:, None, :, :]
    runs = test.shape[2]
    error = differences.std(axis=3, ddof=1) / np.sqrt(runs)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_values = 2 * scipy.stats.t.sf(np.abs(differences.mean(axis=3) / error), runs - 1)
    return differences.mean(axis=3), np.nan_to_num(p_values, nan=1.0)


def holm_rejections(p_values: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Holm's step-down at `ALPHA` on each row of `p_values`, over the entries `counted` alone."""
    p_values = np.where(counted, p_values, np.inf)
    order = np.argsort(p_values, axis=1)
    ranked = np.take_along_axis(p_values, order, axis=1)
    family = counted.sum(axis=1, keepdims=True)
    step = np.arange(p_values.shape[1])[None, :]
    passes = ranked <= ALPHA / np.maximum(family - step, 1)
    first_failure = np.where(passes, p_values.shape[1], step).min(axis=1, keepdims=True)
    rejected = np.zeros_like(passes)
    np.put_along_axis(rejected, order, step < first_failure, axis=1)
    return rejected


@dataclasses.dataclass(frozen=True)
class Rates:
    false_positive: float  # family-wise, under the null
    false_positive_low: float  # its 95% Monte Carlo (Wilson) interval
    false_positive_high: float
    power: tuple[float, ...]  # per configuration: its difference from the reference detected, right sign


def rejections(
    method: Callable, test: np.ndarray, best: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which comparisons each sweep's method rejects: (against the reference, against the best),
    each [sweep, configuration], with the estimated differences (name minus anchor) of both."""
    difference, p_values = method(test)
    sweeps, configurations = test.shape[:2]
    index = np.arange(configurations)
    against_best = p_values[np.arange(sweeps)[:, None], index[None, :], best[:, None]]
    counted_best = (index[None, :] != best[:, None]) & (index[None, :] != REFERENCE)
    counted_reference = np.broadcast_to(index != REFERENCE, (sweeps, configurations))
    rejected = holm_rejections(
        np.concatenate([p_values[:, :, REFERENCE], against_best], axis=1),
        np.concatenate([counted_reference, counted_best], axis=1),
    )
    best_difference = difference[np.arange(sweeps)[:, None], index[None, :], best[:, None]]
    return rejected[:, :configurations], rejected[:, configurations:], difference[:, :, REFERENCE], best_difference


def error_rates(method: Callable, rng: np.random.Generator, sweeps: int, runs: int, scenario: Scenario) -> Rates:
    """The method's family-wise false-positive rate under the null and its power under the
    measured effects, from `sweeps` simulated sweeps of each."""
    test, best = simulate(rng, sweeps, runs, scenario, (0.0,) * len(CONFIGURATIONS))
    against_reference, against_best, _, _ = rejections(method, test, best)
    false = int(np.sum(against_reference.any(axis=1) | against_best.any(axis=1)))
    low, high = proportion_confint(false, sweeps, alpha=0.05, method="wilson")
    test, best = simulate(rng, sweeps, runs, scenario, MEASURED_EFFECTS)
    against_reference, _, difference, _ = rejections(method, test, best)
    right_sign = np.sign(difference) == np.sign(np.asarray(MEASURED_EFFECTS))[None, :]
    power = tuple(float(value) for value in np.mean(against_reference & right_sign, axis=0))
    return Rates(false / sweeps, float(low), float(high), power)
