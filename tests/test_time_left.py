"""The time left that every epoch line says (`explorer.engine.time_left`), on made-up epochs: the
pace from the epochs measured here, each group's first epoch counted apart, a resumed group's
epochs from where it is."""

import pytest

from explorer.engine.time_left import TimeLeft, spoken

from conftest import dense_trial


def group(name: str, width: int, epochs: int = 4):
    return [dense_trial(name, {"hidden_units": [width], "epochs": epochs})]


@pytest.fixture(scope="module")
def plan():
    return [group("narrow", 64), group("wide", 256), group("widest", 1024)]


def test_nothing_is_said_before_the_first_epoch_or_after_the_last(plan):
    clock = TimeLeft(plan[:1], 1_000, 100)
    assert clock.text() == ""
    for epoch in range(4):
        clock.epoch_done(0, epoch, 1.0)
    assert clock.seconds_left() == 0 and clock.text() == ""


def test_the_pace_of_later_epochs_sets_the_time_of_the_rest_by_their_cost(plan):
    clock = TimeLeft(plan, 1_000, 100)
    cost = clock.costs
    clock.epoch_done(0, 0, 5.0)  # compiling: its first epoch is slow
    clock.epoch_done(0, 1, 1.0)
    pace = 1.0 / cost[0]
    excess = 5.0 - pace * cost[0]  # what a first epoch costs beyond the pace, once per group to start
    expected = pace * (2 * cost[0] + 4 * cost[1] + 4 * cost[2]) + 2 * excess
    assert clock.seconds_left() == pytest.approx(expected)
    assert cost[0] < cost[1] < cost[2]  # a wider network's epoch weighs more


def test_a_machine_twice_as_busy_says_twice_the_time(plan):
    idle, busy = TimeLeft(plan, 1_000, 100), TimeLeft(plan, 1_000, 100)
    for epoch in range(2):
        idle.epoch_done(0, epoch, 1.0)
        busy.epoch_done(0, epoch, 2.0)
    assert busy.seconds_left() == pytest.approx(2 * idle.seconds_left())


def test_a_resumed_group_counts_from_the_epoch_it_is_at_and_a_finished_one_not_at_all(plan):
    clock = TimeLeft(plan, 1_000, 100)
    clock.group_done(0)  # finished before the resume
    clock.epoch_done(1, 2, 1.0)  # continued after epoch 2 of 4: one epoch left
    assert clock.epochs_left == [0, 1, 4]


@pytest.mark.parametrize(
    ("seconds", "said"), [(0.2, "1 s"), (40, "40 s"), (59.6, "1 min"), (240, "4 min"), (3_900, "1 h 5 min")]
)
def test_spoken(seconds, said):
    assert spoken(seconds) == said


def test_an_epoch_line_with_the_time_left_fits_100_columns_whatever_the_names():
    from explorer.engine.callbacks import GroupProgress, branch_log_key

    names = ["n" * 30, "dense_512x2_relu_dropout"]
    lines = []
    progress = GroupProgress(names, 20, lines.append, lambda epoch, seconds: ", about 10 min left")
    logs = {"seconds": 10.25, **{branch_log_key(name, "val_accuracy", True): 0.98 for name in names}}
    progress.on_epoch_end(19, logs)
    text = "\n".join(lines)
    assert all(len(line) <= 100 for line in text.splitlines()) and text.endswith("\n      about 10 min left")
    short = []
    GroupProgress(["a"], 20, short.append, lambda epoch, seconds: ", about 4 min left").on_epoch_end(
        2, {"seconds": 1.0, "val_accuracy": 0.9}
    )
    assert short == ["    epoch 3/20: 1.0 s, val acc 0.9000, about 4 min left"]


def test_once_a_group_finished_its_whole_cost_beyond_its_epochs_is_added_for_each_group_to_start(plan):
    # Predicting and saving a group's models can outweigh its epochs on a small sample: measured.
    clock = TimeLeft(plan, 1_000, 100)
    for epoch in range(4):
        clock.epoch_done(0, epoch, 3.0 if epoch == 0 else 1.0)
    clock.group_done(0, 20.0)  # 6 s of epochs, 14 s more
    pace = 1.0 / clock.costs[0]
    overhead = 20.0 - pace * 4 * clock.costs[0]
    assert clock.seconds_left() == pytest.approx(pace * 4 * (clock.costs[1] + clock.costs[2]) + 2 * overhead)
