"""What a sweep will cost before it starts: its FLOPs, and an estimate of its wall time.

The estimate is a model, said as one: the sweep's FLOPs (`ModelFacts.flops_per_epoch`, counted by
`models.flops`; a model whose FLOPs are unknown adds only its steps' and its own fixed costs)
at a rate measured here and now (NumPy's float32 matrix product, the best of ten bursts in 0.5 s),
scaled by how much of that rate Keras' fused training step reached in measured sweeps, plus a cost
per training step, per group (compiling), per model (evaluating and saving) and per run (start-up
and views).
"""

import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np

from explorer.models.trials import Trial
from explorer.models.variants import ModelFacts

# Measured on this project's 2-core CPU (JAX, its compile cache warm, full MNIST): the fused step
# reached about 0.66 of NumPy's matrix-product rate (a 6-network grid, 5 epochs: 2.3 s an epoch for
# 245 GFLOP at 173 GFLOP/s; the default sweep: about 5 s for 520 GFLOP), and these fixed costs.
# It was 0.9 under the old count, which gave the first layer an input gradient too: scaled by the
# default sweep's new/old FLOPs (10.40 / 14.27 TFLOP), so that sweep's estimate stays where it was.
STEP_EFFICIENCY = 0.66


SECONDS_PER_STEP = 0.0005  # dispatching a batch, beyond its matrix products


SECONDS_PER_GROUP = 2.5  # compiling (from JAX's cache) and the first epoch's warm-up


SECONDS_PER_MODEL = 0.4  # evaluation, prediction, saving and its curves


SECONDS_PER_RUN = 22.0  # imports, data, building every model once, the summary, report and figures


def matmul_rate(seconds: float = 0.2, bursts: int = 8) -> float:
    """NumPy's float32 matrix-product rate on this machine now, in FLOP/s, on a dense layer's shape
    (a batch of 128 digits times a 784 x 512 kernel): the best of a few short bursts, after a
    warm-up, so that the BLAS threads' start-up and a passing background task count for little."""
    rng = np.random.default_rng(0)
    inputs, kernel = rng.random((128, 784), np.float32), rng.random((784, 512), np.float32)
    best = 0.0
    for burst in range(bursts + 1):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / bursts:
            inputs @ kernel
            count += 1
        if burst:  # the first burst warms up
            best = max(best, 2 * 128 * 784 * 512 * count / (time.perf_counter() - started))
    return best


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A sweep's cost: the FLOPs counted (`models.flops`), and the estimated wall time."""

    flops: int
    seconds: float
    rate: float  # the measured FLOP/s it was estimated from
    uncounted: int = 0  # models whose FLOPs are unknown: only their steps' fixed costs are in `seconds`

    def line(self) -> str:
        minutes, seconds = divmod(round(self.seconds), 60)
        took = f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
        unknown = (
            f"; {self.uncounted} model(s) of unknown FLOPs left out of both, their time per step only"
            if self.uncounted
            else ""
        )
        return (
            f"Estimate: about {took} ({self.flops / 1e12:.2f} TFLOP counted{unknown}; "
            f"NumPy here: {self.rate / 1e9:.0f} GFLOP/s)"
        )


def estimate_sweep(
    groups: Sequence[Sequence[Trial]], train_samples: int, validation_samples: int, rate: float | None = None
) -> Estimate:
    """Estimate the wall time of training `groups` (each trained as one) on these sample counts, at
    `rate` FLOP/s (measured here, `matmul_rate`, when None). A model whose FLOPs are unknown adds no
    FLOP time: the group's cost per step and per model still count it. Every epoch counts, so a
    trial with early stopping may take less."""
    rate = matmul_rate() if rate is None else rate
    flops, seconds, uncounted = 0, SECONDS_PER_RUN, 0
    for group in groups:
        counts = [trial.facts.flops_per_epoch(train_samples, validation_samples) for trial in group]
        uncounted += counts.count(None)
        flops += sum(count for count in counts if count is not None) * group[0].variant.epochs
        seconds += SECONDS_PER_GROUP + SECONDS_PER_MODEL * len(group)
        seconds += group[0].variant.epochs * epoch_seconds(group, train_samples, validation_samples, rate)
    return Estimate(flops, seconds, rate, uncounted)


def epoch_seconds(group: Sequence[Trial], train_samples: int, validation_samples: int, rate: float) -> float:
    """The estimated seconds of one epoch of `group` trained as one: its counted FLOPs at `rate`
    (scaled by STEP_EFFICIENCY) and its steps' dispatch cost."""
    batch = group[0].variant.batch_size
    counts = [trial.facts.flops_per_epoch(train_samples, validation_samples) for trial in group]
    steps = math.ceil(train_samples / batch) + math.ceil(validation_samples / batch)
    return sum(count for count in counts if count is not None) / (rate * STEP_EFFICIENCY) + steps * SECONDS_PER_STEP


def _flops_column(facts: ModelFacts, train_samples: int, validation_samples: int) -> str:
    """A model's FLOPs per epoch for the plan: in GFLOP, marked when XLA counted them, or unknown."""
    flops = facts.flops_per_epoch(train_samples, validation_samples)
    if flops is None:
        return f"{'unknown':>9} GFLOP/epoch"
    by_xla = " (XLA)" if facts.flops.counted_by == "XLA" else ""
    return f"{flops / 1e9:>9.1f} GFLOP/epoch{by_xla}"


def _together(group: Sequence[Trial], unfused: str | None) -> str:
    """How a group trains, for the plan: fused, or alone and why: early stopping (which never
    fuses: `models.trials.plan_groups`), fusion turned off (`unfused`, `Options.unfused_reason`),
    or nothing that shares its seed, epochs, batch size and optimizer."""
    if len(group) > 1:
        return f"{len(group)} fused"
    patience = group[0].variant.early_stopping
    if patience:
        return f"alone (early stopping, patience {patience})"
    return f"alone ({unfused})" if unfused else "alone"


# What --plan says of its estimate, so that a reader can judge it.
HOW_ESTIMATED = (
    "  (the FLOPs at NumPy's matrix-product rate measured now, times the share of it Keras' fused\n"
    "  step reached in measured sweeps, plus fixed costs per step, group, model and run; while it\n"
    "  trains, every epoch line says the time left from the epochs measured)"
)


def plan_text(
    groups: Sequence[Sequence[Trial]], train_samples: int, validation_samples: int, unfused: str | None = None
) -> str:
    """What a sweep would train: each group (fused, alone, or alone since it stops early) with its
    models' parameters and FLOPs per epoch, the totals, and the estimate of the wall time (every
    epoch counted: early stopping may end a trial sooner)."""
    lines = [f"Plan: {sum(map(len, groups))} trial(s) in {len(groups)} group(s), nothing trained or written."]
    for number, group in enumerate(groups, start=1):
        variant, trial = group[0].variant, group[0]
        together = _together(group, unfused)
        lines.append(
            f"[{number}/{len(groups)}] {together}: seed {trial.seed}, {variant.epochs} epochs, batch {variant.batch_size}"
        )
        for member in group:
            flops = _flops_column(member.facts, train_samples, validation_samples)
            lines.append(f"    {member.folder:<40} {member.facts.parameters:>11,} params  {flops}")
    lines.append(estimate_sweep(groups, train_samples, validation_samples).line())
    lines.append(HOW_ESTIMATED)
    return "\n".join(lines)
