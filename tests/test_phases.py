"""Where a sweep's time goes: seconds per phase, summed, in run order."""

import pytest

import explorer.engine.phases
from explorer.engine.phases import PhaseTimes


def test_phases_sum_over_groups_and_keep_run_order():
    timings = PhaseTimes()
    timings.add("views", 1.0)
    timings.add("first_epoch", 2.0)
    timings.add("first_epoch", 0.5)
    record = timings.record(wall_seconds=4.0, started_unix=100.0)
    assert record == {"started_unix": 100.0, "wall_seconds": 4.0, "phases": {"first_epoch": 2.5, "views": 1.0}}
    assert list(record["phases"]) == ["first_epoch", "views"]  # in run order, not in the order added


def test_a_measured_phase_counts_even_when_it_raises(monkeypatch):
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(explorer.engine.phases.time, "perf_counter", lambda: next(clock))
    timings = PhaseTimes()
    with pytest.raises(KeyError), timings.measure("saving"):
        raise KeyError("disk full")
    assert timings.seconds == {"saving": 2.5}


def test_an_unknown_phase_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown phase 'training'; known: checking, data"):
        PhaseTimes().add("training", 1.0)


def test_the_line_sets_the_epochs_against_what_surrounds_them():
    timings = PhaseTimes()
    for phase, seconds in {"checking": 1.0, "data": 0.5, "first_epoch": 3.0, "later_epochs": 6.0, "views": 2.0}.items():
        timings.add(phase, seconds)
    assert timings.line() == "Time: 1.5 s to start, 9.0 s training (first epochs, compiling: 3.0 s), 2.0 s to finish"
