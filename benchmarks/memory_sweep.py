"""Peak memory of a sweep against the number of models it trains.

Keras keeps every model's graph alive until `keras.backend.clear_session()`; the sweep clears it
before each model, so a 10-model sweep should peak close to a 1-model sweep. This benchmark runs
`model_builder_loop.py` in fresh processes, one model and then ten, side by side in one run, and
prints each process's peak resident memory (the kernel's ru_maxrss) and their ratio.

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
sys.path.insert(0, str(PROJECT_ROOT))

import model_builder_loop  # noqa: E402  (imports Keras; fine, the measured work runs in children)

# Ten models of the default sweep, in their sweep order (not the two largest, to keep it quick).
TEN_MODELS = list(model_builder_loop.CONFIGS)[:10]


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
    environment = {**os.environ, "KERAS_BACKEND": args.backend}
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, names in (("1 model", TEN_MODELS[:1]), ("10 models", TEN_MODELS)):
            command = [sys.executable, str(PROJECT_ROOT / "model_builder_loop.py"), "--epochs", args.epochs,
                       "--out", str(Path(scratch) / label.replace(" ", "_")), "--only", *names, *passthrough]  # fmt: skip
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
