"""A search's study, read back from the run folder (`study.db`, Optuna's SQLite storage) for the
views: its candidates, the seconds it spent and the parameters' importances.

Opened read-only, so reading a study never changes it (a folder being resumed keeps its file as the
search wrote it). The search itself writes the study (`explorer.engine.search`); this is the one
reader of it outside the engine, and the only module of the views' side that imports Optuna.
"""

import dataclasses
import math
import urllib.parse
import warnings
from pathlib import Path

import optuna
import sqlalchemy.exc

from explorer.store.folders import CANDIDATE_PREFIX, STUDY_FILE

TrialState = optuna.trial.TrialState


def candidate_name(number: int) -> str:
    """A candidate's configuration name in the run folder (the engine's `search.trial_name`)."""
    return f"{CANDIDATE_PREFIX}{number}"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One candidate the search finished with: complete, stopped early, or failed (diverged or refused)."""

    number: int
    state: str  # "COMPLETE", "PRUNED" (by successive halving or the budget: see `stopped`) or "FAIL"
    value: float | None  # its last validation accuracy (a pruned one's at the epoch it stopped); None if failed
    params: dict[str, object]  # the parameters Optuna sampled, by field
    epochs_run: int | None
    stopped: str | None  # why it stopped, in words: "complete (20 epochs)", "pruned after epoch 3", ...
    seconds_at_end: float | None  # the search's seconds spent when it was told

    @property
    def name(self) -> str:
        return candidate_name(self.number)

    @property
    def by_halving(self) -> bool:
        """Stopped early by successive halving (not by the budget, which is also told as pruned)."""
        return self.state == "PRUNED" and (self.stopped or "").startswith("pruned")


@dataclasses.dataclass(frozen=True)
class SearchRecord:
    """What a run folder's study holds, for the views."""

    name: str
    seconds: float  # the search's time, resumes included
    candidates: tuple[Candidate, ...]  # in the order asked (by number)
    importances: tuple[tuple[str, float], ...]  # (parameter, importance), most important first; () when too few

    @property
    def complete(self) -> tuple[Candidate, ...]:
        return tuple(candidate for candidate in self.candidates if candidate.state == "COMPLETE")

    @property
    def best(self) -> Candidate | None:
        """The best complete candidate by validation accuracy (the first asked among equals), as the
        search handed it to the verification."""
        return min(self.complete, key=lambda candidate: (-candidate.value, candidate.number), default=None)


def _finite(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _candidate(trial: optuna.trial.FrozenTrial) -> Candidate:
    attrs = trial.user_attrs
    return Candidate(
        number=trial.number,
        state=trial.state.name,
        value=_finite(trial.value) if trial.state != TrialState.FAIL else None,
        params=dict(trial.params),
        epochs_run=attrs.get("epochs_run"),
        stopped=attrs.get("stopped"),
        seconds_at_end=_finite(attrs.get("seconds_at_end")),
    )


def importances(study: optuna.Study) -> tuple[tuple[str, float], ...]:
    """The parameters' importances by Optuna's PED-ANOVA evaluator, over the complete candidates.

    Too few complete candidates make Optuna warn and return equal importances, which mean nothing:
    that warning is raised here as an error, caught, and the importances left empty.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
        except UserWarning:  # "The number of trials is too small", "... importances will be equal"
            return ()
    return tuple((name, float(value)) for name, value in found.items())


def read_search(run_dir: Path) -> SearchRecord | None:
    """The search of `run_dir`, from its `study.db`; None when there is none, or when the file is
    not a study Optuna can read (damaged, or of another Optuna's schema): the rest of the views do
    not depend on it. Candidates that were interrupted and asked again are left out."""
    path = run_dir / STUDY_FILE
    if not path.is_file():
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Read-only, as an SQLite URI: nothing is created in, or written to, the file. Quoted twice:
    # SQLAlchemy decodes the URL once, and SQLite decodes the URI it is handed (a "#" or "?" in the
    # folder's name is then part of the path, not a fragment or a query).
    quoted = urllib.parse.quote(urllib.parse.quote(str(path.resolve())))
    url = f"sqlite:///file:{quoted}?mode=ro&uri=true"
    storage = None
    try:
        storage = optuna.storages.RDBStorage(url)
        names = sorted(optuna.get_all_study_names(storage))
        if not names:
            return None
        study = optuna.load_study(study_name=names[0], storage=storage)
        trials = study.get_trials(deepcopy=False)
        candidates = tuple(
            _candidate(trial)
            for trial in sorted(trials, key=lambda trial: trial.number)
            if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (trial.state == TrialState.FAIL and "stopped" in trial.user_attrs)
        )
        seconds = _finite(study.user_attrs.get("seconds")) or 0.0
        return SearchRecord(names[0], seconds, candidates, importances(study))
    except (sqlalchemy.exc.DBAPIError, RuntimeError):  # not a database, malformed, or another schema
        return None
    finally:
        if storage is not None:
            storage.engine.dispose()
