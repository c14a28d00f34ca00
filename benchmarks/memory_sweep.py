"""Peak memory of a sweep against the number of models it trains.

Keras keeps every model's graph alive until `keras.backend.clear_session()`; the sweep clears it
before each model, so a 10-model sweep should peak close to a 1-model sweep. This benchmark runs
`model_builder_loop.py` in fresh processes on a sweep of one 784-128-10 network and on a sweep of
ten identical ones (so that any growth comes from the number of models, not their size), side by
side in one run, and prints each process's peak resident memory (the kernel's ru_maxrss) and their
ratio.

    python benchmarks/memory_sweep.py --data ../shared/data/mnist           # full MNIST
    python benchmarks/memory_sweep.py                                       # embedded sample / Keras
    python benchmarks/memory_sweep.py --epochs 1 --backend tensorflow

Options after `--` go to the script unchanged.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MODEL_TABLE = "[model_{index}]\nhidden_units = [128]\n\n"  # the reference 784-128-10 network


def peak_rss_mib(command: list[str], environment: dict[str, str]) -> float:
    """Run `command` to the end and return its peak resident memory in MiB."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
    return usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="passed to the script's --data")
    parser.add_argument("--epochs", default="2", help="epochs per model (default: 2)")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), help="jax or tensorflow")
    args, passthrough = parser.parse_known_args()
    passthrough = [option for option in passthrough if option != "--"]
    environment = {**os.environ, "KERAS_BACKEND": args.backend}
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, count in (("1 model", 1), ("10 models", 10)):
            config = Path(scratch) / f"{count}.toml"
            config.write_text("".join(MODEL_TABLE.format(index=index) for index in range(count)))
            command = [sys.executable, str(PROJECT_ROOT / "model_builder_loop.py"), "--config", str(config),
                       "--epochs", args.epochs, "--out", str(Path(scratch) / f"run_{count}"), *passthrough]  # fmt: skip
            if args.data:
                command += ["--data", args.data]
            figures[label] = peak_rss_mib(command, environment)
    ratio = figures["10 models"] / figures["1 model"]
    print(f"backend {args.backend}, {args.epochs} epoch(s) per model, data {args.data or 'default'}")
    for label, mib in figures.items():
        print(f"  peak RSS, {label:>9}: {mib:8.1f} MiB")
    print(f"  ratio 10 / 1: {ratio:.2f}")
    print(json.dumps({"backend": args.backend, "peak_rss_mib": figures, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
