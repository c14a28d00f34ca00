"""Nothing lost, nothing crashes: resume, kill-and-resume, divergence and failure isolation."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import common
import explorer.engine.training
import explorer.errors
import explorer.models.variants
import explorer.store.files
import explorer.store.resume
import explorer.store.schema
import model_builder_loop

from conftest import PROJECT_ROOT, make_synthetic_digits

TWO_MODELS = """
[first]
hidden_units = [16]
epochs = 2

[second]
hidden_units = [32]
dropout = 0.2
epochs = 3
"""


def write(path, text):
    path.write_text(text)
    return path


def run_loop(*arguments):
    """The loop script in this process, one run per configuration (repeats have tests of their own)."""
    return model_builder_loop.main(["--repeats", "1", *(str(argument) for argument in arguments)])


def results_by_name(run_dir):
    return {result["name"]: result for result in explorer.store.schema.read_results(run_dir)}


def test_resume_keeps_finished_models_and_retrains_changed_ones(tmp_path, synthetic_npz, capsys):
    config = write(tmp_path / "sweep.toml", TWO_MODELS)
    run_dir = tmp_path / "run"
    assert run_loop("--config", config, "--data", synthetic_npz, "--out", run_dir) == 0
    first_before = (run_dir / "first" / "result.json").read_bytes()
    second_before = json.loads((run_dir / "second" / "result.json").read_text())

    # The same command with --out again is refused; --resume with nothing changed trains nothing.
    assert run_loop("--config", config, "--data", synthetic_npz, "--out", run_dir) == explorer.errors.EXIT_BAD_INPUT
    capsys.readouterr()
    assert run_loop("--config", config, "--data", synthetic_npz, "--resume", run_dir) == 0
    assert capsys.readouterr().out.count("finished earlier with the same configuration; kept") == 2

    # Change one configuration: only that one retrains, and its old folder is kept aside.
    write(config, TWO_MODELS.replace("dropout = 0.2", "dropout = 0.3"))
    assert run_loop("--config", config, "--data", synthetic_npz, "--resume", run_dir) == 0
    assert (run_dir / "first" / "result.json").read_bytes() == first_before
    after = results_by_name(run_dir)
    assert after["second"]["config"]["dropout"] == 0.3 and after["second"]["trial_key"] != second_before["trial_key"]
    (aside,) = (run_dir / ".replaced").iterdir()
    assert aside.name.startswith("second-") and json.loads((aside / "result.json").read_text()) == second_before
    assert [row["name"] for row in json.loads((run_dir / "summary.json").read_text())].count("second") == 1
    run = json.loads((run_dir / "run.json").read_text())
    assert "--out" in run["command"] and len(run["resumed"]) == 2


def test_a_diverging_model_is_recorded_and_the_sweep_goes_on(tmp_path, synthetic_npz, capsys):
    config = write(
        tmp_path / "sweep.toml",
        '[exploding]\nhidden_units = [32]\noutput_activation = "linear"\nloss = "mean_squared_error"\n'
        'optimizer = "sgd"\nlearning_rate = 1000.0\nepochs = 5\n\n[steady]\nhidden_units = [16]\nepochs = 2\n',
    )
    assert run_loop("--config", config, "--data", synthetic_npz, "--out", tmp_path / "run") == 0
    results = results_by_name(tmp_path / "run")
    exploding = results["exploding"]
    assert exploding["status"] == "diverged" and exploding["test_accuracy"] is None
    assert exploding["epochs_run"] < 5 and f"in epoch {exploding['epochs_run'] - 1}" in exploding["reason"]
    assert results["steady"]["status"] == "ok"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [row["name"] for row in summary] == ["steady", "exploding"]
    out = capsys.readouterr().out
    assert "DIVERGED: loss became" in out
    assert any(line.split()[:3] == ["2", "exploding", "diverged"] for line in out.splitlines())  # the leaderboard


def test_a_failing_model_is_recorded_the_others_run_and_resume_retries_it(tmp_path, synthetic_npz, monkeypatch, capsys):
    build_model = explorer.models.variants.build_model

    def out_of_memory_for_the_wide_one(variant):
        if variant.name == "first":
            raise MemoryError("RESOURCE_EXHAUSTED: out of memory allocating 4.0 GiB\nmore detail")
        return build_model(variant)

    config = write(tmp_path / "sweep.toml", TWO_MODELS)
    monkeypatch.setattr(explorer.engine.training, "build_model", out_of_memory_for_the_wide_one)
    assert (
        run_loop("--config", config, "--data", synthetic_npz, "--out", tmp_path / "run")
        == explorer.errors.EXIT_MODEL_FAILED
    )
    results = results_by_name(tmp_path / "run")
    assert results["first"]["status"] == "failed" and results["second"]["status"] == "ok"
    assert results["first"]["reason"] == (
        "MemoryError: RESOURCE_EXHAUSTED: out of memory allocating 4.0 GiB (traceback in first/traceback.txt)"
    )
    assert "MemoryError" in (tmp_path / "run" / "first" / "traceback.txt").read_text()
    assert [row["status"] for row in json.loads((tmp_path / "run" / "summary.json").read_text())] == ["ok", "failed"]
    assert "Failed: first" in capsys.readouterr().out

    monkeypatch.setattr(explorer.engine.training, "build_model", build_model)
    assert run_loop("--config", config, "--data", synthetic_npz, "--resume", tmp_path / "run") == 0
    assert {name: r["status"] for name, r in results_by_name(tmp_path / "run").items()} == {
        "first": "ok",
        "second": "ok",
    }


def test_a_trial_with_no_folder_is_trained():
    assert explorer.store.resume.trial_action(PROJECT_ROOT / "no-such-model", "k", test_samples=10).kind == "train"


def test_result_json_never_holds_nan(tmp_path):
    explorer.store.files.write_json_atomic(tmp_path / "r.json", {"loss": float("nan"), "curve": [1.0, float("inf")]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"loss": None, "curve": [1.0, None]}


# ---------------------------------------------------------------------------------------------
# Kill -9 in the middle of the second model, then resume


def _slow_enough_data(tmp_path):
    """Enough synthetic digits, in small batches, that one epoch takes a noticeable fraction of a second."""
    (x_train, y_train), (x_test, y_test) = make_synthetic_digits(2400, seed=1), make_synthetic_digits(300, seed=2)
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def _loop_process(*arguments):
    environment = {**os.environ, "KERAS_BACKEND": common.keras.backend.backend()}
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "model_builder_loop.py"), *map(str, arguments)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment, cwd=PROJECT_ROOT,
    )  # fmt: skip


def _epochs_logged(history_csv):
    return max(0, len(history_csv.read_text().splitlines()) - 1) if history_csv.exists() else 0


def test_sigterm_in_the_second_model_then_resume_matches_an_uninterrupted_run(tmp_path):
    """SIGTERM (what a scheduler sends) ends the run without a traceback, between any two writes
    (a kill at a chosen moment: test_run_folder); --resume then gives the uninterrupted numbers."""
    data = _slow_enough_data(tmp_path)
    config = write(
        tmp_path / "sweep.toml",
        "[first]\nhidden_units = [64]\nepochs = 2\nbatch_size = 8\n\n"
        "[second]\nhidden_units = [256]\ndropout = 0.2\nepochs = 5\nbatch_size = 4\n",
    )
    arguments = ["--config", config, "--data", data, "--seed", 7, "--repeats", 1]
    killed = tmp_path / "killed"
    process = _loop_process(*arguments, "--out", killed)
    deadline = time.monotonic() + 300
    while _epochs_logged(killed / "second" / "history.csv") < 2:  # two epochs done, checkpoint written
        assert process.poll() is None, f"finished before it could be killed: {process.stderr.read()}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    process.wait()
    assert "Traceback" not in process.stderr.read()
    assert not (killed / "second" / "result.json").exists() and (killed / "second" / "checkpoint").is_dir()
    first_result = (killed / "first" / "result.json").read_bytes()

    resumed = _loop_process(*arguments, "--resume", killed)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    uninterrupted = _loop_process(*arguments, "--out", tmp_path / "whole")
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()

    assert (killed / "first" / "result.json").read_bytes() == first_result
    summary = json.loads((killed / "summary.json").read_text())
    assert sorted(row["name"] for row in summary) == ["first", "second"]
    second, reference = (
        json.loads((folder / "second" / "result.json").read_text()) for folder in (killed, tmp_path / "whole")
    )
    # Killed after epoch 1's history row: resumed from epoch 2's checkpoint, or from epoch 1 when the
    # kill came before that epoch's checkpoint was complete (then epoch 1 is trained again).
    assert second["resumed_from_epoch"] in (1, 2) and reference["resumed_from_epoch"] is None
    history = common.read_history(killed / "second" / "history.csv")
    assert (killed / "second" / "history.csv").read_text().splitlines()[1:] and len(history["loss"]) == 5
    epochs = [line.split(",")[0] for line in (killed / "second" / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3", "4"]  # each epoch exactly once
    reference_history = common.read_history(tmp_path / "whole" / "second" / "history.csv")
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert history[column] == pytest.approx(reference_history[column], rel=1e-6, abs=1e-7), column
    assert second["test_accuracy"] == pytest.approx(reference["test_accuracy"], abs=1e-7)
    assert second["test_loss"] == pytest.approx(reference["test_loss"], rel=1e-6)
    assert not (killed / "second" / "checkpoint").exists()  # Keras removes it once training ends


def test_a_run_folder_of_the_earlier_layout_is_refused_in_one_line(tmp_path, synthetic_npz, capsys):
    run_dir = tmp_path / "old"
    (run_dir / "softmax_regression").mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"command": "python model_builder_loop.py", "seed": 42}))
    code = run_loop("--quick", "--data", synthetic_npz, "--only", "softmax_regression", "--resume", run_dir)
    assert code == explorer.errors.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "written by another version of this explorer (run folder layout 1" in error
    assert sorted(path.name for path in run_dir.iterdir()) == ["run.json", "softmax_regression"]  # untouched
