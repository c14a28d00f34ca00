"""About how long a run has left, from the epochs it has measured: what each epoch line says.

The estimate before the run (`estimate.epoch_seconds`) says what one epoch of each group costs
relative to the others (its FLOPs and steps); the epochs trained so far in this process say what
that cost takes on this machine now, busy or idle. Each group's first epoch (compiling, warming up)
is counted apart: the later epochs give the seconds per unit of cost. What a group costs beyond its
epochs at that pace (building, compiling, predicting, saving its models) is measured on the groups
that finished here, else taken from the first epochs' excess, and added once for each group still
to start.
"""

from collections.abc import Sequence

from explorer.engine.estimate import epoch_seconds
from explorer.models.trials import Trial

NOMINAL_RATE = 1e11  # FLOP/s: any rate serves, only the groups' costs relative to each other are used


def spoken(seconds: float) -> str:
    """A time left as one would say it: "40 s", "4 min", "1 h 5 min"."""
    if round(seconds) < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


class TimeLeft:
    """The run's clock: told each epoch as it ends (`epoch_done`), it says the time left (`text`)."""

    def __init__(self, groups: Sequence[Sequence[Trial]], train_samples: int, validation_samples: int):
        self.costs = [epoch_seconds(group, train_samples, validation_samples, NOMINAL_RATE) for group in groups]
        self.epochs = [group[0].variant.epochs for group in groups]
        self.epochs_left = list(self.epochs)
        self.started: set[int] = set()
        self.first = [0.0, 0.0]  # seconds and cost of each started group's first epoch here
        self.later = [0.0, 0.0]  # seconds and cost of the epochs after those
        self.cost_run = [0.0] * len(groups)  # the cost of the epochs each group ran here
        self.finished: list[tuple[float, float]] = []  # (wall seconds, cost run) of groups done here

    def epoch_done(self, group: int, epoch: int, seconds: float) -> None:
        """Group `group` (its index in the plan) finished its 0-based `epoch` in `seconds`."""
        measured = self.later if group in self.started else self.first
        measured[0] += seconds
        measured[1] += self.costs[group]
        self.cost_run[group] += self.costs[group]
        self.started.add(group)
        self.epochs_left[group] = max(0, self.epochs[group] - (epoch + 1))

    def group_done(self, group: int, seconds: float | None = None) -> None:
        """Group `group` has nothing left to train (its last epoch, early stopping, or a resume);
        `seconds`: its whole wall time here, when it trained here."""
        if seconds is not None and self.cost_run[group]:
            self.finished.append((seconds, self.cost_run[group]))
        self.started.add(group)
        self.epochs_left[group] = 0

    def seconds_left(self) -> float | None:
        """The estimated seconds left; None before any epoch was measured."""
        if not self.first[1]:
            return None
        pace = self.later[0] / self.later[1] if self.later[1] else self.first[0] / self.first[1]
        if self.finished:  # a whole group's cost beyond its epochs, measured
            excess = sum(max(0.0, wall - pace * cost) for wall, cost in self.finished) / len(self.finished)
        else:  # until one finishes: its first epoch's excess over the pace
            excess = max(0.0, self.first[0] - pace * self.first[1]) / len(self.started) if self.later[1] else 0.0
        waiting = sum(1 for group, left in enumerate(self.epochs_left) if left and group not in self.started)
        cost_left = sum(cost * left for cost, left in zip(self.costs, self.epochs_left, strict=True))
        return pace * cost_left + excess * waiting

    def text(self) -> str:
        """The epoch line's ending (", about 4 min left"); nothing before the first epoch and after
        the last."""
        left = self.seconds_left()
        return f", about {spoken(left)} left" if left else ""
