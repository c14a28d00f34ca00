"""Search: Optuna's TPE sampler asks for candidates a batch at a time, each batch trains as one
fused model rung by rung, Optuna's successive-halving pruner stops the poor ones, and the best few
are handed back to be verified on fresh seeds.

The study lives in the run folder (`study.db`, Optuna's SQLite storage): every told trial, its
parameters, its validation accuracy after each epoch and why it stopped, and the seconds the
search has spent. `--resume` opens it again: told trials stay told, candidates that were training
when the run was killed are asked again, and the time already spent counts against the budget.

A batch shares what fusion needs shared (`config.search_space.BATCH_FIELDS`: the optimizer's
configuration and the batch size): its first candidate samples them, the others are enqueued with
them fixed and sample the rest. The sampler is told nothing about a batch until it has trained, so
it lies about the running ones (TPE's constant liar): the batch then spreads over the space instead
of asking four times for the same point.
"""

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import URL

from explorer.config.defaults import (
    SEARCH_BATCH_PARAMETERS,
    SEARCH_BATCH_SIZE,
    SEARCH_MIN_EPOCHS,
    SEARCH_REDUCTION_FACTOR,
)
from explorer.config.options import Options
from explorer.config.search_space import BATCH_FIELDS, Choice, Interval, SearchSpace
from explorer.data.prepare import PreparedData
from explorer.engine.run_variants import prepared
from explorer.engine.rungs import BatchTraining, rung_ends
from explorer.errors import ConfigError
from explorer.models.backend import keras
from explorer.models.trials import Trial
from explorer.models.variants import Variant, inspect_variant
from explorer.store.folders import CANDIDATE_PREFIX, STUDY_FILE
from explorer.store.study import candidate_name

TrialState = optuna.trial.TrialState
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclasses.dataclass(frozen=True)
class SearchRequest:
    """What a script hands the engine to search: the space, and its own loop from configurations
    to variants (the engine takes builders, not schemas)."""

    space: SearchSpace
    variants_of: Callable[[Mapping[str, Mapping]], list[Variant]]


trial_name = candidate_name  # a candidate's model and folder name: trial_<number>


def open_study(run_dir: Path, space: SearchSpace, seed: int) -> optuna.Study:
    """The run folder's study, created or loaded.

    Raises:
        ConfigError: when the folder holds a study of another space or name.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the search prints its own lines
    # Rendered by SQLAlchemy, so that a folder named with '?', '#' or '%' is not read as a query.
    path = (run_dir / STUDY_FILE).resolve()
    searched = sorted(folder.name for folder in run_dir.glob(f"{CANDIDATE_PREFIX}*") if folder.is_dir())
    if searched and (not path.exists() or path.stat().st_size == 0):
        _refuse_lost_study(path, searched)
    url = URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)
    try:
        storage = optuna.storages.RDBStorage(url)
    except (sqlalchemy.exc.DBAPIError, RuntimeError) as error:  # not a database, malformed, another schema
        reason = str(error).splitlines()[0][:160]
        raise ConfigError(
            f"{path}: cannot be read as this search's study ({reason}); it is left as it is: "
            "move it aside to search again in this folder, or start a new run with --out"
        ) from None
    names = optuna.get_all_study_names(storage)
    if searched and not names:
        _refuse_lost_study(path, searched)
    if names and names != [space.name]:
        raise ConfigError(f"{run_dir / STUDY_FILE} holds the search {names[0]!r}, not {space.name!r}; "
                          "resume it with its own [search] table, or start a new run with --out")  # fmt: skip
    study = optuna.create_study(
        storage=storage,
        study_name=space.name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=SEARCH_MIN_EPOCHS, reduction_factor=SEARCH_REDUCTION_FACTOR
        ),
        load_if_exists=True,
    )
    known = study.user_attrs.get("space")
    if known is None:
        study.set_user_attr("space", space.fingerprint)
        study.set_user_attr("seconds", 0.0)
    elif known != space.fingerprint:
        raise ConfigError(f"{run_dir / STUDY_FILE}: its search {space.name!r} was started with another space; "
                          "resume it with the same table, or start a new run with --out")  # fmt: skip
    return study


def _refuse_lost_study(path: Path, searched: list[str]) -> None:
    """A search's candidates without the study that asked for them: continuing would start again
    from trial 0 and mix old and new candidates under the same names."""
    raise ConfigError(
        f"{path}: missing or empty, but the run folder holds {len(searched)} of its search's candidates "
        f"({', '.join(searched[:3])}{', ...' if len(searched) > 3 else ''}); without the study the search "
        "cannot continue: restore study.db, or start the search again with --out (nothing was changed)"
    )


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, object]:
    """The candidate's value of every searched field, as Optuna suggests it."""
    picked: dict[str, object] = {}
    for field, searched in space.searched.items():
        if isinstance(searched, Interval):
            suggest_number = trial.suggest_int if searched.integer else trial.suggest_float
            step = searched.step if searched.step is not None else (1 if searched.integer else None)
            picked[field] = suggest_number(field, searched.low, searched.high, log=searched.log, step=step)
        else:
            labels = searched.labels()
            picked[field] = searched.values[labels.index(trial.suggest_categorical(field, labels))]
    return picked


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Candidates that were training when the run stopped: failed, and asked again (enqueued with
    their parameters, so they train again as one batch). Their numbers."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running:
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params)
    return [trial.number for trial in running]


def dense_parameters(fields: Mapping[str, object]) -> int:
    """Weights and biases of the dense stack a configuration's fields describe (for the batch's size)."""
    widths = [784, *fields.get("hidden_units", [128]), 10]
    return sum((inputs + 1) * outputs for inputs, outputs in itertools.pairwise(widths))


def ask_batch(study: optuna.Study, space: SearchSpace, size: int) -> list[tuple[optuna.Trial, dict]]:
    """Up to `size` candidates sharing the batch fields: the waiting ones (asked again after an
    interruption) if there are any, else a first one, then others enqueued with its batch fields,
    until the batch holds `size` or its networks pass SEARCH_BATCH_PARAMETERS together."""
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    batch, parameters = [], 0
    while len(batch) < (waiting or size):
        trial = study.ask()
        fields = space.fields(suggest(trial, space))
        trial.set_user_attr("config", json.dumps(fields))
        batch.append((trial, fields))
        parameters += dense_parameters(fields)
        if not waiting and len(batch) < size and parameters < SEARCH_BATCH_PARAMETERS:
            study.enqueue_trial({field: trial.params[field] for field in BATCH_FIELDS if field in trial.params})
        elif not waiting:
            break
    return batch


@dataclasses.dataclass
class Budget:
    """What is left of the search: seconds (spent before a resume included) and trials. The clock
    runs from the search's start, so asking, building and compiling count as training does."""

    seconds: float | None
    trials: int | None
    spent: float = 0.0
    mark: float = dataclasses.field(default_factory=time.perf_counter)

    def settle(self, study: optuna.Study | None = None) -> None:
        """Add the time since the last settling, and store the sum in `study` (so that a search
        killed at any moment counts its time when resumed)."""
        now = time.perf_counter()
        self.spent, self.mark = self.spent + now - self.mark, now
        if study is not None:
            study.set_user_attr("seconds", self.spent)

    @property
    def spent_all(self) -> bool:
        return self.seconds is not None and self.spent >= self.seconds

    def over(self, told: int) -> bool:
        return self.spent_all or (self.trials is not None and told >= self.trials)


class _Spending(keras.callbacks.Callback):
    """Settles the budget after every epoch; stops the fit once it is spent."""

    def __init__(self, study: optuna.Study, budget: Budget):
        super().__init__()
        self.study, self.budget = study, budget

    def on_epoch_end(self, epoch, logs=None):
        self.budget.settle(self.study)
        if self.budget.spent_all:
            self.model.stop_training = True  # the budget is spent: no more epochs


def _tell(study: optuna.Study, trial: optuna.Trial, training: BatchTraining, state, why: str, spent: float) -> None:
    history = training.history[trial_name(trial.number)]
    trial.set_user_attr("epochs_run", len(history["loss"]))
    trial.set_user_attr("stopped", why)
    trial.set_user_attr("seconds_at_end", round(spent, 1))
    trial.set_user_attr("val_loss", history["val_loss"][-1])
    value = history["val_accuracy"][-1]
    if not math.isfinite(history["loss"][-1]):
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)


def _stop_at_rung(
    study: optuna.Study, alive: Sequence[optuna.Trial], training: BatchTraining, end: int, last: int, budget: Budget
) -> dict[optuna.Trial, str]:
    """The candidates that stop after epoch `end`, told, with why: all of them at the last epoch
    (complete) or once the budget is spent, else those Optuna's pruner stops (asked best first, so
    a batch's better candidates are the ones the later are measured against)."""
    if end == last:
        stopped = {trial: f"complete ({end} epochs)" for trial in alive}
    elif budget.spent_all:
        stopped = {trial: f"stopped by the budget after epoch {end}" for trial in alive}
    else:
        ranked = sorted(alive, key=lambda trial: -_value_or_worst(training.last(trial_name(trial.number))))
        stopped = {trial: f"pruned after epoch {end}" for trial in ranked if trial.should_prune()}
    for trial, why in stopped.items():
        state = TrialState.COMPLETE if why.startswith("complete") else TrialState.PRUNED
        _tell(study, trial, training, state, why, budget.spent)
    return stopped


def _value_or_worst(value: float) -> float:
    return value if math.isfinite(value) else -1.0


def train_batch(
    study: optuna.Study, batch: Sequence[optuna.Trial], trials: Sequence[Trial], data: PreparedData, budget: Budget
) -> list[str]:
    """Train one batch rung by rung, reporting every epoch's validation accuracy; at each rung the
    pruner (or the budget) stops candidates, and the rest go on. A line per candidate."""
    training, alive, lines, done = BatchTraining(trials, data), list(batch), [], 0
    ends = rung_ends(trials[0].variant.epochs, SEARCH_MIN_EPOCHS, SEARCH_REDUCTION_FACTOR)
    for end in ends:
        try:
            training.train_to(end, [_Spending(study, budget)])
        finally:  # an interrupted epoch's seconds count against the budget too
            budget.settle(study)
        for trial in alive:
            values = training.history[trial_name(trial.number)]["val_accuracy"]
            for step in range(done + 1, training.epochs_done + 1):
                if math.isfinite(values[step - 1]):
                    trial.report(values[step - 1], step)
        done = training.epochs_done
        stopped = _stop_at_rung(study, alive, training, done, ends[-1], budget)
        for trial, why in stopped.items():
            name = trial_name(trial.number)
            lines.append(f"{name}: {why}, validation accuracy {training.last(name):.4f}")
        alive = [trial for trial in alive if trial not in stopped]
        if not alive:
            break
        training.keep([trial_name(trial.number) for trial in alive])
    return lines


def told(study: optuna.Study) -> int:
    """Candidates the search has finished with: complete, pruned, diverged or refused (not those
    that were interrupted, which are asked again)."""
    trials = study.get_trials(deepcopy=False)
    return sum(trial.state in FINISHED or (trial.state == TrialState.FAIL and "stopped" in trial.user_attrs)
               for trial in trials)  # fmt: skip


def _batch_trials(
    request: SearchRequest, batch, options: Options, study: optuna.Study, train_digits: int
) -> tuple[list, list[Trial]]:
    """The batch's candidates as trials; one whose sampled fields do not combine (a value each
    field allows alone, refused beside another) is told as failed, with the reason."""
    kept, trials = [], []
    for trial, fields in batch:
        try:
            [variant] = prepared(request.variants_of({trial_name(trial.number): fields}), options, train_digits)
        except ConfigError as error:
            trial.set_user_attr("stopped", f"refused: {error}")
            study.tell(trial, state=TrialState.FAIL)
            continue
        kept.append(trial)
        trials.append(Trial(variant, inspect_variant(variant), options.seed))
    return kept, trials


def _best_line(study: optuna.Study, budget: Budget) -> str:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = (
        f"best so far {trial_name(study.best_trial.number)}, {study.best_value:.4f}"
        if complete
        else "none complete yet"
    )
    limit = f" of {budget.seconds / 60:.0f} min" if budget.seconds is not None else ""
    return f"      {told(study)} candidates, {budget.spent / 60:.1f} min{limit}; {best}"


def run_search(
    request: SearchRequest,
    data: PreparedData,
    run_dir: Path,
    options: Options,
    log: Callable[[str], None],
) -> list[Variant]:
    """Search until the budget (seconds or trials) is spent, batch after batch; return the best
    few complete candidates by validation accuracy (`options.search.verify`) as variants, to be
    trained again on fresh seeds."""
    study = open_study(run_dir, request.space, options.seed)
    retried = recover_interrupted(study)
    if retried:
        log(f"Search: {', '.join(map(trial_name, retried))} were training when the run stopped; asked again")
    budget = Budget(options.search.budget, options.search.trials, float(study.user_attrs.get("seconds", 0.0)))
    while not budget.over(told(study)):  # each batch's asking, building and compiling count too
        size = SEARCH_BATCH_SIZE if options.fused else 1
        if budget.trials is not None:
            size = min(size, budget.trials - told(study))
        batch, trials = _batch_trials(request, ask_batch(study, request.space, size), options, study, len(data.x_train))
        if not trials:
            continue
        variant = trials[0].variant
        together = f"{len(trials)} candidates fused: " if len(trials) > 1 else ""
        log(f"\n[search] {together}{', '.join(t.name for t in trials)}; batch {variant.batch_size}, "
            f"{trials[0].facts.description['optimizer']} {trials[0].facts.description['learning_rate']:g}, "
            f"{variant.epochs} epochs at most")  # fmt: skip
        for line in train_batch(study, batch, trials, data, budget):
            log(f"    {line}")
        budget.settle(study)
        log(_best_line(study, budget))
    return verification_variants(study, request, options, log, len(data.x_train))


def verification_variants(
    study: optuna.Study, request: SearchRequest, options: Options, log: Callable[[str], None], train_digits: int
) -> list[Variant]:
    """The best `count` complete candidates by validation accuracy, as variants (named by trial)."""
    complete = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                      key=lambda trial: (-trial.value, trial.number))[: options.search.verify]  # fmt: skip
    counts = {
        state: len(study.get_trials(deepcopy=False, states=(state,)))
        for state in (TrialState.COMPLETE, TrialState.PRUNED)
    }
    log(f"\nSearch done: {told(study)} candidates in {study.user_attrs.get('seconds', 0.0) / 60:.1f} min "
        f"({counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} stopped early).")  # fmt: skip
    if not complete:
        log("No candidate trained to its last epoch: nothing to verify.")
        return []
    chosen = ", ".join(f"{trial_name(trial.number)} ({trial.value:.4f})" for trial in complete)
    log(f"Best by validation accuracy, to be trained again on fresh seeds: {chosen}")
    configs = {trial_name(trial.number): json.loads(trial.user_attrs["config"]) for trial in complete}
    return prepared(request.variants_of(configs), options, train_digits)


def search_plan_text(request: SearchRequest, options: Options, epochs: int) -> str:
    """What --plan says of a search: the space, the budget, the batches and rungs, the verification."""
    space = request.space
    searched = "\n".join(f"    {field}: {_described(searched)}" for field, searched in space.searched.items())
    fixed = ", ".join(f"{field} = {value}" for field, value in space.fixed.items()) or "nothing"
    limits = [f"{options.search.budget / 60:g} min" if options.search.budget is not None else "",
              f"{options.search.trials} candidates" if options.search.trials is not None else ""]  # fmt: skip
    ends = rung_ends(epochs, SEARCH_MIN_EPOCHS, SEARCH_REDUCTION_FACTOR)
    return (
        f"Search {space.name!r}: Optuna TPE, batches of up to {SEARCH_BATCH_SIZE if options.fused else 1} "
        f"candidates trained fused, until {' or '.join(x for x in limits if x)}.\n"
        f"  searched:\n{searched}\n  fixed: {fixed}\n"
        f"  rungs: judged after epochs {', '.join(map(str, ends[:-1])) or '(none)'}; complete at {ends[-1]}; "
        f"a candidate goes on if in the best 1/{SEARCH_REDUCTION_FACTOR} at its rung\n"
        f"  then: the best {options.search.verify} by validation accuracy trained again, {options.run_repeats} "
        "run(s) each on fresh seeds, and compared on the test set"
    )


def _described(searched: Interval | Choice) -> str:
    if isinstance(searched, Choice):
        return "one of " + ", ".join(map(str, searched.values))
    scale = ", log scale" if searched.log else ""
    return f"{searched.low:g} to {searched.high:g}{' (whole)' if searched.integer else ''}{scale}"
