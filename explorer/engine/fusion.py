"""Fused training: several compiled models as the branches of one functional model, and back.

Trials that see the same batches in the same order (same seed, batch size and epochs) and take the
same optimizer steps (the same optimizer configuration) train as branches of one multi-output
model, one forward and backward pass per batch for all of them. The branches share no weights and
the total loss is the sum of theirs, so each branch's gradient is exactly its own model's, and
Adam-style optimizers update every weight from its own gradient alone: each branch computes what
its model computes alone (tests/test_fusion.py checks the weights). Small models are dominated by
per-step overhead, which the group pays once. A trial with early stopping never fuses
(`models.trials.plan_groups`): the branches train for the same epochs, and it may stop sooner.
"""

from collections.abc import Callable, Sequence

from explorer.config.defaults import MIN_BATCHES_IN_ONE_CALL
from explorer.engine.callbacks import BRANCH_LOSS
from explorer.models.backend import keras
from explorer.models.keras_compat import steps_in_one_call
from explorer.models.trials import Trial
from explorer.models.variants import compile_for_training


def per_sample_loss(loss: object) -> Callable:
    """The compiled loss `loss` (a name, a Loss object or a function) giving one value per sample:
    Keras' loss functions do; a Loss object does with `reduction=None`."""
    if isinstance(loss, keras.losses.Loss):
        return type(loss).from_config({**loss.get_config(), "reduction": None})
    return keras.losses.get(loss) if isinstance(loss, str) else loss


class FusedModel(keras.Model):
    """A functional model whose outputs are branches that all learn the same labels, given once,
    and that runs each call's batches in one compiled loop on JAX.

    Both cut what `fit` does outside the compiled step, on every step (0.4-0.7 s an epoch of the
    default sweep, docs/performance.md), and neither changes a number:
    - `fit` slices, gathers and hands over every label array of a batch separately; one array for
      all the branches saves that work for a dozen arrays a step. Each branch's loss and metrics
      receive the labels as they would from a dict of copies (`compute_loss` and
      `compute_metrics`, which Keras lets a model override). A dict per branch is taken as is.
    - Keras' JAX trainer calls its jitted step once per batch from Python; here the
      `steps_per_execution` batches of one call run as one `lax.scan` of the same step
      (`models.keras_compat.steps_in_one_call`), when the group trains long enough to repay the
      one more program it compiles (`config.defaults.MIN_BATCHES_IN_ONE_CALL`)."""

    runs_steps_in_one_call = False  # set by `fused_model` for a group that trains long enough

    def make_train_function(self, force=False):
        super().make_train_function(force)  # Keras' own, unless one is already made
        wanted = self.runs_steps_in_one_call and self.steps_per_execution > 1 and keras.backend.backend() == "jax"
        wanted = wanted and self.jit_compile and not self.run_eagerly
        if wanted and not getattr(self.train_function, "steps_in_one_call", False):
            self.train_function = steps_in_one_call(self)

    def per_branch(self, y):
        return y if y is None or isinstance(y, dict) else {name: y for name in self.output_names}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(x, self.per_branch(y), y_pred, sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, self.per_branch(y), y_pred, sample_weight)


def batches_to_train(trials: Sequence[Trial], samples: int) -> int:
    """How many batches a group of `trials` trains on `samples` training digits (they share epochs
    and batch size: `models.trials.fusion_key`)."""
    variant = trials[0].variant
    return variant.epochs * -(-samples // variant.batch_size)


def fused_model(members: Sequence[keras.Model], steps_per_execution: int, batches: int = 0) -> keras.Model:
    """One model with a branch per member (keyed by the member's name), compiled with each member's
    own loss and a fresh optimizer configured as theirs (they agree: `models.trials.fusion_key`).
    It trains on the members' labels given once, and runs each call's batches in one compiled loop
    when it will train at least `MIN_BATCHES_IN_ONE_CALL` `batches` (`FusedModel`)."""
    inputs = keras.Input(shape=members[0].inputs[0].shape[1:], name="fused_pixels")
    model = FusedModel(inputs, {member.name: member(inputs) for member in members}, name="fused")
    model.runs_steps_in_one_call = batches >= MIN_BATCHES_IN_ONE_CALL
    optimizer = members[0].optimizer
    model.compile(
        optimizer=type(optimizer).from_config(optimizer.get_config()),
        loss={member.name: member.loss for member in members},
        metrics={
            member.name: [
                keras.metrics.CategoricalAccuracy(name="accuracy"),
                # Keras' own per-output loss figure averages batches without weighting them by size
                # on TensorFlow; this one is the mean over samples, as a single model's loss is.
                keras.metrics.MeanMetricWrapper(per_sample_loss(member.loss), name=BRANCH_LOSS),
            ]
            for member in members
        },
        steps_per_execution=steps_per_execution,
    )
    return model


def hand_over_optimizer_state(fused: keras.Model, member: keras.Model, steps_per_execution: int) -> None:
    """Compile `member` for training on its own and copy its branch's optimizer state (step count,
    Adam's moments, ...) from the fused model's optimizer to its own, so its `model.keras` can train
    on exactly as a model trained alone. Slot variables are named after the weight's path, which
    is unique among the branches (`models.trials.plan_groups`)."""
    compile_for_training(member, steps_per_execution)
    carry_optimizer_state(fused, member)


def carry_optimizer_state(source: keras.Model, target: keras.Model) -> None:
    """Build `target`'s optimizer and give it the state `source`'s optimizer holds for the same
    weights (found by path, the optimizer's name left off) and its step count: `target` trains on
    as the weights' own model would. `target`'s weights are a subset of `source`'s (a fused
    group's survivors, or one of its members)."""
    target.optimizer.build(target.trainable_variables)
    source_state = {variable.path.split("/", 1)[1]: variable for variable in source.optimizer.variables}
    for variable in target.optimizer.variables:
        variable.assign(source_state[variable.path.split("/", 1)[1]])
