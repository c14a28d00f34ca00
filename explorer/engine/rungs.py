"""A search's batch of candidates, trained rung by rung: a few epochs for all, then on for the
survivors only, from their own weights and optimizer state.

The batch trains as one fused model (`engine.fusion`), each epoch reseeded from (seed, epoch) as
every training is (`callbacks.EpochSeeds`). After a rung, the candidates that go on become a new,
smaller fused model (or one model alone) that keeps their weights, their optimizer's moments and
its step count (`fusion.carry_optimizer_state`), so a survivor's numbers are those it would have
had with the whole batch, or alone: the branches never share a weight or a gradient. Nothing is
written here and no test digit is seen: the search selects on validation accuracy alone, and the
candidates it keeps are trained again, and tested, by the sweep that verifies them.
"""

from collections.abc import Sequence

import numpy as np

from explorer.config.defaults import STEPS_PER_EXECUTION
from explorer.data.prepare import PreparedData
from explorer.engine.callbacks import EpochClock, EpochSeeds, branch_log_key
from explorer.engine.fusion import batches_to_train, carry_optimizer_state, fused_model, hand_over_optimizer_state
from explorer.engine.training import build_members, eval_batch_size
from explorer.models.backend import keras
from explorer.models.trials import Trial, fusion_key
from explorer.models.variants import compile_for_training

RUNG_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def rung_ends(epochs: int, min_epochs: int, reduction_factor: int) -> list[int]:
    """The epochs after which a batch is judged: min_epochs times powers of the reduction factor
    below `epochs`, then `epochs` (the candidates that reach it are complete)."""
    ends, end = [], min_epochs
    while end < epochs:
        ends.append(end)
        end *= reduction_factor
    return [*ends, epochs]


class BatchTraining:
    """The trials of one batch (one seed, batch size, epochs and optimizer configuration), built
    seeded one by one, trained together to each rung's end, and narrowed to the survivors."""

    def __init__(self, trials: Sequence[Trial], data: PreparedData, steps_per_execution: int = STEPS_PER_EXECUTION):
        if len({fusion_key(trial) for trial in trials}) != 1:
            raise ValueError("a batch needs one seed, batch size, epochs and optimizer configuration")
        self.trials, self.data, self.steps_per_execution = list(trials), data, steps_per_execution
        self.members = dict(zip((trial.name for trial in trials), build_members(trials), strict=True))
        members = list(self.members.values())
        fused = len(members) > 1
        self.model = (
            fused_model(members, steps_per_execution, batches_to_train(trials, len(data.x_train)))
            if fused
            else compile_for_training(members[0], steps_per_execution)
        )
        self.epochs_done = 0
        self.history: dict[str, dict[str, list[float]]] = {
            trial.name: {m: [] for m in RUNG_METRICS} for trial in trials
        }
        self.seconds: list[float] = []  # each epoch's, for the batch as it then was

    @property
    def names(self) -> list[str]:
        return [trial.name for trial in self.trials]

    def train_to(self, epoch: int, callbacks: Sequence[keras.callbacks.Callback] = ()) -> None:
        """Train every trial still in the batch up to `epoch` (1-based, inclusive), with the
        caller's `callbacks` after the engine's (one that stops the fit ends it sooner:
        `epochs_done` says where)."""
        names, fused = self.names, len(self.trials) > 1
        clock = EpochClock()
        history = self.model.fit(
            self.data.x_train,
            self.data.y_train,  # one array for every branch of a fused model (`fusion.FusedModel`)
            validation_data=(self.data.x_val, self.data.y_val),
            validation_batch_size=eval_batch_size(len(self.data.x_val)),
            initial_epoch=self.epochs_done,
            epochs=epoch,
            batch_size=self.trials[0].variant.batch_size,
            verbose=0,
            callbacks=[EpochSeeds(self.trials[0].seed), clock, *callbacks],
        ).history
        for name in names:
            for metric in RUNG_METRICS:
                self.history[name][metric].extend(
                    float(value) for value in history[branch_log_key(name, metric, fused)]
                )
        self.seconds.extend(clock.seconds)
        self.epochs_done += len(clock.seconds)  # fewer than asked when a callback stopped the fit

    def last(self, name: str, metric: str = "val_accuracy") -> float:
        """The trial's figure after its last epoch (NaN once its loss has diverged)."""
        values = self.history[name]
        return values[metric][-1] if np.isfinite(values["loss"][-1]) else float("nan")

    def keep(self, names: Sequence[str]) -> None:
        """Go on with `names` only: a fused model of them (or the one model alone) with their
        weights and optimizer state."""
        kept = [trial for trial in self.trials if trial.name in set(names)]
        if [trial.name for trial in kept] == self.names:
            return
        members = [self.members[trial.name] for trial in kept]
        if len(members) == 1:
            hand_over_optimizer_state(self.model, members[0], self.steps_per_execution)
            model = members[0]
        else:
            model = fused_model(members, self.steps_per_execution, batches_to_train(kept, len(self.data.x_train)))
            carry_optimizer_state(self.model, model)
        self.trials, self.model = kept, model
