"""The sweep's runs as a randomized complete block design: configurations by seeds.

Every configuration of a sweep trains on the same seeds, so a seed is a *block*: whatever a seed
does to every network at once (the validation split, the order of the batches) moves all the
configurations on that seed together. The additive two-way model

    accuracy[configuration, seed] = mean[configuration] + effect[seed] + noise

removes those shared moves with the help of every configuration, not only the two compared, and
leaves each run's own noise as its residual. Each configuration's spread is then estimated from
*its own* residuals (never pooled over configurations: a noisy configuration, or a noisy
reference, keeps its own wide interval), and a difference between two configurations is tested
with Welch's t on the two spreads, its degrees of freedom by Satterthwaite's formula. Against the
paired t-test, which sees only the two configurations' differences (n - 1 degrees of freedom),
the two spreads are measured apart, up to 2(n - 1) degrees of freedom: with three runs the
critical t at Holm's first level over 23 comparisons falls from about 22 to about 7.

Why this model, measured by `benchmarks/comparisons.py` (docs/results.md, "How the comparisons
were chosen"): pooling the noise over configurations (the classic block ANOVA) or moderating the
spreads toward a common value (limma's empirical Bayes) is more powerful when every configuration
is as noisy as the others, but lets the family-wise error rate reach 10-20% when one configuration,
or the reference, is three times noisier; this model stays under 5% in every scenario simulated.

Missing runs (a run that diverged, failed or was interrupted) leave an unbalanced table: the model
is fitted by least squares on the runs there are, and each difference's standard error is the
sandwich over the configurations' own spreads. Everything is computed for a stack of tables at
once (`sims`), which the benchmark uses to simulate thousands of sweeps through this same code.
"""

import dataclasses

import numpy as np

# A configuration's spread is estimated from its own residuals, which also carry a share of the
# others' noise (through the seed effects they estimate, about 1/(configurations - 1) of it), and
# its degrees of freedom are its share of the residuals' ((n - 1)(t - 1)/t). With few configurations
# both cost power: simulated with the comparisons a sweep makes (`benchmarks/comparisons.py
# --crossover`), the paired t-test, which needs no other configuration, detects more with 4 and 6
# configurations, about as much with 8, and less from 9 on. Below this many, it is used instead.
MIN_CONFIGURATIONS = 9


@dataclasses.dataclass(frozen=True)
class BlockFit:
    """Every pair's difference as the two-way model sees it, for each table of a stack.

    Arrays are indexed [table, i, j] for the difference configuration i minus configuration j.
    """

    difference: np.ndarray  # least-squares estimate of mean[i] - mean[j]
    standard_error: np.ndarray  # its standard error, from the two configurations' own spreads
    freedom: np.ndarray  # Satterthwaite's degrees of freedom for that standard error
    spread: np.ndarray  # one run's standard deviation of the difference: sqrt(var_i + var_j)
    variance: np.ndarray  # [table, i]: each configuration's own variance between runs
    estimable: np.ndarray  # [i, j]: whether the seeds the two ran connect them at all


def fit_blocks(accuracy: np.ndarray) -> BlockFit:
    """Fit the additive configuration + seed model to a stack of tables.

    Args:
        accuracy: [table, configuration, seed] test accuracies, NaN where a run is missing. Every
            table must miss the same runs (the design is shared), and every configuration must
            have at least two runs.
    """
    accuracy = np.asarray(accuracy, dtype=float)
    present = ~np.isnan(accuracy[0])
    configurations, seeds = present.shape
    rows, columns = np.nonzero(present)
    design = np.zeros((len(rows), configurations + seeds))
    design[np.arange(len(rows)), rows] = 1
    design[np.arange(len(rows)), configurations + columns] = 1
    member = design[:, :configurations]  # [run, configuration]: which configuration a run is of

    solve = np.linalg.pinv(design)  # [parameter, run]; the model is over-parametrized on purpose
    residual_maker = np.eye(len(rows)) - design @ solve
    # Each configuration's residual sum of squares has expectation sum_c A[i, c] var_c; A[i, i]
    # alone is divided out, so the share of the others' noise makes the estimate larger, not smaller.
    own_share = np.einsum("kc,km,mc->c", member, residual_maker**2, member)
    own_freedom = member.T @ np.diag(residual_maker)  # the configuration's share of residual df

    weights = solve[:configurations].T  # [run, configuration]: mean[i] = weights[:, i] @ runs
    pair_weights = weights[:, :, None] - weights[:, None, :]  # [run, i, j]
    projection = solve @ design
    contrast = np.eye(configurations + seeds)[:configurations]
    pair_contrast = contrast[:, None, :] - contrast[None, :, :]
    estimable = np.all(np.abs(pair_contrast @ projection.T - pair_contrast) < 1e-8, axis=2)
    loading = np.einsum("kij,kc->ijc", pair_weights**2, member)  # variance of i - j = loading @ var

    observed = accuracy[:, rows, columns]  # [table, run]
    residuals = observed @ residual_maker.T
    variance = ((residuals**2) @ member) / own_share
    difference = np.einsum("sk,kij->sij", observed, pair_weights)
    parts = np.einsum("ijc,sc->sijc", loading, variance)
    error_variance = parts.sum(axis=3)
    with np.errstate(divide="ignore", invalid="ignore"):
        freedom = error_variance**2 / np.sum(parts**2 / own_freedom, axis=3)
    spread = np.sqrt(variance[:, :, None] + variance[:, None, :])
    return BlockFit(difference, np.sqrt(error_variance), freedom, spread, variance, estimable)
