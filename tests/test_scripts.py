"""Both scripts end to end on synthetic data, and every command-line error as one line, exit code 2."""

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import common
import explorer.config.defaults
import explorer.config.options
import explorer.engine.groups
import explorer.engine.phases
import explorer.engine.training
import explorer.errors
import explorer.models.variants
import explorer.store.schema
import model_builder_loop
import model_builder_seq

from conftest import PROJECT_ROOT

PER_MODEL_FILES = {
    "history.csv", "curves.png", "model.keras", "model_summary.txt", "result.json", "test_predictions.npy", "trial.json",
}  # fmt: skip
SWEEP_FILES = {
    "run.json", "summary.csv", "summary.json", "repeats.csv", "comparison.png", "confusion_matrix.png", "misclassified.png",
    "timings.json",
}  # fmt: skip


def run_script(script, *arguments, env=None, python_options=()):
    """Run a script as a user would: a new process, on the backend this test session uses."""
    environment = {**os.environ, "KERAS_BACKEND": common.keras.backend.backend(), **(env or {})}
    return subprocess.run(
        [sys.executable, *python_options, str(PROJECT_ROOT / script), *map(str, arguments)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=PROJECT_ROOT,
        timeout=600,
    )


def assert_consistent_run_folder(run_dir, names, epochs):
    """Every file exists, and every number agrees with the others."""
    assert {path.name for path in run_dir.iterdir()} >= SWEEP_FILES
    summary = json.loads((run_dir / "summary.json").read_text())
    assert sorted(row["name"] for row in summary) == sorted(names)
    accuracies = [row["test_accuracy"] for row in summary]
    assert accuracies == sorted(accuracies, reverse=True) and [row["rank"] for row in summary] == list(
        range(1, len(names) + 1)
    )
    with (run_dir / "summary.csv").open() as handle:
        assert [row["name"] for row in csv.DictReader(handle)] == [row["name"] for row in summary]
    for row in summary:
        model_dir = run_dir / row["name"]
        result = json.loads((model_dir / "result.json").read_text())
        # A network with a hidden layer also keeps its first layer after a few epochs (the report's).
        hidden = {"first_layer_epochs.npz"} if result["config"].get("hidden_units") else set()
        assert {path.name for path in model_dir.iterdir()} == PER_MODEL_FILES | hidden
        result = json.loads((model_dir / "result.json").read_text())
        assert result["test_accuracy"] == row["test_accuracy"] and result["parameters"] == row["parameters"]
        assert result["epochs_run"] == epochs and result["versions"]["backend"] == common.keras.backend.backend()
        history = common.read_history(model_dir / "history.csv")
        assert len(history["loss"]) == epochs and history["val_accuracy"][-1] == pytest.approx(result["val_accuracy"])
        # Measured, and within the run's own wall time (which also holds loading, building and views).
        assert 0 < result["train_seconds"] < json.loads((run_dir / "timings.json").read_text())["wall_seconds"]
        predictions = np.load(model_dir / "test_predictions.npy")
        assert len(predictions) == result["samples"]["test"] > 0
    return summary


@pytest.mark.backend
def test_loop_script_quick_run_writes_every_file(tmp_path, synthetic_npz):
    out = tmp_path / "run"
    names = ["dense_32_relu", "softmax_regression", "dense_128_relu_sigmoid_out"]
    on_jax = common.keras.backend.backend() == "jax"
    # -X importtime lists every module the process imported, on stderr.
    finished = run_script("model_builder_loop.py", "--quick", "--data", synthetic_npz, "--out", out, "--only", *names,
                          python_options=["-X", "importtime"] if on_jax else [])  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    if on_jax:  # TensorFlow is installed, and Keras imports it to seed or serialize; a JAX sweep has no use for it
        imported = {
            line.split("|")[-1].strip() for line in finished.stderr.splitlines() if line.startswith("import time:")
        }
        assert {"keras", "jax"} <= imported and not any(name.startswith("tensorflow") for name in imported)
    summary = assert_consistent_run_folder(out, names, epochs=1)
    assert "Data: MNIST files at" in finished.stdout and f"{synthetic_npz}" in finished.stdout
    assert "(600 train / 200 test digits)" in finished.stdout
    assert f"[1/1] 3 models fused: seed {explorer.config.defaults.DEFAULT_SEED}, 1 epoch," in finished.stdout
    # Every line fits a 100-column terminal, except those that name a path (of any length).
    long_lines = [line for line in finished.stdout.splitlines() if len(line) > 100 and str(tmp_path) not in line]
    assert not long_lines, long_lines
    lines = finished.stdout.splitlines()
    header = next(number for number, line in enumerate(lines) if re.match(r"#\s+model\s+test acc", line))
    assert lines[header + 2].split()[:2] == ["1", summary[0]["name"]]  # the leaderboard, best first
    run = json.loads((out / "run.json").read_text())
    assert (
        run["seed"] == explorer.config.defaults.DEFAULT_SEED
        and run["models"] == names
        and run["data"]["kind"] == "path"
    )
    timings = json.loads((out / "timings.json").read_text())
    phases = timings["phases"]
    assert {"checking", "data", "building", "first_epoch", "checkpointing", "saving", "views"} <= phases.keys()
    assert list(phases)[:3] == ["checking", "data", "planning"] and list(phases)[-1] == "views"  # in run order
    assert sum(phases.values()) <= timings["wall_seconds"] and "s to start, " in finished.stdout


def test_seq_script_quick_run_trains_every_variant(tmp_path, synthetic_npz):
    """The seq script end to end. That it trains the loop script's networks to the same numbers
    follows from test_builders' test_both_scripts_build_the_same_networks_with_the_same_initial_weights
    (the engine seeds each trial, and fused equals alone: test_fusion)."""
    out = tmp_path / "run"
    finished = run_script("model_builder_seq.py", "--quick", "--data", synthetic_npz, "--out", out)
    assert finished.returncode == 0, finished.stderr
    assert_consistent_run_folder(out, [variant.name for variant in model_builder_seq.VARIANTS], epochs=1)


def test_loop_script_reads_a_toml_sweep_with_epoch_and_batch_overrides(tmp_path, synthetic_npz, capsys):
    config = tmp_path / "sweep.toml"
    config.write_text(
        '[tiny]\nhidden_units = [8]\nepochs = 9\n\n[tiny_tanh]\nhidden_units = [8]\nactivation = "tanh"\n'
    )
    out = tmp_path / "run"
    argv = [
        "--config",
        config,
        "--data",
        synthetic_npz,
        "--out",
        out,
        "--epochs",
        "2",
        "--batch-size",
        "50",
        "--repeats",
        "1",
    ]
    assert model_builder_loop.main(list(map(str, argv))) == 0
    results = {result["name"]: result for result in explorer.store.schema.read_results(out)}
    assert {name: (r["config"]["epochs"], r["config"]["batch_size"]) for name, r in results.items()} == {
        "tiny": (2, 50),
        "tiny_tanh": (2, 50),
    }
    assert_consistent_run_folder(out, ["tiny", "tiny_tanh"], epochs=2)
    assert "tiny_tanh" in capsys.readouterr().out


def test_help_lists_every_option_with_defaults():
    finished = run_script("model_builder_loop.py", "--help")
    assert finished.returncode == 0
    for option in (
        "--data",
        "--out",
        "--epochs",
        "--batch-size",
        "--seed",
        "--quick",
        "--backend",
        "--only",
        "--config",
    ):
        assert option in finished.stdout
    text = " ".join(finished.stdout.split())
    assert "(default: 42)" in text and "(default: runs/<timestamp>)" in text
    assert "--only" not in run_script("model_builder_seq.py", "--help").stdout
    # Written for a person: a title and what it does, examples and exit codes; nothing about the source.
    assert finished.stdout.startswith(
        "usage: model_builder_loop.py [options]\n\nDense networks on MNIST, many at once."
    )
    assert "Title:" not in finished.stdout and "Description:" not in finished.stdout and "below" not in finished.stdout
    assert "\nexamples:\n    python model_builder_loop.py " in finished.stdout
    assert "\n    python model_builder_loop.py --quick " in finished.stdout
    assert "\nexit codes:\n  0 " in finished.stdout and "\n  130  interrupted" in finished.stdout
    for group in ("data and run folder:", "training:", "comparison, logging and backend:", "which networks:"):
        assert f"\n{group}\n" in finished.stdout


# Every bad command line is refused in process (test_bad_inputs); here, as a real process, one that
# argparse refuses and one found after it: each one line on stderr, exit 2, nothing left behind.
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--epochs", "ten"], r"argument --epochs: 'ten' is not a whole number"),
        (["--data", "/nonexistent/mnist"], r"/nonexistent/mnist: no such file or folder.*leave --data .* out"),
    ],
)
def test_bad_command_lines_fail_in_one_line(tmp_path, arguments, message):
    finished = run_script("model_builder_loop.py", "--out", tmp_path / "run", *arguments)
    assert finished.returncode == explorer.errors.EXIT_BAD_INPUT
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in finished.stderr
    assert not (tmp_path / "run").exists()  # bad input leaves nothing behind
    assert re.search(message, lines[0]), lines[0]


def test_an_out_folder_with_results_is_never_overwritten(tmp_path, synthetic_npz, capsys):
    out = tmp_path / "run"
    argv = ["--quick", "--data", str(synthetic_npz), "--out", str(out), "--only", "softmax_regression"]
    assert model_builder_loop.main(argv) == 0
    before = (out / "softmax_regression" / "result.json").read_bytes()
    assert model_builder_loop.main(argv) == explorer.errors.EXIT_BAD_INPUT
    assert f"already holds a run; continue it with --resume {out}" in capsys.readouterr().err
    assert (out / "softmax_regression" / "result.json").read_bytes() == before


def test_a_backend_other_than_the_imported_one_is_refused_in_process(tmp_path, synthetic_npz, capsys):
    other = next(name for name in common.BACKENDS if name != common.keras.backend.backend())
    argv = ["--backend", other, "--data", str(synthetic_npz), "--out", str(tmp_path / "run")]
    assert model_builder_seq.main(argv) == explorer.errors.EXIT_BAD_INPUT
    assert f"start a new process with --backend {other}" in capsys.readouterr().err


def test_ctrl_c_keeps_finished_models_and_summarizes_them(tmp_path, synthetic_npz, monkeypatch, capsys):
    train_group = explorer.engine.training.train_group

    def interrupted_on_the_second_model(trials, *args, **kwargs):
        if trials[0].name == "softmax_regression":
            raise KeyboardInterrupt
        return train_group(trials, *args, **kwargs)

    monkeypatch.setattr(explorer.engine.groups, "train_group", interrupted_on_the_second_model)
    argv = [
        "--no-fuse",
        "--quick",
        "--data",
        str(synthetic_npz),
        "--out",
        str(tmp_path / "run"),
        "--only",
        "dense_32_relu",
        "softmax_regression",
    ]
    assert model_builder_loop.main(argv) == explorer.errors.EXIT_INTERRUPTED
    out = capsys.readouterr().out
    assert "Interrupted: 1 finished model(s) are kept" in out
    python = explorer.config.options.interpreter()
    resume = f"{python} model_builder_loop.py --resume {tmp_path / 'run'}"  # run.json keeps the rest
    assert f"To continue where it stopped:\n  {resume}\n" in out
    assert_consistent_run_folder(tmp_path / "run", ["dense_32_relu"], epochs=1)


@pytest.mark.backend
@pytest.mark.parametrize("script", ["model_builder_seq", "model_builder_loop"])
def test_each_script_imports_keras_with_the_backend_its_command_line_names(script):
    other = next(name for name in common.BACKENDS if name != common.keras.backend.backend())
    probe = (
        f"import sys; sys.argv = ['x', '--backend', '{other}']; import {script}, keras; print(keras.backend.backend())"
    )
    finished = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300,
        env={**os.environ, "KERAS_BACKEND": common.keras.backend.backend()},
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == other
    help_text = run_script(f"{script}.py", "--help")
    assert help_text.returncode == 0 and help_text.stderr == ""  # no start-up noise from the backends


HEAVY_MODULES = ("keras", "jax", "jaxlib", "tensorflow", "matplotlib", "scipy", "statsmodels")


@pytest.mark.parametrize(
    ("script", "arguments", "exit_code"),
    [
        ("model_builder_seq.py", ["--help"], 0),
        ("model_builder_loop.py", ["--help"], 0),
        ("model_builder_seq.py", ["--epochs", "0"], 2),
        ("model_builder_loop.py", ["--backend", "torch"], 2),
        ("model_builder_loop.py", ["--only", "dense_128_rellu"], 2),
        ("model_builder_loop.py", ["--config", "missing.toml"], 2),
    ],
)
def test_help_and_input_errors_answer_before_keras_is_imported(script, arguments, exit_code):
    """Keras with JAX or TensorFlow takes seconds to import: none of it may load before the command
    line (and the loop script's configurations) are checked."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{script!r}, *{arguments!r}]\n"
        "try:\n"
        f"    runpy.run_path({script!r}, run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    code = stop.code\n"
        f"loaded = sorted({{name.split('.')[0] for name in sys.modules}} & set({HEAVY_MODULES!r}))\n"
        "print('exit', code, 'loaded', loaded)\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
        env={**os.environ, "KERAS_BACKEND": common.keras.backend.backend()},
    )  # fmt: skip
    assert finished.stdout.strip().splitlines()[-1] == f"exit {exit_code} loaded []", finished.stderr
