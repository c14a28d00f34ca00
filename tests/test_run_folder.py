"""The run folder is sacred: only runs are resumed, only new or empty folders receive a run, a finished
epoch is never lost, every file is checked before it is trusted, and nothing ends in a traceback."""

import contextlib
import errno
import functools
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import common
import explorer.config.options
import explorer.data.loading
import explorer.data.mnist
import explorer.engine.callbacks
import explorer.engine.groups
import explorer.engine.sweep
import explorer.engine.training
import explorer.errors
import explorer.store.files
import explorer.store.folders
import explorer.store.schema
import explorer.views.summarize
import model_builder_loop

from conftest import PROJECT_ROOT, run_loop, sweep_files


def one_line(capsys) -> str:
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and "Traceback" not in error, error
    return error


def results(run_dir: Path) -> dict[str, dict]:
    return {result["trial"]: result for result in explorer.store.schema.read_results(run_dir)}


# ---------------------------------------------------------------------------------------------
# Only runs are resumed; only new or empty folders receive a run


def test_resume_refuses_a_folder_that_is_not_a_run_and_leaves_it_alone(tmp_path, capsys):
    (tmp_path / "thesis.txt").write_text("four years of work")
    assert run_loop("--quick", "--resume", tmp_path) == explorer.errors.EXIT_BAD_INPUT
    assert "not a run folder (no run.json; it holds thesis.txt)" in one_line(capsys)
    assert [path.name for path in tmp_path.iterdir()] == ["thesis.txt"]


def test_resume_names_a_start_interrupted_before_its_run_record(tmp_path, capsys):
    (tmp_path / ".lock").write_text("")
    assert run_loop("--quick", "--resume", tmp_path) == explorer.errors.EXIT_BAD_INPUT
    assert f"interrupted before it wrote run.json; nothing in it was trained; start it again with --out {tmp_path}" in (
        one_line(capsys)
    )


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda folder: (folder / "thesis.txt").write_text("x"), "is not empty and holds no run (thesis.txt)"),
        (lambda folder: (folder / "run.json").write_text("{}"), "already holds a run; continue it with --resume"),
    ],
    ids=["someone-elses-folder", "an-existing-run"],
)
def test_out_refuses_a_folder_that_is_not_new_or_empty(tmp_path, capsys, setup, words):
    setup(tmp_path)
    before = sorted(path.name for path in tmp_path.iterdir())
    assert run_loop("--quick", "--out", tmp_path) == explorer.errors.EXIT_BAD_INPUT
    assert words in one_line(capsys)
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_out_at_a_file_is_refused_before_any_data_is_loaded(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    assert run_loop("--quick", "--out", tmp_path / "a-file") == explorer.errors.EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert "--out" in captured.err and "is a file, not a folder" in captured.err
    assert captured.out == ""  # no data banner, no line at all before the refusal


def test_paths_are_checked_before_keras_is_imported(tmp_path):
    """A missing --data or --resume, an --out at a file, a --resume of a folder that is not a run
    and an abbreviated --backend (which once imported JAX before argparse read it) are refused by
    the command line alone: Keras, which takes seconds to import, never loads."""
    (tmp_path / "file").write_text("")
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "thesis.txt").write_text("")
    cases = [["--data", tmp_path / "nowhere"], ["--resume", tmp_path / "nowhere"], ["--out", tmp_path / "file"],
             ["--resume", tmp_path / "thesis"], ["--back", "tensorflow"]]  # fmt: skip
    script = (  # argparse's own refusals exit (SystemExit) rather than return
        "import sys, model_builder_loop\n"
        "def code(case):\n"
        "    try:\n        return model_builder_loop.main(case)\n"
        "    except SystemExit as stop:\n        return stop.code\n"
        f"codes = [code(case) for case in {[[str(a) for a in case] for case in cases]!r}]\n"
        "print(codes, 'keras' in sys.modules)\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert finished.stdout.strip() == "[2, 2, 2, 2, 2] False", finished.stderr
    assert len(finished.stderr.strip().splitlines()) == 5 and "Traceback" not in finished.stderr


def test_the_api_refuses_an_unknown_reference(tmp_path, synthetic_npz):
    with pytest.raises(explorer.errors.ConfigError, match=r"--reference 'nope' is not a configuration of this sweep"):
        common.sweep(
            {"a": {"hidden_units": [8]}}, reference="nope", data=synthetic_npz, out=tmp_path / "run", quick=True
        )
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# A finished epoch is never lost: a kill after the last epoch, found with a pause point


@pytest.mark.backend
@pytest.mark.parametrize("moment", ["trained", "recorded one"])
def test_a_kill_after_the_last_epoch_trains_no_finished_epoch_again(tmp_path, capsys, moment):
    arguments = sweep_files(tmp_path, epochs=3)
    command = [sys.executable, str(PROJECT_ROOT / "model_builder_loop.py"), "--repeats", "1", *map(str, arguments),
               "--out", str(tmp_path / "run")]  # fmt: skip
    environment = {**os.environ, "KERAS_BACKEND": common.keras.backend.backend(), "EXPLORER_PAUSE_AT": moment}
    process = subprocess.Popen(command, env=environment, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        lines = iter(process.stdout.readline, "")
        assert any(line.startswith(f"paused at {moment}") for line in lines)
    finally:
        process.kill()
        process.wait()
    histories = {name: (tmp_path / "run" / name / "history.csv").read_text() for name in ("first", "second")}
    assert run_loop(*arguments, "--resume", tmp_path / "run") == 0
    out = capsys.readouterr().out
    assert "epoch 1/3" not in out and "epoch 3/3" not in out  # no epoch trained again
    assert "Epoch 1/3" not in out and "fused training failed" not in out
    assert ("first (rides along)" in out) == (moment == "recorded one")
    finished = results(tmp_path / "run")
    assert {name: (r["status"], r["epochs_run"]) for name, r in finished.items()} == {
        "first": ("ok", 3),
        "second": ("ok", 3),
    }
    for name, history in histories.items():
        assert (tmp_path / "run" / name / "history.csv").read_text() == history
    assert not (tmp_path / "run" / explorer.store.folders.FUSED_FOLDER).exists()


# ---------------------------------------------------------------------------------------------
# Every file is checked before it is trusted


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _set_result_field(path: Path, field: str, value: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))


DAMAGES = [
    ("model-truncated", lambda m: _truncate(m / "model.keras"), "its model.keras is not a complete Keras archive"),
    ("accuracy-text", lambda m: _set_result_field(m / "result.json", "test_accuracy", "high"),
     "its result.json has test_accuracy = 'high', not a number"),
    ("predictions-truncated", lambda m: _truncate(m / "test_predictions.npy"), "its test_predictions.npy cannot be read"),
    ("history-row-removed",
     lambda m: (m / "history.csv").write_text("".join((m / "history.csv").read_text().splitlines(True)[:-1])),
     "its history.csv holds 1 epoch(s), its result.json 2"),
    ("seconds-text", lambda m: _set_result_field(m / "result.json", "train_seconds", "slow"),
     "its result.json has train_seconds = 'slow', not a number"),
    ("result-nested-brackets", lambda m: (m / "result.json").write_text("[" * 100_000),
     "its result.json cannot be read as JSON"),
    ("config-not-a-table", lambda m: _set_result_field(m / "result.json", "config", "wide"),
     "its result.json has config = 'wide', not a table of the network's fields"),
    ("result-deleted", lambda m: (m / "result.json").unlink(),
     "its result.json is missing and no checkpoint holds its epochs"),
    ("history-nan", lambda m: _last_history_cell(m / "history.csv", "loss", "nan"),
     "its history.csv holds a loss that is not a number, yet its result.json says it finished"),
]  # fmt: skip


def _last_history_cell(path: Path, column: str, value: str) -> None:
    lines = path.read_text().splitlines()
    header, last = lines[0].split(","), lines[-1].split(",")
    last[header.index(column)] = value
    path.write_text("\n".join([*lines[:-1], ",".join(last)]) + "\n")


def _predictions(path: Path, array) -> None:
    with path.open("wb") as handle:
        np.save(handle, array, allow_pickle=True)


COMPARE_DAMAGES = [
    ("predictions-pickled", lambda m: _predictions(m / "test_predictions.npy", np.array([{"a": 1}], dtype=object))),
    ("digits-out-of-range", lambda m: _predictions(m / "test_predictions.npy", np.full(200, 99, dtype=np.int64))),
    ("history-row-short",
     lambda m: (m / "history.csv").write_text("".join((m / "history.csv").read_text().splitlines(True)[:-1]))),
    ("history-row-longer",
     lambda m: (m / "history.csv").write_text((m / "history.csv").read_text() + (m / "history.csv").read_text().splitlines(True)[-1].replace("1,", "2,", 1))),
]  # fmt: skip


@pytest.mark.parametrize("damage", [case[1] for case in COMPARE_DAMAGES], ids=[case[0] for case in COMPARE_DAMAGES])
def test_compare_never_draws_what_resume_would_set_aside(finished_run, tmp_path, capsys, damage):
    run_dir, arguments = finished_run
    shutil.copytree(run_dir, tmp_path / "other")
    damage(run_dir / "first")
    data = arguments[arguments.index("--data") + 1]
    assert run_loop("--compare", run_dir, tmp_path / "other", "--out", tmp_path / "both", "--data", data) == 0
    assert "Traceback" not in capsys.readouterr().err
    compared = json.loads((tmp_path / "both" / "summary.json").read_text())
    rows = compared["rows"] if isinstance(compared, dict) else compared
    assert len(rows) == 3  # the damaged run's first model is left out; the other three are compared


@pytest.mark.parametrize(("damage", "words"), [case[1:] for case in DAMAGES], ids=[case[0] for case in DAMAGES])
def test_a_damaged_file_of_a_finished_model_is_set_aside_and_retrained(finished_run, capsys, damage, words):
    run_dir, arguments = finished_run
    kept = (run_dir / "second" / "result.json").read_bytes()
    before = results(run_dir)["second"]["test_accuracy"]
    damage(run_dir / "first")
    capsys.readouterr()
    assert run_loop(*arguments, "--resume", run_dir) == 0
    out = capsys.readouterr().out
    assert f"first: {words}" in out and "; retraining it (old folder moved to .replaced/first-" in out
    assert "second: finished earlier with the same configuration; kept" in out
    assert (run_dir / "second" / "result.json").read_bytes() == kept
    assert results(run_dir)["first"]["status"] == "ok" and results(run_dir)["second"]["test_accuracy"] == before
    assert len(list((run_dir / ".replaced").iterdir())) == 1


def test_a_damaged_run_record_is_set_aside(finished_run, capsys):
    run_dir, arguments = finished_run
    (run_dir / "run.json").write_text("[]")
    assert run_loop(*arguments, "--resume", run_dir) == 0
    assert "run.json was damaged; kept as run.json.damaged-" in capsys.readouterr().out
    assert json.loads((run_dir / "run.json").read_text())["layout"] == explorer.store.folders.LAYOUT


def test_a_lock_that_is_a_folder_is_one_line(finished_run, capsys):
    run_dir, arguments = finished_run
    (run_dir / ".lock").unlink()
    (run_dir / ".lock").mkdir()
    assert run_loop(*arguments, "--resume", run_dir) == explorer.errors.EXIT_BAD_INPUT
    assert "its .lock is a folder, not the lock file a sweep writes; remove that folder" in one_line(capsys)


@pytest.fixture(scope="module")
def interrupted_run_template(tmp_path_factory):
    """A two-model fused run of 4 epochs stopped by Ctrl-C after its second epoch's checkpoint, what
    it printed, and the same sweep run to the end without interruption (the numbers to match)."""
    folder = tmp_path_factory.mktemp("interrupted")
    arguments = sweep_files(folder, epochs=4)
    save = explorer.engine.callbacks.EpochBackupAndRestore.save_epoch

    def interrupted_after_two_epochs(self, finished_epochs):
        save(self, finished_epochs)
        if finished_epochs == 2:
            raise KeyboardInterrupt

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(explorer.engine.callbacks.EpochBackupAndRestore, "save_epoch", interrupted_after_two_epochs)
        assert run_loop(*arguments, "--out", folder / "run") == explorer.errors.EXIT_INTERRUPTED
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_loop(*arguments, "--out", folder / "uninterrupted") == 0
    return folder, arguments, printed.getvalue()


@pytest.fixture
def interrupted_run(interrupted_run_template, tmp_path):
    """A copy of the interrupted run, the arguments that made it, and what it printed."""
    folder, arguments, printed = interrupted_run_template
    shutil.copytree(folder / "run", tmp_path / "run")
    return tmp_path / "run", arguments, printed


def test_an_interruption_names_only_what_exists_and_the_epochs_kept(interrupted_run):
    out = interrupted_run[2]
    assert "first, second: 2 of 4 epochs kept" in out
    assert "No model has finished yet, so there is nothing to summarize." in out
    assert "Report:" not in out and "summary.csv" not in out
    assert " 0.0 s training" not in out  # the two epochs that ran are counted
    assert f"{explorer.config.options.interpreter()} model_builder_loop.py" in out


@pytest.mark.parametrize(
    ("damage", "words"),
    [("history.csv", "its history.csv is missing or damaged, and its checkpoint holds 2 epochs"),
     ("trial.json", "its trial.json is missing or damaged")],
)  # fmt: skip
def test_a_damaged_member_of_an_interrupted_group_trains_again_and_the_others_keep_their_epochs(
    interrupted_run, interrupted_run_template, capsys, damage, words
):
    run_dir, arguments, _ = interrupted_run
    (run_dir / "first" / damage).unlink()
    assert run_loop(*arguments, "--resume", run_dir) == 0
    out = capsys.readouterr().out
    assert f"first: {words}; retraining it" in out and "second: continuing after epoch 2" in out
    resumed = results(run_dir)
    assert resumed["second"]["resumed_from_epoch"] == 2 and resumed["first"]["resumed_from_epoch"] is None
    assert [len(common.read_history(run_dir / name / "history.csv")["loss"]) for name in ("first", "second")] == [4, 4]
    # Both end where an uninterrupted run ends.
    uninterrupted = results(interrupted_run_template[0] / "uninterrupted")
    assert sorted(uninterrupted) == ["first", "second"]
    for name, result in uninterrupted.items():
        assert resumed[name]["val_loss"] == pytest.approx(result["val_loss"], rel=1e-5)
        assert resumed[name]["test_accuracy"] == pytest.approx(result["test_accuracy"], abs=1e-9)


def test_a_checkpoint_that_cannot_be_read_is_said_and_training_starts_again(
    interrupted_run, interrupted_run_template, capsys
):
    run_dir, arguments, _ = interrupted_run
    for weights in (run_dir / ".fused").glob("*/epoch-*/latest.weights.h5"):
        weights.write_bytes(b"not HDF5")
    assert run_loop(*arguments, "--resume", run_dir) == 0
    out = capsys.readouterr().out
    assert "first, second: checkpoint epoch-2, epoch-1 could not be read; training from the first epoch" in out
    resumed, uninterrupted = results(run_dir), results(interrupted_run_template[0] / "uninterrupted")
    for name, result in uninterrupted.items():
        assert resumed[name]["test_accuracy"] == result["test_accuracy"]
        assert resumed[name]["resumed_from_epoch"] is None


def test_resume_alone_continues_a_run_started_with_other_options(interrupted_run, interrupted_run_template, capsys):
    # Started with --config, --data and --repeats 1; continued with --resume RUN alone, from another folder.
    run_dir, _, printed = interrupted_run
    assert f"model_builder_loop.py --resume {interrupted_run_template[0] / 'run'}" in printed
    os.chdir(run_dir)
    try:
        assert model_builder_loop.main(["--resume", str(run_dir)]) == 0
    finally:
        os.chdir(PROJECT_ROOT)
    assert "first: continuing after epoch 2" in capsys.readouterr().out
    resumed, uninterrupted = results(run_dir), results(interrupted_run_template[0] / "uninterrupted")
    assert sorted(resumed) == sorted(uninterrupted) == ["first", "second"]
    for name, result in uninterrupted.items():
        assert resumed[name]["test_accuracy"] == result["test_accuracy"]


# ---------------------------------------------------------------------------------------------
# Never a traceback: a full disk stops the run in one line, and nothing finished is lost


def _disk_full_on(name: str, monkeypatch) -> None:
    """Make every write of a file whose temporary name starts with `.{name}` fail as a full disk does."""
    write_text, save = Path.write_text, np.save

    def full(path):
        if Path(path).name.startswith(f".{name}"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: full(self) or write_text(self, *a, **k))
    monkeypatch.setattr(explorer.store.files.np, "save", lambda path, *a, **k: full(path) or save(path, *a, **k))


def test_a_full_disk_stops_the_run_in_one_line_and_a_resume_loses_nothing(tmp_path, monkeypatch, capsys):
    arguments = sweep_files(tmp_path, epochs=2)
    with monkeypatch.context() as patch:
        _disk_full_on("test_predictions", patch)
        assert run_loop(*arguments, "--out", tmp_path / "run") == explorer.errors.EXIT_BAD_INPUT
    error = one_line(capsys)
    assert "test_predictions.npy (No space left on device); the run stopped here" in error
    assert "every model finished before it is intact" in error
    assert not (tmp_path / "run" / "summary.csv").exists() and not results(tmp_path / "run")
    assert run_loop(*arguments, "--resume", tmp_path / "run") == 0
    out = capsys.readouterr().out
    assert "epoch 1/2" not in out  # the checkpoint of the last epoch was kept
    assert {name: r["epochs_run"] for name, r in results(tmp_path / "run").items()} == {"first": 2, "second": 2}


def test_a_full_disk_on_resume_is_one_line(finished_run, monkeypatch, capsys):
    run_dir, arguments = finished_run
    _disk_full_on("run", monkeypatch)
    assert run_loop(*arguments, "--resume", run_dir) == explorer.errors.EXIT_BAD_INPUT
    assert "run.json (No space left on device)" in one_line(capsys)


# ---------------------------------------------------------------------------------------------
# The exit code tells the truth


def test_one_failed_repeat_makes_the_exit_code_one(tmp_path, monkeypatch, capsys):
    arguments = sweep_files(tmp_path, epochs=1)
    train_group = explorer.engine.training.train_group

    def fails_for_the_second_seed(trials, *args, **kwargs):
        if trials[0].repeat == 1:
            raise RuntimeError("out of memory")
        return train_group(trials, *args, **kwargs)

    monkeypatch.setattr(explorer.engine.groups, "train_group", fails_for_the_second_seed)
    code = model_builder_loop.main(
        [*map(str, arguments), "--repeats", "2", "--only", "first", "--out", str(tmp_path / "run")]
    )
    assert code == explorer.errors.EXIT_MODEL_FAILED
    out = capsys.readouterr().out
    (failed,) = [trial for trial, result in results(tmp_path / "run").items() if result["status"] == "failed"]
    assert f"Failed: {failed} (the reason in each one's result.json and traceback.txt)" in out
    assert "RuntimeError: out of memory" in (tmp_path / "run" / failed / "traceback.txt").read_text()


def test_ctrl_c_that_python_swallows_while_summarizing_still_exits_130(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)  # the handler is the script's, not Jupyter's
    arguments = sweep_files(tmp_path, epochs=1)
    build_views = explorer.views.summarize.build_views

    def swallowed(*args, **kwargs):
        with contextlib.suppress(KeyboardInterrupt):  # as when raised in a garbage-collection callback
            signal.raise_signal(signal.SIGINT)
        return build_views(*args, **kwargs)

    monkeypatch.setattr(explorer.engine.sweep, "build_views", swallowed)
    before = signal.getsignal(signal.SIGINT)
    assert run_loop(*arguments, "--out", tmp_path / "run") == explorer.errors.EXIT_INTERRUPTED
    assert "Interrupted while summarizing; every finished model is kept" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_the_resume_command_names_the_interpreter_that_ran(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / ".venv" / "bin" / "python"))
    monkeypatch.setattr(explorer.config.options.shutil, "which", lambda name: None)
    options = explorer.config.options.Options(prog="model_builder_loop.py", argv=("--epochs", "3", "--out", "runs/a"))
    assert options.resume_command(Path("runs/a")) == ".venv/bin/python model_builder_loop.py --epochs 3 --resume runs/a"


# ---------------------------------------------------------------------------------------------
# What a user reads: every line within 100 columns, and all of it kept in log.txt


def test_every_line_the_explorer_prints_fits_100_columns_offline(tmp_path, monkeypatch, capsys):
    def offline():
        raise explorer.errors.DataSourceUnavailable(
            "URL fetch failure on https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz: "
            "None -- [Errno -2] Name or service not known"
        )

    monkeypatch.setattr(
        explorer.data.loading, "load_mnist", functools.partial(explorer.data.mnist.load_mnist, keras_loader=offline)
    )
    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_loop("--quick", "--only", "softmax_regression", "dense_32_relu", "--out", "run") == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("falling back to the embedded sample" in line for line in lines)
    assert [line for line in lines if len(line) > 100] == []
    log = (tmp_path / "run" / "log.txt").read_text().splitlines()
    assert log[1:] == lines  # under a line that dates it


def test_log_txt_grows_with_every_resume(finished_run, capsys):
    run_dir, arguments = finished_run
    assert run_loop(*arguments, "--resume", run_dir) == 0
    log = (run_dir / "log.txt").read_text()
    assert log.count("=== ") == 2 and "first: finished earlier with the same configuration; kept" in log


def test_ctrl_c_while_a_file_is_written_leaves_no_partial_file(tmp_path):
    target = tmp_path / "report.html"
    with pytest.raises(KeyboardInterrupt), explorer.store.files.writing(target) as partial:
        partial.write_text("<html>half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
