"""Fault hunt: kill a small full-MNIST sweep at random moments and at checkpoint events, resume it,
and check that every resume is exact and restarts where the disk said it would.

    python benchmarks/kill_hunt.py --data ../shared/data/mnist --random 30 --aimed 10

The sweep: three networks, three epochs, one fused group of two and a model alone. One run goes
uninterrupted, for reference. Each trial then starts the same sweep into a new folder and kills it
(SIGKILL, or SIGINT for every fourth random trial) either after a random delay or the moment a
checkpoint event happens (an epoch's checkpoint begun or completed, the group trained, one member
recorded); it notes, per unfinished model, the epochs its group's checkpoint held on disk just
after the kill, resumes the run, and checks:
- restart: the epochs the resume took from the checkpoint (`resumed_from_epoch`) equal those noted;
- exact: every model's history and test figures equal the uninterrupted run's;
- clean (SIGINT, as Ctrl-C): the interrupted run exits 130 (or 0 when it had ended before the
  signal came), with no traceback and no "Exception ignored" (a press swallowed by a
  garbage-collection callback) on its stderr; the seconds from the signal to the exit are noted.
`--aimed-signal SIGINT` sends Ctrl-C instead of SIGKILL at the checkpoint events: right after a
group's checkpoint is where Python used to drop it.
It prints a line per trial and a tally, and exits 1 when any check failed.
"""

import argparse
import csv
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SWEEP = """
[a]
hidden_units = [64]
epochs = 3
batch_size = 256

[b]
hidden_units = [32, 32]
epochs = 3
batch_size = 256

[c]
hidden_units = [128]
epochs = 3
batch_size = 512
"""
MODELS = ("a", "b", "c")
EVENTS = ("checkpoint begun", "checkpoint done", "trained", "recorded one")


def command(config: Path, data: str, *where: str) -> list[str]:
    return [sys.executable, str(PROJECT / "model_builder_loop.py"), "--config", str(config), "--data", data,
            "--repeats", "1", *where]  # fmt: skip


def on_disk(run: Path) -> dict[str, int | str]:
    """Per model: "finished", or the epochs its group's checkpoint holds (read as the engine does)."""
    from explorer.store.group_checkpoint import GroupCheckpoint

    state: dict[str, int | str] = {}
    fused = {}
    for group in GroupCheckpoint.fused_in(run):
        for folder, _ in group.recorded_members() or ():
            fused[folder] = group.epochs()
    for model in MODELS:
        if (run / model / "result.json").exists():
            state[model] = "finished"
        else:
            state[model] = fused.get(model, GroupCheckpoint(run / model / "checkpoint").epochs())
    return state


def results(run: Path) -> dict[str, dict]:
    return {m: json.loads((run / m / "result.json").read_text()) for m in MODELS if (run / m / "result.json").exists()}


def histories(run: Path) -> dict[str, list[dict]]:
    """Every model's history without its seconds (the one column that differs from run to run)."""
    tables = {}
    for model in MODELS:
        with (run / model / "history.csv").open(newline="") as handle:
            tables[model] = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]
    return tables


def start(config: Path, data: str, run: Path, pause: str | None = None) -> subprocess.Popen:
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    if pause:
        environment["EXPLORER_PAUSE_AT"] = pause
    stderr = run.with_name(run.name + ".stderr").open("w")  # read back for the SIGINT trials
    return subprocess.Popen(command(config, data, "--out", str(run)), env=environment, cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=stderr, text=True)  # fmt: skip


def wait_for_checkpoint(run: Path, process: subprocess.Popen, done: bool, skip: int) -> bool:
    """Poll until the `skip`+1-th epoch checkpoint is begun (its .partial folder) or done."""
    seen: set[str] = set()
    while process.poll() is None:
        for folder in [*(run / ".fused").glob("*"), run / "c" / "checkpoint"]:
            if folder.is_dir():
                for entry in os.listdir(folder):
                    finished = entry.startswith("epoch-")
                    if (entry.endswith(".partial") and not done) or (finished and done):
                        seen.add(f"{folder.name}/{entry}")
        if len(seen) > skip:
            return True
        time.sleep(0.0005)
    return False


def kill(process: subprocess.Popen, sig: int) -> float:
    """Send `sig`; the seconds until the process exited."""
    sent = time.perf_counter()
    process.send_signal(sig)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return time.perf_counter() - sent


@dataclasses.dataclass(frozen=True)
class Hunt:
    config: Path  # the sweep's TOML file
    data: str  # the MNIST folder
    base: Path  # where every trial's run folder goes
    total: float  # seconds the uninterrupted run took: random kills fall within it
    reference: dict  # the uninterrupted run's histories and results
    aimed_signal: int = signal.SIGKILL  # what the kills at checkpoint events send


def trial(number: int, how: str, hunt: Hunt) -> dict:
    config, data, base, total, reference = hunt.config, hunt.data, hunt.base, hunt.total, hunt.reference
    run = base / f"trial-{number:02d}"
    sig = (signal.SIGINT if number % 4 == 3 else signal.SIGKILL) if how == "random" else hunt.aimed_signal
    if how == "random":
        process = start(config, data, run)
        time.sleep(random.uniform(3.0, total))
    elif how in ("trained", "recorded one"):
        process = start(config, data, run, pause=how)
        for line in process.stdout:
            if line.startswith("paused at"):
                break
    else:
        process = start(config, data, run)
        wait_for_checkpoint(run, process, done=how == "checkpoint done", skip=random.randrange(4))
    stop_seconds = kill(process, sig)
    stderr = run.with_name(run.name + ".stderr").read_text()
    clean = sig != signal.SIGINT or (
        process.returncode in (130, 0) and "Traceback" not in stderr and "Exception ignored" not in stderr
    )
    before = on_disk(run) if (run / "run.json").exists() else None
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    if before is None:  # killed before the run folder held a run: start again
        finished = subprocess.run(command(config, data, "--out", str(run)), env=environment, cwd=PROJECT,
                                  capture_output=True, text=True)  # fmt: skip
    else:
        finished = subprocess.run(command(config, data, "--resume", str(run)), env=environment, cwd=PROJECT,
                                  capture_output=True, text=True)  # fmt: skip
    after = results(run)
    restart = {m: after[m].get("resumed_from_epoch") or 0 for m in MODELS if before and before[m] != "finished"}
    expected = {m: before[m] for m in restart} if before else {}
    exact = (
        finished.returncode == 0
        and len(after) == 3
        and histories(run) == reference["histories"]
        and all(after[m]["test_accuracy"] == reference["results"][m]["test_accuracy"] for m in MODELS)
    )
    return {"trial": number, "how": how, "signal": signal.Signals(sig).name, "on_disk": before,
            "restarted_from": restart, "restart_ok": restart == expected, "exact": exact,
            "interrupted_exit": process.returncode, "stop_seconds": round(stop_seconds, 2), "clean": clean,
            "exit": finished.returncode}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of the four official MNIST files")
    parser.add_argument("--random", type=int, default=30, help="kills at random moments (default: 30)")
    parser.add_argument("--aimed", type=int, default=10, help="kills at checkpoint events (default: 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aimed-signal", choices=["SIGKILL", "SIGINT"], default="SIGKILL",
                        help="what the kills at checkpoint events send (default: SIGKILL)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write every trial's record here")
    args = parser.parse_args()
    random.seed(args.seed)
    base = Path(tempfile.mkdtemp(prefix="kill-hunt-"))
    config = base / "sweep.toml"
    config.write_text(SWEEP)
    started = time.perf_counter()
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    subprocess.run(command(config, args.data, "--out", str(base / "reference")), env=environment, cwd=PROJECT,
                   check=True, capture_output=True)  # fmt: skip
    total = time.perf_counter() - started
    reference = {"histories": histories(base / "reference"), "results": results(base / "reference")}
    print(f"uninterrupted run: {total:.1f} s; trials in {base}", flush=True)
    plans = ["random"] * args.random + [EVENTS[i % len(EVENTS)] for i in range(args.aimed)]
    records = []
    for number, how in enumerate(plans):
        record = trial(number, how, Hunt(config, args.data, base, total, reference, signal.Signals[args.aimed_signal]))
        records.append(record)
        print(json.dumps(record), flush=True)
    bad = [r for r in records if not (r["restart_ok"] and r["exact"] and r["clean"])]
    resumed = sum(1 for r in records if r["on_disk"] is not None)
    print(f"{len(records)} kills ({sum(r['signal'] == 'SIGINT' for r in records)} SIGINT), {resumed} resumed; "
          f"restart epoch as on disk: {sum(r['restart_ok'] for r in records)}/{len(records)}; "
          f"exact: {sum(r['exact'] for r in records)}/{len(records)}; "
          f"SIGINT clean (exit 130, or 0 after the run had ended; no traceback): "
          f"{sum(r['clean'] for r in records if r['signal'] == 'SIGINT')}/{sum(r['signal'] == 'SIGINT' for r in records)}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
