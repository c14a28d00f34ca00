"""Which comparison can a sweep trust? Simulated sweeps under the null and under known effects.

Simulates sweeps of the default shape (13 configurations, the best chosen by validation accuracy,
each compared with the reference and with the best, Holm's correction over the 23 distinct
comparisons; `explorer.analysis.simulation`) and prints, for each scenario, number of runs and
method, the family-wise false-positive rate under the null with its 95% Monte Carlo interval, and
the power to detect the differences the 7-run default sweep measured (32, 64, 256 and 512 units
against 128, and softmax regression).

Methods:
- chosen: the two-way model with each configuration's own spread (`explorer.analysis.blocks`),
  what `compare_configurations` uses;
- paired t: the paired t-test over seeds (the method before it);
- pooled: the classic block ANOVA, the noise pooled over every configuration (a candidate);
- Levene, then pooled or paired: a guard against unequal spreads first (Levene's test, median
  centred, on the two-way residuals), the pooled test if it passes, else the paired t: the whole
  two-stage procedure simulated, since testing first changes the error rate (a candidate);
- moderated: each configuration's spread moderated toward a common value by empirical Bayes
  (Smyth 2004, limma's `squeezeVar` by moments), per configuration so that the comparisons sharing
  the reference share its moderated spread (a candidate).

    python benchmarks/comparisons.py                      # 4,000 sweeps each, about 5 min
    python benchmarks/comparisons.py --sweeps 500 --runs 3
    python benchmarks/comparisons.py --crossover          # from how many configurations, ~1 min
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from explorer.analysis import simulation
from explorer.analysis.blocks import fit_blocks


def _p_values(difference: np.ndarray, error: np.ndarray, freedom) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(2 * scipy.stats.t.sf(np.abs(difference / error), freedom), nan=1.0)


def pooled_test(test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The block ANOVA: one residual variance for every configuration, (t - 1)(n - 1) df."""
    _, configurations, runs = test.shape
    residuals = (
        test
        - test.mean(axis=2, keepdims=True)
        - test.mean(axis=1, keepdims=True)
        + test.mean(axis=(1, 2), keepdims=True)
    )
    freedom = (configurations - 1) * (runs - 1)
    error = np.sqrt(2 * (residuals**2).sum(axis=(1, 2)) / freedom / runs)[:, None, None]
    difference = test.mean(axis=2)[:, :, None] - test.mean(axis=2)[:, None, :]
    return difference, _p_values(difference, error, freedom)


def guarded_test(test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two stages: Levene's test (Brown-Forsythe, on the two-way residuals) first; the pooled block
    ANOVA where it finds no difference in spread at 5%, the paired t-test where it does."""
    residuals = (
        test
        - test.mean(axis=2, keepdims=True)
        - test.mean(axis=1, keepdims=True)
        + test.mean(axis=(1, 2), keepdims=True)
    )
    unequal = np.array([scipy.stats.levene(*sweep).pvalue < 0.05 for sweep in residuals])
    difference, pooled = pooled_test(test)
    _, paired = simulation.paired_test(test)
    return difference, np.where(unequal[:, None, None], paired, pooled)


def _prior(variance: np.ndarray, freedom: float) -> tuple[np.ndarray, np.ndarray]:
    """limma's `fitFDist` by moments on the log variances: the prior's df and value, per sweep."""
    logs = np.log(np.maximum(variance, 1e-300))
    centred = logs - scipy.special.digamma(freedom / 2) + np.log(freedom / 2)
    excess = centred.var(axis=1, ddof=1) - scipy.special.polygamma(1, freedom / 2)
    prior_freedom = np.full(len(variance), np.inf)
    for sweep in np.nonzero(excess > 0)[0]:
        half = scipy.optimize.brentq(lambda x, e=excess[sweep]: scipy.special.polygamma(1, x) - e, 1e-8, 1e8)
        prior_freedom[sweep] = 2 * half
    finite = np.isfinite(prior_freedom)
    adjust = np.where(
        finite,
        scipy.special.digamma(np.where(finite, prior_freedom, 2) / 2) - np.log(np.where(finite, prior_freedom, 2) / 2),
        0,
    )
    return prior_freedom, np.exp(centred.mean(axis=1) + adjust)


def moderated_test(test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-configuration spreads from the two-way model, moderated toward a common value."""
    fit = fit_blocks(test)
    runs = test.shape[2]
    freedom = runs - 1.0
    prior_freedom, prior = _prior(fit.variance, freedom)
    finite = np.isfinite(prior_freedom)[:, None]
    weight = np.where(finite, np.where(np.isfinite(prior_freedom), prior_freedom, 0)[:, None], 1.0)
    moderated = np.where(
        finite, (weight * prior[:, None] + freedom * fit.variance) / (weight + freedom), prior[:, None]
    )
    total = np.where(np.isfinite(prior_freedom), prior_freedom + freedom, 1e6)[:, None, None]
    error = np.sqrt((moderated[:, :, None] + moderated[:, None, :]) / runs)
    return fit.difference, _p_values(fit.difference, error, total)


METHODS = {
    "chosen: two-way, own spreads": simulation.block_test,
    "paired t (before)": simulation.paired_test,
    "pooled (candidate)": pooled_test,
    "Levene, then pooled or paired": guarded_test,
    "moderated (candidate)": moderated_test,
}
SHOWN = (*simulation.WIDTHS, simulation.CONFIGURATIONS.index("softmax_regression"))


def crossover(sweeps: int, seed: int) -> None:
    """From how many configurations the two-way model detects more than the paired t-test: one
    configuration 1.5 and one 0.8 spreads better than the reference, the rest equal to it, equal
    spreads, each compared with the reference and with the best as a sweep compares them."""
    print(f"Power against the reference, {sweeps:,} sweeps per cell (1.5 / 0.8 spreads better):")
    print(f"{'configurations':>14} {'runs':>4}   two-way      paired t")
    for configurations in (4, 6, 8, 9, 10, 13):
        for runs in (3, 5, 8):
            rng = np.random.default_rng(seed)
            effects = np.zeros(configurations)
            effects[:2] = 1.5, 0.8
            shape = (sweeps, configurations, runs)
            test = effects[None, :, None] + rng.normal(0, 1, shape) + rng.normal(0, 0.3, (sweeps, 1, runs))
            best = (effects[None, :, None] + rng.normal(0, 1.5, shape)).mean(axis=2).argmax(axis=1)
            cells = []
            for method in (simulation.block_test, simulation.paired_test):
                against_reference = simulation.rejections(method, test, best)[0]
                cells.append(f"{against_reference[:, 0].mean():.2f} {against_reference[:, 1].mean():.2f}")
            print(f"{configurations:>14} {runs:>4}   {cells[0]}    {cells[1]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=4000, help="simulated sweeps per cell (default: 4000)")
    parser.add_argument("--runs", default="3,5,7,8", help="runs per configuration, comma-separated (default: 3,5,7,8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the table here")
    parser.add_argument(
        "--crossover",
        action="store_true",
        help="instead: the two-way model against the paired t by number of configurations",
    )
    args = parser.parse_args()
    if args.crossover:
        crossover(min(args.sweeps, 3000), args.seed)
        return
    runs_list = [int(runs) for runs in args.runs.split(",")]
    started = time.perf_counter()
    print(
        f"{args.sweeps:,} simulated sweeps per cell; family-wise false-positive rate under the null [95% MC interval];"
    )
    print(
        "power to detect the 7-run sweep's differences from dense_128_relu (32, 64, 256, 512 units; softmax regression)\n"
    )
    header = f"{'scenario':34} {'runs':>4}  {'method':30} {'false positives':>22}   power 32 / 64 / 256 / 512 / softmax"
    print(header)
    print("-" * len(header))
    table = []
    for scenario in simulation.scenarios():
        for runs in runs_list:
            for method_name, method in METHODS.items():
                rates = simulation.error_rates(method, np.random.default_rng(args.seed), args.sweeps, runs, scenario)
                power = [rates.power[i] for i in SHOWN]
                print(
                    f"{scenario.name:34} {runs:>4}  {method_name:30} {rates.false_positive:6.1%} "
                    f"[{rates.false_positive_low:5.1%}, {rates.false_positive_high:5.1%}]   "
                    + " / ".join(f"{value:.2f}" for value in power),
                    flush=True,
                )
                table.append({"scenario": scenario.name, "runs": runs, "method": method_name, **rates.__dict__})
        print()
    print(f"{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
