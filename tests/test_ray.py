"""The Ray Tune executor: the same run folder as the local executor, ASHA, and a node lost mid-sweep.

Ray traffic stays on loopback: this machine's nodes take addresses of their own (127.0.0.2 for the
head, 127.0.0.3 for a worker), because Ray swaps 127.0.0.1 for the machine's network address. Token
authentication, on by default for `ray start --head`, is turned off in these tests' environment.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import common
import explorer.errors
import explorer.store.schema
import model_builder_loop

from conftest import PROJECT_ROOT, make_synthetic_digits

pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
# Two configurations that fuse (one Tune trial for both) and one that trains alone (a second trial).
SWEEP = """
[wide]
hidden_units = [32]
epochs = 2

[narrow_sigmoid_out]
hidden_units = [8]
output_activation = "sigmoid"
epochs = 2

[three_epochs]
hidden_units = [16]
epochs = 3
"""


@pytest.fixture(autouse=True)
def ray_environment(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def run_loop(*arguments):
    return model_builder_loop.main(["--repeats", "1", *(str(argument) for argument in arguments)])


def model_files(run_dir, name):
    return sorted(path.name for path in (run_dir / name).iterdir())


def test_ray_executor_gives_the_local_executors_files_fields_and_numbers(tmp_path, synthetic_npz, capsys):
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP)
    assert run_loop("--config", config, "--data", synthetic_npz, "--out", tmp_path / "local") == 0
    ray_options = ["--executor", "ray", "--ray-node-ip", HEAD_IP, "--max-concurrent", "2"]
    assert run_loop("--config", config, "--data", synthetic_npz, "--out", tmp_path / "ray", *ray_options) == 0
    assert "Ray: 1 node(s)" in capsys.readouterr().out

    for name in ("wide", "narrow_sigmoid_out", "three_epochs"):
        assert model_files(tmp_path / "ray", name) == model_files(tmp_path / "local", name)
        local, ray = (json.loads((tmp_path / run / name / "result.json").read_text()) for run in ("local", "ray"))
        assert set(ray) == set(local)
        assert (local["executor"], ray["executor"], ray["node"]) == ("local", "ray", HEAD_IP)
        assert ray["fused_group"] == local["fused_group"] and ray["trial_key"] == local["trial_key"]
        for metric in ("test_accuracy", "val_accuracy", "train_accuracy"):
            assert ray[metric] == pytest.approx(local[metric], abs=1e-6), (name, metric)
        for metric in ("test_loss", "val_loss", "train_loss"):
            assert ray[metric] == pytest.approx(local[metric], rel=1e-5), (name, metric)
        predictions = [np.load(tmp_path / run / name / "test_predictions.npy") for run in ("local", "ray")]
        np.testing.assert_array_equal(*predictions)
    assert (tmp_path / "ray" / "report.html").is_file() and (tmp_path / "ray" / "summary.csv").is_file()
    local_summary, ray_summary = (json.loads((tmp_path / run / "summary.json").read_text()) for run in ("local", "ray"))
    assert [row["name"] for row in ray_summary] == [row["name"] for row in local_summary]
    # The models are in the run folder once: Tune's checkpoints of the finished trials are removed.
    assert not list((tmp_path / "ray" / ".tune").rglob("checkpoint_*"))
    assert not list((tmp_path / "ray" / ".tune").rglob("model.keras"))

    # The run folder is the same thing too: resuming a finished Ray sweep locally trains nothing.
    capsys.readouterr()
    assert run_loop("--config", config, "--data", synthetic_npz, "--resume", tmp_path / "ray") == 0
    assert capsys.readouterr().out.count("finished earlier with the same configuration; kept") == 3


def test_asha_stops_weak_configurations_early_and_the_summary_says_so(tmp_path, synthetic_npz):
    config = tmp_path / "sweep.toml"
    # Two that learn, then two that cannot (a learning rate a million times too small): trained one
    # at a time in this order, the weak ones reach the first rung behind the good ones and stop there.
    config.write_text(
        "".join(
            f'[{name}]\nhidden_units = [16]\noptimizer = "sgd"\nlearning_rate = {rate}\nepochs = 4\n\n'
            for name, rate in (("good_a", 0.5), ("good_b", 0.4), ("weak_a", 1e-7), ("weak_b", 2e-7))
        )
    )
    options = ["--executor", "ray", "--ray-node-ip", HEAD_IP, "--scheduler", "asha", "--max-concurrent", "1"]
    assert run_loop("--config", config, "--data", synthetic_npz, "--out", tmp_path / "run", *options) == 0
    results = {result["name"]: result for result in explorer.store.schema.read_results(tmp_path / "run")}
    for name in ("weak_a", "weak_b"):
        assert results[name]["status"] == "stopped early" and results[name]["epochs_run"] < 4
        assert results[name]["reason"] == f"stopped early by ASHA after epoch {results[name]['epochs_run']} of 4"
        assert not (tmp_path / "run" / name / "checkpoint").exists()
    assert results["good_a"]["status"] == "ok" and results["good_a"]["epochs_run"] == 4
    rows = {row["name"]: row for row in json.loads((tmp_path / "run" / "summary.json").read_text())}
    assert rows["weak_a"]["status"] == "stopped early" and rows["weak_a"]["rank"] > rows["good_a"]["rank"]


def test_ray_options_need_the_ray_executor(tmp_path, synthetic_npz, capsys):
    run_dir = tmp_path / "run"
    argv = ["--data", str(synthetic_npz), "--out", str(run_dir), "--scheduler", "asha", "--cpus-per-trial", "2"]
    assert model_builder_loop.main(argv) == explorer.errors.EXIT_BAD_INPUT
    assert "--cpus-per-trial, --scheduler: only with --executor ray" in capsys.readouterr().err
    assert not run_dir.exists()  # refused at the door


# ---------------------------------------------------------------------------------------------------
# Two nodes on this machine; the worker node is killed mid-sweep
# ---------------------------------------------------------------------------------------------------


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def epochs_logged(history_csv: Path) -> int:
    try:
        return max(0, len(history_csv.read_text().splitlines()) - 1)
    except OSError:
        return 0


def start_node(arguments, environment, log: Path) -> subprocess.Popen:
    """`ray start --block` in a process group of its own, so killing the group kills this node only."""
    ray = str(Path(sys.executable).parent / "ray")
    return subprocess.Popen(
        [ray, "start", "--block", "--disable-usage-stats", *arguments],
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_node(node: subprocess.Popen) -> None:
    if node.poll() is None:
        node.terminate()  # `ray start --block` stops its node's processes on SIGTERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)  # whatever is left of that node


@pytest.fixture
def two_node_cluster(tmp_path):
    """A head node (127.0.0.2) and a worker node (127.0.0.3), one CPU each; yields the address and
    the worker's process."""
    port = free_port(HEAD_IP)
    environment = {
        **os.environ,
        # Notice a dead node within seconds instead of about 30.
        "RAY_health_check_initial_delay_ms": "1000",
        "RAY_health_check_period_ms": "1000",
        "RAY_health_check_timeout_ms": "1000",
        "RAY_health_check_failure_threshold": "3",
    }
    # Ray's socket paths must fit in 107 bytes, which pytest's tmp_path can exceed.
    ray_temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    head = start_node(
        ["--head", f"--node-ip-address={HEAD_IP}", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
         f"--temp-dir={ray_temp}"],
        environment,
        tmp_path / "head.log",
    )  # fmt: skip
    nodes = [head]
    try:

        def head_listens():
            assert head.poll() is None, (tmp_path / "head.log").read_text()[-2000:]
            with socket.socket() as probe:
                return probe.connect_ex((HEAD_IP, port)) == 0

        wait_for(head_listens, 60, "the head node")
        worker = start_node(
            [f"--address={HEAD_IP}:{port}", f"--node-ip-address={WORKER_IP}", "--num-cpus=1"],
            environment,
            tmp_path / "worker.log",
        )
        nodes.append(worker)
        wait_for(lambda: "Ray runtime started" in (tmp_path / "worker.log").read_text(), 60, "the worker node")
        yield f"{HEAD_IP}:{port}", worker
    finally:
        for node in reversed(nodes):
            stop_node(node)
        shutil.rmtree(ray_temp, ignore_errors=True)


def test_a_sweep_survives_losing_a_worker_node(tmp_path, two_node_cluster):
    address, worker = two_node_cluster
    # Enough digits that an epoch takes about a second on one core, so the kill lands mid-training.
    train, test = make_synthetic_digits(12_000, seed=1), make_synthetic_digits(500, seed=2)
    data = tmp_path / "mnist.npz"
    np.savez(data, x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
    config = tmp_path / "sweep.toml"
    config.write_text(
        '[first]\nhidden_units = [512, 512]\nepochs = 12\nbatch_size = 64\n\n'
        '[second]\nhidden_units = [512, 256]\nepochs = 12\nbatch_size = 64\n'
    )  # fmt: skip
    run_dir = tmp_path / "run"
    command = [sys.executable, str(PROJECT_ROOT / "model_builder_loop.py"), "--config", str(config), "--data",
               str(data), "--out", str(run_dir), "--repeats", "1", "--executor", "ray", "--ray-address", address,
               "--ray-node-ip", HEAD_IP, "--no-fuse"]  # fmt: skip
    with (tmp_path / "driver.log").open("w") as log:
        driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
        try:
            histories = [run_dir / name / "history.csv" for name in ("first", "second")]
            wait_for(lambda: all(epochs_logged(path) >= 2 for path in histories), 150, "both trials' second epoch")
            os.killpg(worker.pid, signal.SIGKILL)  # the worker node, and the trial running on it
            assert driver.wait(timeout=240) == 0, (tmp_path / "driver.log").read_text()[-3000:]
        finally:
            if driver.poll() is None:
                driver.kill()
    results = {result["name"]: result for result in explorer.store.schema.read_results(run_dir)}
    assert set(results) == {"first", "second"}
    assert all(result["status"] == "ok" and result["epochs_run"] == 12 for result in results.values())
    # The trial that lost its node was retried on the head and resumed from its last checkpoint.
    assert all(result["node"] == HEAD_IP for result in results.values())
    assert any((result["resumed_from_epoch"] or 0) >= 1 for result in results.values())
    for name in results:
        assert common.read_history(run_dir / name / "history.csv")["loss"].__len__() == 12
