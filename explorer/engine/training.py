"""The one training function: seed, build, fit, predict and evaluate one group of trials.

A group is one trial, or several fused (`explorer.engine.fusion`); a trial with early stopping is
always a group of its own. `train_group` seeds before each builder, fits on the training split
while watching the validation split (checkpointing every epoch; with early stopping, until
validation loss has not improved for its patience, then back to the best epoch's weights),
predicts the test digits once and reads the test figures from those predictions, and returns each
trial's outcome in memory. The only files it writes are the ones a resumed run needs:
each model's `history.csv` (a row per finished epoch) and the group's checkpoint. Every executor
calls it.
"""

import contextlib
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from explorer.config.defaults import EVAL_BATCH_SIZE, STEPS_PER_EXECUTION
from explorer.data.prepare import PreparedData
from explorer.engine.callbacks import (
    BranchHistory,
    BranchTensorBoard,
    EpochBackupAndRestore,
    EpochClock,
    EpochSeeds,
    FirstLayerSnapshots,
    GroupProgress,
    ResumableEarlyStopping,
    StopWhenAsked,
)
from explorer.engine.fusion import batches_to_train, fused_model, hand_over_optimizer_state, per_sample_loss
from explorer.engine.phases import PhaseTimes
from explorer.models.backend import device_description, keras, seed_everything
from explorer.models.trials import Trial, fusion_key
from explorer.models.variants import build_model, compile_for_training
from explorer.store.group_checkpoint import GroupCheckpoint
from explorer.store.trial_folder import TrialFolder, history_is_finite


@dataclasses.dataclass(frozen=True)
class GroupSetup:
    """Where a group writes while it trains, and how it reports."""

    folders: Sequence[TrialFolder]  # each trial's folder, in the order of the trials
    checkpoint: GroupCheckpoint  # the group's checkpoint, saved every epoch
    verbose: int = 1  # 0: quiet; else a line per epoch of the group (`callbacks.GroupProgress`)
    log: Callable[[str], None] = print  # where a fused group's epoch lines go
    tensorboard_root: Path | None = None  # each member logs its epochs' scalars into <root>/<its folder>
    steps_per_execution: int = STEPS_PER_EXECUTION
    callbacks: Sequence[keras.callbacks.Callback] = ()  # an executor's own, after history and checkpoint
    riders: frozenset[int] = frozenset()  # positions of members that train unrecorded (no outcome)
    timings: PhaseTimes | None = None  # where the seconds of building, epochs and evaluating are added
    stop_requested: Callable[[], bool] = lambda: False  # a Ctrl-C noted (`interrupts`): stop before the next call
    time_left: Callable[[int, float], str] = lambda epoch, seconds: ""  # told each epoch, says the run's time left

    @classmethod
    def in_folder(cls, folder: Path, trials: Sequence[Trial], **settings: object) -> "GroupSetup":
        """A group trained into `folder` outside a run (tests, benchmarks): each trial's folder under
        its name, the checkpoint in `folder/checkpoint`."""
        folders = [TrialFolder(folder / trial.folder, trial, key="") for trial in trials]
        checkpoint = folders[0].path / "checkpoint" if len(trials) == 1 else folder / "checkpoint"
        return cls(folders, GroupCheckpoint(checkpoint), **settings)

    def measure(self, phase: str) -> contextlib.AbstractContextManager:
        return self.timings.measure(phase) if self.timings else contextlib.nullcontext()


@dataclasses.dataclass(frozen=True, eq=False)
class Outcome:
    """One trained trial: its model (with the weights it keeps: the best epoch's under early
    stopping), its history (every epoch run), its test figures and predicted digits from that
    model (None when it diverged), and how it was trained, as its result records it (early
    stopping's included: `early_stopping_fields`)."""

    trial: Trial
    model: keras.Model
    history: dict[str, list[float]]
    test: dict[str, float] | None
    predictions: np.ndarray | None
    how_trained: dict[str, object]

    @property
    def diverged(self) -> bool:
        return self.test is None


def build_members(trials: Sequence[Trial]) -> list[keras.Model]:
    keras.backend.clear_session()  # free the previous models' graphs, so memory does not grow per model
    members = []
    for trial in trials:
        # Seeded member by member, so each starts from the weights it would have on its own.
        seed_everything(trial.seed)
        members.append(build_model(trial.variant))
    return members


def _build_group(trials: Sequence[Trial], setup: GroupSetup, samples: int) -> tuple[list[keras.Model], keras.Model]:
    """The group's members, seeded one by one, and the model that trains them: the fused model of
    several (told how many batches it will train, of `samples` training digits), or the one member
    compiled for training."""
    with setup.measure("building"):
        members = build_members(trials)
        if len(members) > 1:
            return members, fused_model(members, setup.steps_per_execution, batches_to_train(trials, samples))
        return members, compile_for_training(members[0], setup.steps_per_execution)


def _callbacks(
    trials: Sequence[Trial],
    members: Sequence[keras.Model],
    setup: GroupSetup,
    clock: EpochClock,
    checkpoint: EpochBackupAndRestore,
) -> list[keras.callbacks.Callback]:
    names = [trial.name for trial in trials]
    progress = [GroupProgress(names, trials[0].variant.epochs, setup.log, setup.time_left)] if setup.verbose else []
    logged = [(t.name, t.folder) for position, t in enumerate(trials) if position not in setup.riders]
    tensorboard = (
        [] if setup.tensorboard_root is None else [BranchTensorBoard(logged, setup.tensorboard_root, len(trials) > 1)]
    )
    # Order matters: an epoch's history rows are written before its checkpoint, so a resumed run
    # never misses an epoch (it may repeat one, which finish_history folds away); early stopping
    # has counted the epoch before the checkpoint saves its progress with the epoch's weights, and
    # forgets at on_train_begin before the checkpoint restores it.
    stopping = [checkpoint.stopping] if checkpoint.stopping is not None else []
    return [
        StopWhenAsked(setup.stop_requested),
        EpochSeeds(trials[0].seed),
        clock,
        BranchHistory(names, setup.folders),
        FirstLayerSnapshots(*_recorded(members, setup), trials[0].variant.epochs),
        *stopping,
        checkpoint,
        *progress,
        *tensorboard,
        *setup.callbacks,
    ]


def _recorded(members: Sequence[keras.Model], setup: GroupSetup) -> tuple[list, list]:
    """The members that are recorded (not riders), and their folders."""
    kept = [position for position in range(len(members)) if position not in setup.riders]
    return [members[p] for p in kept], [setup.folders[p] for p in kept]


def _add_fit_times(
    setup: GroupSetup, epoch_seconds: Sequence[float], checkpoint_seconds: float, fit_seconds: float
) -> None:
    """The first epoch (which compiles), the later ones, the checkpoints (written after each
    epoch's clock stops) and the rest of `fit`, as phases."""
    if setup.timings is None or not epoch_seconds:
        return
    setup.timings.add("first_epoch", epoch_seconds[0])
    setup.timings.add("later_epochs", sum(epoch_seconds[1:]))
    setup.timings.add("checkpointing", checkpoint_seconds)
    setup.timings.add("fit_other", fit_seconds - sum(epoch_seconds) - checkpoint_seconds)


def eval_batch_size(samples: int) -> int:
    """At most EVAL_BATCH_SIZE samples a batch, in nearly equal batches: a last, smaller
    batch is one more shape for XLA to compile (6,000 validation digits go in 6 batches of 1,000,
    10,000 test digits in 10)."""
    batches = max(1, math.ceil(samples / EVAL_BATCH_SIZE))
    return math.ceil(samples / batches)


def test_figures(model: keras.Model, outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Test accuracy and loss from the model's predicted `outputs` for one-hot `labels`, as
    `model.evaluate` computes them (categorical accuracy; the compiled loss per sample, averaged),
    so the test digits go through the network once for both the figures and the predictions."""
    correct = outputs.argmax(axis=1) == labels.argmax(axis=1)
    loss = keras.ops.mean(per_sample_loss(model.loss)(keras.ops.convert_to_tensor(labels), outputs))
    return {"accuracy": float(np.mean(correct)), "loss": float(keras.ops.convert_to_numpy(loss))}


def _how_trained(size: int, data: PreparedData, setup: GroupSetup, restored_epochs: int) -> dict[str, object]:
    """How a group was trained, as every member's result records it."""
    return {
        "backend": keras.backend.backend(),
        "device": device_description(),
        "steps_per_execution": setup.steps_per_execution,
        "fused_group_size": size,
        "resumed_from_epoch": restored_epochs or None,  # epochs taken from the checkpoint
        "samples": {"train": len(data.x_train), "validation": len(data.x_val), "test": len(data.x_test)},
    }


def early_stopping_fields(
    stopping: ResumableEarlyStopping | None, history: dict[str, list[float]], finished: bool
) -> dict[str, int | None]:
    """What a trial's result records of early stopping: its patience (0: off), the 1-based epoch
    it stopped after (None: it ran every epoch, or had none) and the 1-based epoch whose weights it
    kept (without early stopping, the last one run; None when it diverged: no model is kept)."""
    fields = (
        stopping.fields()
        if stopping
        else {"early_stopping": 0, "stopped_epoch": None, "best_epoch": len(history["loss"])}
    )
    return fields if finished else {**fields, "best_epoch": None}


def _check_group(trials: Sequence[Trial]) -> None:
    if len({fusion_key(trial) for trial in trials}) != 1 or len({t.name for t in trials}) != len(trials):
        raise ValueError("a fused group needs one seed, batch size, epochs and optimizer, and distinct names")
    if len(trials) > 1 and any(trial.variant.early_stopping for trial in trials):
        raise ValueError("a trial with early stopping trains alone: its branch would stop at an epoch of its own")


def train_group(trials: Sequence[Trial], data: PreparedData, setup: GroupSetup) -> list[Outcome | None]:
    """Train one group of trials (one trial, or several fused), evaluate each on the test set.

    A checkpoint left in `setup.checkpoint` by an interrupted run of the same group is picked
    up and training continues from it (with no epoch left when the run stopped after the last
    one, or early stopping had stopped it); a history without its checkpoint is stale and is
    started again. The checkpoint stays: the caller removes it once every member's files are
    written. A loss that turns NaN or infinite stops that model (its outcome has no test figures);
    the other models of the group train on. A trial with early stopping (`Variant.early_stopping`,
    alone in its group) stops once validation loss has not improved for that many epochs, and its
    model, test figures and predictions are those of its best epoch's weights.

    Returns:
        Each trial's outcome, in the order of `trials` (None for the riders of `setup.riders`).
    """
    _check_group(trials)
    names = [trial.name for trial in trials]
    members, model = _build_group(trials, setup, len(data.x_train))
    fused = len(members) > 1
    resuming = bool(setup.checkpoint.saved_epochs())
    for folder in setup.folders:
        folder.start(resuming)
    patience = trials[0].variant.early_stopping
    stopping = ResumableEarlyStopping(patience) if patience else None
    say = functools.partial(_say_for, setup.log, ", ".join(names))
    clock, checkpoint = EpochClock(), EpochBackupAndRestore(setup.checkpoint, stopping, say=say)
    fit_started = time.perf_counter()
    try:  # an interrupted fit's epochs still count in the sweep's timings
        model.fit(
            data.x_train,
            data.y_train,  # one array for every branch of a fused model (`fusion.FusedModel`)
            validation_data=(data.x_val, data.y_val),
            validation_batch_size=eval_batch_size(len(data.x_val)),
            epochs=trials[0].variant.epochs,
            batch_size=trials[0].variant.batch_size,
            verbose=0,  # the group's own line per epoch (GroupProgress) instead
            callbacks=_callbacks(trials, members, setup, clock, checkpoint),
        )
    finally:
        _add_fit_times(setup, clock.seconds, checkpoint.seconds, time.perf_counter() - fit_started)
    with setup.measure("evaluating"):
        batch_size, stop = eval_batch_size(len(data.x_test)), [StopWhenAsked(setup.stop_requested)]
        outputs = model.predict(data.x_test, batch_size=batch_size, verbose=0, callbacks=stop)
    how_trained = _how_trained(len(trials), data, setup, checkpoint.restored_epochs)
    outcomes: list[Outcome | None] = []
    for position, (trial, member, folder) in enumerate(zip(trials, members, setup.folders, strict=True)):
        if position in setup.riders:  # trained only so that the checkpoint loaded: nothing to give back
            outcomes.append(None)
            continue
        if fused:  # the member holds its trained weights; give it its optimizer state too
            with setup.measure("evaluating"):
                hand_over_optimizer_state(model, member, setup.steps_per_execution)
        history = folder.finish_history()
        finished = history_is_finite(history)
        member_outputs = np.asarray(outputs[trial.name] if fused else outputs)
        figures = test_figures(member, member_outputs, data.y_test) if finished else None
        predicted = member_outputs.argmax(axis=1).astype(np.uint8) if finished else None
        fields = {**how_trained, **early_stopping_fields(stopping, history, finished)}
        outcomes.append(Outcome(trial, member, history, figures, predicted, fields))
    return outcomes


def _say_for(log: Callable[[str], None], names: str, line: str) -> None:
    """A group's line, under its members' names."""
    log(f"    {names}: {line}")
