"""Where a sweep's time goes: seconds per phase, summed over groups, written as `timings.json`.

The sweep measures each phase as it runs (checking the networks, loading the data, building each
group's models, their first epoch, which compiles, the later epochs, evaluating, saving, building
the views) so that a user, and `benchmarks/speed.py`, can see what is training and what is
overhead. Only the local executor fills the training phases; Ray's trials run elsewhere.
"""

import contextlib
import time
from collections.abc import Iterator

# The phases in the order a sweep runs them, for a reader of timings.json.
PHASES = (
    "checking",  # every network built once, its facts and model.summary() read
    "data",  # MNIST loaded, verified, split and scaled
    "planning",  # the run folder opened, fingerprints, the estimate
    "searching",  # --search: the candidates trained rung by rung, before the verification
    "building",  # each group's models built from their seeds and compiled (fused)
    "first_epoch",  # the first epoch of each group: compiling the steps, then training
    "later_epochs",  # every other epoch: steady training and validation
    "checkpointing",  # each epoch's weights and optimizer state written, so nothing is lost
    "fit_other",  # the rest of fit around the epochs: its set-up, the history rows, tear-down
    "evaluating",  # test predictions and figures, optimizer state handed to each member
    "saving",  # each model's files: model.keras, predictions, curves, result.json
    "views",  # summary, figures, report.html and the leaderboard
)


class PhaseTimes:
    """Seconds per phase, added up as the sweep runs (a phase met by several groups sums them)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; known: {', '.join(PHASES)}")
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    @contextlib.contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        """Add the seconds the `with` block takes to `phase` (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - started)

    def record(self, wall_seconds: float, started_unix: float) -> dict:
        """The record `timings.json` holds: the sweep's wall time, when it started (Unix time, so a
        caller that launched the process can tell how long the imports took), and every phase."""
        return {
            "started_unix": started_unix,
            "wall_seconds": round(wall_seconds, 3),
            "phases": {phase: round(self.seconds[phase], 3) for phase in PHASES if phase in self.seconds},
        }

    def line(self) -> str:
        """One terminal line: the epochs against everything around them (checkpoints counted after)."""
        seconds = self.seconds.get
        training = seconds("first_epoch", 0.0) + seconds("later_epochs", 0.0)
        before = sum(seconds(phase, 0.0) for phase in ("checking", "data", "planning", "building"))
        after = sum(seconds(phase, 0.0) for phase in ("checkpointing", "fit_other", "evaluating", "saving", "views"))
        first = seconds("first_epoch", 0.0)
        search = f"{seconds('searching'):.1f} s searching, then " if "searching" in self.seconds else ""
        return f"Time: {search}{before:.1f} s to start, {training:.1f} s training (first epochs, compiling: {first:.1f} s), {after:.1f} s to finish"
