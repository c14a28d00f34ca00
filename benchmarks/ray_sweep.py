"""What Ray costs: the default sweep through `--executor ray` against the local executor.

Runs `model_builder_loop.py` over the default sweep (one run per configuration) three ways, side by
side in one run: the local executor with fused training (the default), the local executor one model
at a time (`--no-fuse`), and the Ray executor one model per Tune trial with two trials at once on a
local Ray instance (`--executor ray --no-fuse --max-concurrent 2`). For each it prints the wall time
and the peak memory of the whole process tree (the script and every process it started: Ray's
raylet, object store and trial workers included), sampled every 0.2 s, and the overhead of Ray per
trial against the unfused local run.

    pip install -r requirements-ray.txt
    python benchmarks/ray_sweep.py --data ../shared/data/mnist
    python benchmarks/ray_sweep.py --data ../shared/data/mnist --epochs 5     # shorter

Options after `--` go to the script unchanged.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def tree_rss_mib(root: int) -> float:
    """Resident memory of `root` and all its descendants, in MiB, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(entry.name), int(fields[1])
        children.setdefault(parent, []).append(pid)
        rss[pid] = int(fields[21]) * PAGE_KIB
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 1024


def run_measured(command: list[str], environment: dict[str, str]) -> tuple[float, float, str]:
    """Run `command`; return wall seconds, peak process-tree memory (MiB) and its output."""
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment, text=True)
        peak = 0.0
        done = threading.Event()

        def sample():
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss_mib(process.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        done.set()
        sampler.join()
        wall = time.perf_counter() - started
        output.seek(0)
        text = output.read()
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(command)}\n{text[-3000:]}")
    return wall, peak, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="passed to the script's --data")
    parser.add_argument("--epochs", default=None, help="epochs per model (default: each configuration's own, 20)")
    args, passthrough = parser.parse_known_args()
    passthrough = [option for option in passthrough if option != "--"]
    environment = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    base = [sys.executable, str(PROJECT_ROOT / "model_builder_loop.py"), "--repeats", "1", *passthrough]
    base += ["--data", args.data] if args.data else []
    base += ["--epochs", args.epochs] if args.epochs else []
    ways = {
        "local, fused (default)": [],
        "local, one model at a time": ["--no-fuse"],
        "ray, one model per trial, 2 at once": ["--no-fuse", "--executor", "ray", "--max-concurrent", "2"],
    }
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        for index, (label, options) in enumerate(ways.items()):
            print(f"{label} ...", file=sys.stderr, flush=True)
            run_dir = Path(scratch) / f"run{index}"
            wall, peak, _ = run_measured([*base, "--out", str(run_dir), *options], environment)
            summary = json.loads((run_dir / "summary.json").read_text())
            figures[label] = {
                "seconds": round(wall, 1),
                "peak_tree_rss_mib": round(peak),
                "models": len(summary),
                "mean_test_accuracy": round(sum(row["test_accuracy"] for row in summary) / len(summary), 4),
            }
    local, ray = figures["local, one model at a time"], figures["ray, one model per trial, 2 at once"]
    per_trial = (ray["seconds"] - local["seconds"]) / ray["models"]
    print(f"data {args.data or 'default'}, epochs {args.epochs or 'default (20)'}, {os.cpu_count()} cores")
    for label, figure in figures.items():
        print(
            f"  {label:<38} {figure['seconds']:7.1f} s  peak {figure['peak_tree_rss_mib']:6,} MiB  "
            f"{figure['models']} models, mean test accuracy {figure['mean_test_accuracy']:.4f}"
        )
    print(
        f"  Ray vs local (both unfused): {ray['seconds'] / local['seconds']:.2f}x the time, {per_trial:+.1f} s per trial"
    )
    print(json.dumps({"figures": figures, "ray_overhead_seconds_per_trial": round(per_trial, 2)}))


if __name__ == "__main__":
    main()
