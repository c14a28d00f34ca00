"""Planning: variants become trials (a variant with one seed), and trials become training groups.

Each trial is seeded on its own, so a model's numbers do not depend on which other models ran
before it (`--only` reproduces a full sweep's row). Trials that see the same batches in the same
order (same seed, batch size and epochs) and take the same optimizer steps (the same optimizer
configuration) may train as branches of one fused model (see `explorer.engine.fusion`); a trial
with early stopping never does, since its branch would stop at an epoch of its own.
"""

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence

import numpy as np

from explorer.config.defaults import MAX_FUSED_MODELS
from explorer.models.variants import ModelFacts, Variant, inspect_variant


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per trial
class Trial:
    """One variant trained once with one seed: repeat `repeat` of `variant`."""

    variant: Variant
    facts: ModelFacts
    seed: int
    repeat: int = 0

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def folder(self) -> str:
        """The trial's folder: the variant's name for its first repeat (so a single run and the
        first repeat are the same thing), `<name>@seed<seed>` for the others. '@' is not allowed
        in names, so two trials never share a folder."""
        return self.name if self.repeat == 0 else f"{self.name}@seed{self.seed}"


def repeat_seed(seed: int, repeat: int) -> int:
    """The seed of repeat `repeat`: the run's seed for the first, then independent seeds derived
    from (seed, repeat) with NumPy's SeedSequence."""
    if repeat == 0:
        return seed
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0] % 2**31)


def plan_trials(
    variants: Sequence[Variant], seed: int, repeats: int = 1, facts: Sequence[ModelFacts] = ()
) -> list[Trial]:
    """`repeats` trials per variant, variant by variant.

    Args:
        variants: the variants, in the order to train.
        seed: the run's seed; repeats derive theirs from it (`repeat_seed`).
        repeats: trials per variant.
        facts: each variant's `inspect_variant` facts, when already read; read here otherwise.
    """
    facts = list(facts) or [inspect_variant(variant) for variant in variants]
    return [
        Trial(variant, variant_facts, repeat_seed(seed, repeat), repeat)
        for variant, variant_facts in zip(variants, facts, strict=True)
        for repeat in range(repeats)
    ]


def fusion_key(trial: Trial) -> tuple:
    """Trials with equal keys may train as one fused model. Losses, output activations, widths,
    depths and dropout may differ: each branch keeps its own."""
    return (trial.seed, trial.variant.batch_size, trial.variant.epochs, trial.facts.optimizer)


def plan_groups(trials: Sequence[Trial], *, fuse: bool, max_size: int = MAX_FUSED_MODELS) -> list[list[Trial]]:
    """Split trials into training groups, in order of each group's first trial.

    With `fuse`, trials with equal `fusion_key` share a group (at most `max_size`), unless their
    weights would share a path (the fused optimizer keeps its state by path); otherwise, or when
    nothing matches, a group is one trial. A trial with early stopping is always a group of its
    own: the branches of a fused model train for the same epochs, and it may stop before them.
    """
    if not fuse:
        return [[trial] for trial in trials]
    open_groups: dict[tuple, list[Trial]] = {}
    groups: list[list[Trial]] = []
    for trial in trials:
        if trial.variant.early_stopping:
            groups.append([trial])
            continue
        key = fusion_key(trial)
        group = open_groups.get(key)
        taken = {path for member in group or () for path in member.facts.weight_paths}
        if group is None or len(group) == max_size or taken.intersection(trial.facts.weight_paths):
            group = open_groups[key] = []
            groups.append(group)
        group.append(trial)
    return groups


def trial_key(trial: Trial, data_identity: Mapping[str, object]) -> str:
    """A fingerprint of everything that decides a trial's numbers: the model's architecture and
    compile configuration, epochs, batch size, early stopping's patience, seed, and the data
    (source, sizes, validation split, quick subsampling). Without early stopping the fingerprint
    is the one earlier versions gave, so their runs still resume."""
    payload = {
        "model": trial.facts.fingerprint,
        "epochs": trial.variant.epochs,
        "batch_size": trial.variant.batch_size,
        "seed": trial.seed,
        "data": data_identity,
    }
    if trial.variant.early_stopping:
        payload["early_stopping"] = trial.variant.early_stopping
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def group_id(trial_keys: Sequence[str]) -> str:
    """A fused group's identity: its members' fingerprints, in order. A changed member or a
    different grouping gives a new identity, so an old group checkpoint is never picked up."""
    return hashlib.sha256("+".join(trial_keys).encode()).hexdigest()[:12]
