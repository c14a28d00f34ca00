"""What a sweep will cost before it starts: its FLOPs, and an estimate of its wall time.

The estimate is a model, said as one: the sweep's matrix-product FLOPs (`ModelFacts.flops_per_epoch`)
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

# Measured on this project's 2-core CPU (JAX, its compile cache warm, full MNIST): the fused step
# reached about 0.9 of NumPy's matrix-product rate (a 6-network grid, 5 epochs: 2.3 s an epoch for
# 358 GFLOP at 173 GFLOP/s; the default sweep: about 5 s for 713 GFLOP), and these fixed costs.
STEP_EFFICIENCY = 0.9


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
    """A sweep's cost: FLOPs of its matrix products, and the estimated wall time."""

    flops: int
    seconds: float
    rate: float  # the measured FLOP/s it was estimated from

    def line(self) -> str:
        minutes, seconds = divmod(round(self.seconds), 60)
        took = f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
        return (
            f"Estimate: about {took} ({self.flops / 1e12:.2f} TFLOP of matrix products; "
            f"NumPy here: {self.rate / 1e9:.0f} GFLOP/s)"
        )


def estimate_sweep(groups: Sequence[Sequence[Trial]], train_samples: int, validation_samples: int) -> Estimate:
    """Estimate the wall time of training `groups` (each trained as one) on these sample counts."""
    rate = matmul_rate()
    flops, seconds = 0, SECONDS_PER_RUN
    for group in groups:
        variant = group[0].variant
        group_flops = sum(trial.facts.flops_per_epoch(train_samples, validation_samples) for trial in group)
        steps = math.ceil(train_samples / variant.batch_size) + math.ceil(validation_samples / variant.batch_size)
        flops += group_flops * variant.epochs
        seconds += SECONDS_PER_GROUP + SECONDS_PER_MODEL * len(group)
        seconds += variant.epochs * (group_flops / (rate * STEP_EFFICIENCY) + steps * SECONDS_PER_STEP)
    return Estimate(flops, seconds, rate)


def plan_text(groups: Sequence[Sequence[Trial]], train_samples: int, validation_samples: int) -> str:
    """What a sweep would train: each group (fused or alone) with its models' parameters and FLOPs
    per epoch, the totals, and the estimate of the wall time."""
    lines = [f"Plan: {sum(map(len, groups))} trial(s) in {len(groups)} group(s), nothing trained or written."]
    for number, group in enumerate(groups, start=1):
        variant, trial = group[0].variant, group[0]
        together = f"{len(group)} fused" if len(group) > 1 else "alone"
        lines.append(
            f"[{number}/{len(groups)}] {together}: seed {trial.seed}, {variant.epochs} epochs, batch {variant.batch_size}"
        )
        for member in group:
            flops = member.facts.flops_per_epoch(train_samples, validation_samples)
            lines.append(
                f"    {member.folder:<40} {member.facts.parameters:>11,} params  {flops / 1e9:>9.1f} GFLOP/epoch"
            )
    lines.append(estimate_sweep(groups, train_samples, validation_samples).line())
    return "\n".join(lines)
