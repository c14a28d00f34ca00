"""How fast the explorer trains, side by side with the seed's way, PyTorch and hand-written JAX.

One run trains the same networks on the same data through every path and prints one table (and
writes it as JSON), so the figures are comparable even on a noisy machine: read the ratios.

Paths (the default: two networks, each path in a fresh process):
- seed's way: Keras on TensorFlow, a `Sequential`, plain `fit`, one model at a time, no callbacks;
- ours: the project's training function (`explorer.engine.groups.train_and_record`: checkpoint and history
  every epoch, test predictions, files) on each backend, one model, and eight 784-128-10 models fused;
- PyTorch: a plain eager loop (benchmarks/reference_loops.py);
- hand-written JAX: the whole epoch as one jitted `lax.scan` (benchmarks/reference_loops.py).

Each path runs in a fresh process (Keras picks its backend once per process), so its peak memory
is that process's (imports and data included). The Keras paths also evaluate the validation split
every epoch (about 4% more work); the reference loops do not. Reported per path and network:
median seconds per steady epoch (the first one, which compiles, is reported apart), samples per
second, GFLOP/s achieved and its share of a measured float32 matmul ceiling, peak memory and test
accuracy.

With `--sweep`, the whole default sweep of `model_builder_loop.py` (13 networks, one run each)
instead, each in a fresh process with an empty JAX compile cache: the seed's way (the 13 networks
one after the other, Keras on TensorFlow, plain fit) against the script as a user runs it, with
each model's test accuracy side by side; our sweep's phases, from the `timings.json` it writes
(imports, checking the networks, data, building, compiling, training epochs, checkpoints,
evaluating, saving, views); our steady fused epoch against the same 13 networks trained as one
hand-written JAX group (`reference_loops.train_jax_scan_group`: one `lax.scan` an epoch, the same
losses, Adam and validation); the sweep's FLOPs per second against NumPy's and XLA's matmul; and
one fused step of the 13 taken apart (`benchmarks/step_split.py`: XLA's profile by share, and the
floors of the products and of Adam's bytes).

    pip install -r requirements-bench.txt
    python benchmarks/speed.py --data ../shared/data/mnist              # networks, ~5 min
    python benchmarks/speed.py --data ../shared/data/mnist --sweep      # the default sweep, ~12 min
    python benchmarks/speed.py --epochs 2                               # MNIST-shaped synthetic data
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "benchmarks")]

import reference_loops  # noqa: E402  (plain numpy at import; the frameworks load in the workers)

NETWORKS = {"784-128-10": [128], "784-512-512-10": [512, 512]}
FUSED_COPIES = 8  # the fused case: this many 784-128-10 networks as branches of one model
SEED = 42
SEED_WAY = "seed's way (Keras+TF, plain fit)"


# ---------------------------------------------------------------------------------------------------
# Workers: each runs in its own process and prints one JSON line
# ---------------------------------------------------------------------------------------------------


def load_data(path: str | None, synthetic_train: int = 60_000):
    """The prepared arrays every path trains on: real MNIST from `path`, else MNIST-shaped synthetic
    digits (learnable stripes plus noise), so the benchmark runs anywhere."""
    import common

    if path:
        train, test, _ = common.load_mnist(path, seed=SEED, log=lambda line: None)
    else:
        import numpy as np

        rng = np.random.default_rng(SEED)

        def digits(count):
            labels = rng.integers(0, 10, count).astype(np.uint8)
            images = rng.integers(0, 60, size=(count, 28, 28)).astype(np.uint8)
            for row in range(5):
                images[np.arange(count), 2 * labels + 2 + row, 4:24] = 230
            return images, labels

        train, test = digits(synthetic_train), digits(synthetic_train // 6)
    return common.prepare_data(train, test, validation_split=0.1, seed=SEED)


def seconds_from_keras(history) -> list[float]:
    return [float(value) for value in history.history["seconds"]]


def work_keras(task: dict) -> dict:
    """The seed's way (plain fit) or ours (`train_group`), on the backend the process was started with."""
    started = time.perf_counter()
    import common
    import explorer.config.defaults
    import explorer.engine.callbacks
    import explorer.engine.groups
    import explorer.engine.training
    import explorer.models.trials
    import explorer.models.variants
    import model_builder_loop

    keras = common.keras
    imported = time.perf_counter()
    data = load_data(task["data"])
    loaded = time.perf_counter()
    copies = task.get("copies", 1)
    fields = {"hidden_units": task["hidden"], "epochs": task["epochs"], "batch_size": task["batch"]}
    sweep = {f"m{index}": fields for index in range(copies)}
    configs = common.validate_configs(sweep)
    if task["path"] == "seed":
        keras.utils.set_random_seed(SEED)
        model = explorer.models.variants.compile_for_training(common.dense_network(configs[0]), steps_per_execution=1)
        history = model.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            epochs=task["epochs"],
            batch_size=task["batch"],
            verbose=0,
            callbacks=[explorer.engine.callbacks.EpochClock()],
        )
        seconds = seconds_from_keras(history)
        accuracy = [model.evaluate(data.x_test, data.y_test, batch_size=1024, verbose=0, return_dict=True)["accuracy"]]
    else:
        trials = explorer.models.trials.plan_trials(model_builder_loop.variants_from(sweep), SEED)
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            setup = explorer.engine.training.GroupSetup.in_folder(
                folder,
                trials,
                verbose=0,
                steps_per_execution=task.get("steps", explorer.config.defaults.STEPS_PER_EXECUTION),
            )
            results = explorer.engine.groups.train_and_record(trials, data, setup, [{}] * len(trials))
            seconds = common.read_history(folder / trials[0].folder / "history.csv")["seconds"]
        accuracy = [result["test_accuracy"] for result in results]
    return {
        "seconds_per_epoch": seconds,
        "test_accuracy": statistics.mean(accuracy),
        "samples": len(data.x_train),
        "import_seconds": imported - started,
        "data_seconds": loaded - imported,
    }


def work_reference(task: dict) -> dict:
    """PyTorch or hand-written JAX on the same prepared arrays (integer labels)."""
    data = load_data(task["data"])
    train = reference_loops.train_pytorch if task["path"] == "pytorch" else reference_loops.train_jax_scan
    result = train(
        task["hidden"],
        data.x_train,
        data.y_train.argmax(axis=1),
        data.x_test,
        data.test_labels,
        epochs=task["epochs"],
        batch_size=task["batch"],
        seed=SEED,
    )
    return {**result, "samples": len(data.x_train)}


def work_seed_sweep(task: dict) -> dict:
    """The default sweep the seed's way: every configuration of model_builder_loop.CONFIGS, one after
    the other, on TensorFlow, plain fit, no callbacks."""
    import common
    import explorer.models.variants
    import model_builder_loop

    keras = common.keras
    data = load_data(task["data"])
    overrides = {"epochs": task["epochs"]} if task["epochs"] else {}
    accuracy = {}
    for config in common.validate_configs(model_builder_loop.CONFIGS, overrides):
        keras.backend.clear_session()
        keras.utils.set_random_seed(SEED)
        model = explorer.models.variants.compile_for_training(common.dense_network(config), steps_per_execution=1)
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            epochs=config.epochs,
            batch_size=config.batch_size,
            verbose=0,
        )
        test = model.evaluate(data.x_test, data.y_test, batch_size=1024, verbose=0, return_dict=True)
        accuracy[config.name] = float(test["accuracy"])
    return {"test_accuracy": accuracy}


def worker(task: dict) -> dict:
    if task["path"] in ("seed", "ours"):
        return work_keras(task)
    if task["path"] == "seed_sweep":
        return work_seed_sweep(task)
    if task["path"] == "jax_group":
        return work_jax_group(task)
    if task["path"] == "step_split":
        import step_split

        return step_split.measure(task["data"])
    return work_reference(task)


# ---------------------------------------------------------------------------------------------------
# The driver: runs every worker in a fresh process, then the table
# ---------------------------------------------------------------------------------------------------


# Tried and measured slower than TensorFlow's own choice (docs/performance.md): one inter-op thread.
ONE_INTER_OP_THREAD = {"TF_NUM_INTEROP_THREADS": "1"}


def run_process(command: list[str], backend: str, overrides: dict[str, str] | None = None) -> tuple[str, float, float]:
    """Run `command` to the end; return its stdout, wall seconds and peak resident memory (MiB, the
    kernel's ru_maxrss of that process: imports and data included). Output goes through files, so a
    chatty child never blocks on a full pipe."""
    environment = {**os.environ, "KERAS_BACKEND": backend, **(overrides or {})}
    with (
        tempfile.TemporaryFile("w+") as stdout,
        tempfile.TemporaryFile("w+") as stderr,
        tempfile.TemporaryDirectory() as compile_cache,
    ):
        environment["JAX_COMPILATION_CACHE_DIR"] = compile_cache  # every process starts cold
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=environment, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        stdout.seek(0), stderr.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(command)}\n{stderr.read()[-3000:]}")
        return stdout.read(), wall, usage.ru_maxrss / 1024


def run_worker(task: dict, backend: str = "jax") -> dict:
    overrides = task.pop("environment", None)
    stdout, _, peak = run_process([sys.executable, __file__, "--worker", json.dumps(task)], backend, overrides)
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_rss_mib": peak}


def summarize(label: str, hidden: list[int], batch: int, result: dict, ceiling: float, models: int = 1) -> dict:
    seconds = result["seconds_per_epoch"]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    flops = reference_loops.training_flops_per_epoch(hidden, result["samples"]) * models
    return {
        "path": label,
        "network": "-".join(map(str, [784, *hidden, 10])) + (f" x{models}" if models > 1 else ""),
        "batch_size": batch,
        "seconds_per_epoch": round(steady, 3),
        "first_epoch_seconds": round(seconds[0], 3),
        "samples_per_second": round(result["samples"] * models / steady),
        "gflops": round(flops / steady / 1e9, 1),
        "share_of_ceiling": round(flops / steady / 1e9 / ceiling, 3),
        "peak_rss_mib": round(result["peak_rss_mib"]),
        "test_accuracy": round(result["test_accuracy"], 4),
    }


TABLE = (
    ("path", "{:<34}"),
    ("network", "{:<18}"),
    ("batch_size", "{:>5}"),
    ("seconds_per_epoch", "{:>8.3f}"),
    ("first_epoch_seconds", "{:>8.2f}"),
    ("samples_per_second", "{:>10,}"),
    ("gflops", "{:>7.1f}"),
    ("share_of_ceiling", "{:>7.0%}"),
    ("peak_rss_mib", "{:>7,}"),
    ("test_accuracy", "{:>8.4f}"),
)
HEADER = ("path", "network", "batch", "s/epoch", "1st ep.", "samples/s", "GFLOP/s", "of ceil", "RSS MiB", "test acc")


def format_table(rows: list[dict]) -> str:
    widths = [len(fmt.format(rows[0][key])) if rows else 8 for key, fmt in TABLE]
    lines = [
        "  ".join(
            title.rjust(width) if index > 1 else title.ljust(width)
            for index, (title, width) in enumerate(zip(HEADER, widths, strict=True))
        )
    ]
    lines += ["  ".join(fmt.format(row[key]) for key, fmt in TABLE) for row in rows]
    return "\n".join(lines)


def benchmark_networks(args, ceiling: float, log) -> list[dict]:
    rows = []
    for name, hidden in NETWORKS.items():
        for batch in args.batch_sizes:
            task = {"data": args.data, "hidden": hidden, "batch": batch, "epochs": args.epochs}
            cases = [
                (SEED_WAY, "tensorflow", {"path": "seed"}),
                ("ours, TensorFlow", "tensorflow", {"path": "ours"}),
                (
                    "ours, TensorFlow, 1 inter-op thread",
                    "tensorflow",
                    {"path": "ours", "environment": ONE_INTER_OP_THREAD},
                ),
                ("ours, JAX, steps_per_execution 1", "jax", {"path": "ours", "steps": 1}),
                ("ours, JAX", "jax", {"path": "ours"}),
                ("PyTorch eager loop", "jax", {"path": "pytorch"}),
                ("hand-written JAX (lax.scan)", "jax", {"path": "jax_scan"}),
            ]
            for label, backend, extra in cases:
                log(f"  {name} batch {batch}: {label} ...")
                rows.append(summarize(label, hidden, batch, run_worker({**task, **extra}, backend), ceiling))
    for backend in ("tensorflow", "jax"):
        task = {
            "data": args.data,
            "hidden": [128],
            "batch": 128,
            "epochs": args.epochs,
            "path": "ours",
            "copies": FUSED_COPIES,
        }
        log(f"  {FUSED_COPIES} x 784-128-10 fused: ours, {backend} ...")
        result = run_worker(task, backend)
        rows.append(summarize(f"ours, {backend}, fused", [128], 128, result, ceiling, models=FUSED_COPIES))
    return rows


def sweep_branches() -> list[dict]:
    """The default sweep's networks, as the hand-written group trains them."""
    import common
    import model_builder_loop

    fields = ("hidden_units", "activation", "output_activation", "dropout")
    return [
        {field: getattr(config, field) for field in fields}
        for config in common.validate_configs(model_builder_loop.CONFIGS)
    ]


def work_jax_group(task: dict) -> dict:
    """The default sweep's 13 networks as one hand-written JAX group, and XLA's matmul rate."""
    data = load_data(task["data"])
    result = reference_loops.train_jax_scan_group(
        sweep_branches(),
        data.x_train,
        data.y_train.argmax(axis=1),
        data.x_val,
        data.y_val.argmax(axis=1),
        epochs=task["epochs"],
        batch_size=128,
        seed=SEED,
    )
    return {**result, "jax_matmul_gflops": reference_loops.jax_matmul_gflops()}


def run_our_sweep(args, epochs: int | None, root: Path = PROJECT_ROOT) -> dict:
    """model_builder_loop.py of the project at `root` as a user runs it (one run per model, fused,
    JAX, cold compile cache); its wall time, peak memory, timings.json, summary and the group's
    seconds per epoch."""
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"
        command = [sys.executable, str(root / "model_builder_loop.py"), "--repeats", "1"]
        command += ["--seed", str(SEED), "--out", str(run_dir)]
        command += ["--data", args.data] if args.data else []
        command += ["--epochs", str(epochs)] if epochs else []
        launched = time.time()
        _, wall, peak = run_process(command, "jax")
        # A version of the project from before timings.json existed gives no phases.
        found = (run_dir / "timings.json").exists()
        timings = json.loads((run_dir / "timings.json").read_text()) if found else None
        summary = json.loads((run_dir / "summary.json").read_text())
        first = summary[0]["name"]
        epoch_seconds = [float(row["seconds"]) for row in csv.DictReader((run_dir / first / "history.csv").open())]
    return {
        "wall": wall,
        "peak": peak,
        "imports": timings["started_unix"] - launched if timings else None,
        "timings": timings,
        "summary": summary,
        "epoch_seconds": epoch_seconds,
    }


def sweep_phases(ours: dict) -> list[tuple[str, float]]:
    """The phases of our sweep in run order, in seconds; compiling is the first epoch's excess over
    a steady epoch (the median of the others)."""
    if ours["timings"] is None:
        return [("all (no timings.json: phases not recorded)", ours["wall"])]
    phases = ours["timings"]["phases"]
    steady = statistics.median(ours["epoch_seconds"][1:])
    exit_seconds = ours["wall"] - ours["imports"] - ours["timings"]["wall_seconds"]
    return [
        ("imports and command line", ours["imports"]),
        ("checking the networks", phases.get("checking", 0.0)),
        ("data", phases.get("data", 0.0)),
        ("planning", phases.get("planning", 0.0)),
        ("building", phases.get("building", 0.0)),
        ("compiling (1st epoch - steady)", phases["first_epoch"] - steady),
        ("training epochs", phases["later_epochs"] + steady),
        ("checkpointing", phases.get("checkpointing", 0.0)),
        ("fit set-up and tear-down", phases.get("fit_other", 0.0)),
        ("evaluating", phases.get("evaluating", 0.0)),
        ("saving", phases.get("saving", 0.0)),
        ("views", phases.get("views", 0.0)),
        ("exit", exit_seconds),
    ]


def benchmark_sweep(args, ceiling: float, log) -> dict:
    """The default sweep end to end, the seed's way and ours; our phases; our steady fused epoch
    against the hand-written JAX group; FLOPs per second against the matmul rates."""
    epochs = args.sweep_epochs
    figures: dict = {"epochs": epochs or "each configuration's own (20)"}
    if not args.no_seed_way:
        log(f"  default sweep, seed's way (TensorFlow, plain fit, one at a time, {epochs or 'default'} epochs) ...")
        task = {"path": "seed_sweep", "data": args.data, "epochs": epochs}
        stdout, seed_wall, seed_peak = run_process(
            [sys.executable, __file__, "--worker", json.dumps(task)], "tensorflow"
        )
        seed_accuracy = json.loads(stdout.strip().splitlines()[-1])["test_accuracy"]
        figures |= {"seed_way_seconds": round(seed_wall, 1), "seed_way_peak_rss_mib": round(seed_peak)}
    if args.baseline:
        log(f"  default sweep, the version at {args.baseline} (same command) ...")
        baseline = run_our_sweep(args, epochs, args.baseline)
        figures["baseline"] = {
            "path": str(args.baseline),
            "seconds": round(baseline["wall"], 1),
            "fused_epoch_seconds": round(statistics.median(baseline["epoch_seconds"][1:]), 3),
            "phases": {name: round(seconds, 2) for name, seconds in sweep_phases(baseline)},
        }
    log("  default sweep, ours (model_builder_loop.py --repeats 1: fused, JAX, compile cache empty) ...")
    ours = run_our_sweep(args, epochs)
    log(f"  the same {len(ours['summary'])} networks as one hand-written JAX group ({args.group_epochs} epochs) ...")
    group = run_worker({"path": "jax_group", "data": args.data, "epochs": args.group_epochs})
    log("  one fused step of the same 13 networks, taken apart (benchmarks/step_split.py) ...")
    figures["step_split"] = run_worker({"path": "step_split", "data": args.data})
    phases = sweep_phases(ours)
    steady, hand = statistics.median(ours["epoch_seconds"][1:]), statistics.median(group["seconds_per_epoch"][1:])
    flops_per_epoch = sum(row["flops_per_epoch"] for row in ours["summary"])
    sweep_flops = sum(row["train_flops"] for row in ours["summary"])
    figures |= {
        "ours_seconds": round(ours["wall"], 1),
        "ours_peak_rss_mib": round(ours["peak"]),
        "phases": {name: round(seconds, 2) for name, seconds in phases},
        "start_up_and_finish_share": (
            round(1 - dict(phases)["training epochs"] / ours["wall"], 3) if ours["timings"] else None
        ),
        "fused_epoch_seconds": round(steady, 3),
        "hand_written_epoch_seconds": round(hand, 3),
        "fused_over_hand_written": round(steady / hand, 2),
        "sweep_tflop": round(sweep_flops / 1e12, 2),
        "flops_per_epoch": flops_per_epoch,
        # The sweep's matrix products alone, at XLA's measured matmul rate: a floor for its training.
        "matmul_floor_seconds": round(sweep_flops / group["jax_matmul_gflops"] / 1e9, 1),
        "numpy_matmul_gflops": round(ceiling, 1),
        "jax_matmul_gflops": round(group["jax_matmul_gflops"], 1),
    }
    if not args.no_seed_way:
        ours_accuracy = {row["name"]: row["test_accuracy"] for row in ours["summary"]}
        points = {name: round(100 * (ours_accuracy[name] - seed_accuracy[name]), 2) for name in seed_accuracy}
        figures |= {
            "speedup": round(figures["seed_way_seconds"] / ours["wall"], 2),
            "test_accuracy": {
                name: {"seed_way": seed_accuracy[name], "ours": ours_accuracy[name], "points": points[name]}
                for name in seed_accuracy
            },
            "mean_difference_points": round(statistics.mean(points.values()), 3),
        }
    return figures


def print_sweep(sweep: dict) -> None:
    import step_split

    wall = sweep["ours_seconds"]
    print(f"\nOur default sweep, {sweep['epochs']} epochs, one run per network: {wall:.1f} s, by phase:")
    for name, seconds in sweep["phases"].items():
        print(f"  {name:<34} {seconds:>7.2f} s  {seconds / wall:>6.1%}")
    if sweep["start_up_and_finish_share"] is not None:
        share = sweep["start_up_and_finish_share"]
        print(f"  start-up and finish (all but the training epochs): {share:.1%} of the wall time")
    print(
        f"Steady fused epoch {sweep['fused_epoch_seconds']:.3f} s, hand-written JAX group "
        f"{sweep['hand_written_epoch_seconds']:.3f} s: {sweep['fused_over_hand_written']:.2f}x"
    )
    epoch_gflop = sweep["flops_per_epoch"] / 1e9
    print(
        f"FLOP rates: sweep {sweep['sweep_tflop'] * 1e3 / wall:.0f} GFLOP/s over its wall time "
        f"({sweep['sweep_tflop']:.2f} TFLOP), steady fused epoch {epoch_gflop / sweep['fused_epoch_seconds']:.0f}, "
        f"hand-written {epoch_gflop / sweep['hand_written_epoch_seconds']:.0f}; matmul NumPy "
        f"{sweep['numpy_matmul_gflops']:.0f}, JAX {sweep['jax_matmul_gflops']:.0f}"
    )
    print(f"  the sweep's matrix products alone at that JAX rate: {sweep['matmul_floor_seconds']:.1f} s")
    step_split.print_split(sweep["step_split"])
    if "baseline" in sweep:
        baseline = sweep["baseline"]
        print(
            f"Baseline ({baseline['path']}): {baseline['seconds']:.1f} s, steady fused epoch "
            f"{baseline['fused_epoch_seconds']:.3f} s; ours {wall:.1f} s ({baseline['seconds'] / wall:.2f}x)"
        )
        if "seed_way_seconds" in sweep:
            print(f"  seed's way / baseline: {sweep['seed_way_seconds'] / baseline['seconds']:.2f}x")
    if "speedup" in sweep:
        print(
            f"Seed's way {sweep['seed_way_seconds']:.1f} s, ours {wall:.1f} s: {sweep['speedup']:.2f}x faster; "
            f"peak memory {sweep['seed_way_peak_rss_mib']:,} vs {sweep['ours_peak_rss_mib']:,} MiB; "
            f"test accuracy, ours minus the seed's way, mean {sweep['mean_difference_points']:+.2f} points"
        )
        for name, accuracy in sweep["test_accuracy"].items():
            print(
                f"  {name:<28} seed's way {accuracy['seed_way']:.4f}  ours {accuracy['ours']:.4f}  ({accuracy['points']:+.2f})"
            )


def print_networks(rows: list[dict], ceiling: float, data: str) -> None:
    print(f"\nSteady seconds per epoch of the training split; data: {data}; matmul ceiling {ceiling:.0f} GFLOP/s")
    print(format_table(rows))
    by_path = {(row["path"], row["network"]): row["seconds_per_epoch"] for row in rows}
    for network in NETWORKS:
        ours = by_path[("ours, JAX", network)]
        print(
            f"{network}: ours (JAX) vs seed's way {by_path[(SEED_WAY, network)] / ours:.2f}x faster; "
            f"vs PyTorch {by_path[('PyTorch eager loop', network)] / ours:.2f}x; "
            f"hand-written JAX / ours {ours / by_path[('hand-written JAX (lax.scan)', network)]:.2f}x slower"
        )
    single = by_path[("ours, JAX", "784-128-10")]
    fused = by_path[("ours, jax, fused", f"784-128-10 x{FUSED_COPIES}")]
    print(
        f"{FUSED_COPIES} x 784-128-10 fused on JAX: {fused:.2f} s/epoch for all, vs {FUSED_COPIES} x {single:.2f} = "
        f"{FUSED_COPIES * single:.2f} one at a time ({FUSED_COPIES * single / fused:.2f}x)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="MNIST folder or mnist.npz (default: MNIST-shaped synthetic data)")
    parser.add_argument(
        "--epochs", type=int, default=4, help="epochs per network; the first is reported apart (default: 4)"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128], help="batch sizes to time (default: 128)")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="time the whole default sweep instead: the seed's way and ours, our phases, the hand-written group",
    )
    parser.add_argument(
        "--sweep-epochs", type=int, default=None, help="epochs per model in the sweep (default: its own, 20)"
    )
    parser.add_argument(
        "--group-epochs",
        type=int,
        default=4,
        help="epochs of the hand-written JAX group (default: 4; the first compiles)",
    )
    parser.add_argument("--no-seed-way", action="store_true", help="with --sweep: leave the seed's way out")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="with --sweep: also time the default sweep of the project checked out at this folder (an earlier version)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.worker and min(args.epochs, args.group_epochs) < 2:
        parser.error(
            f"--epochs {args.epochs}, --group-epochs {args.group_epochs}: each needs at least 2 (the first compiles)"
        )
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    ceiling = reference_loops.matmul_ceiling_gflops()
    log(f"float32 matmul ceiling: {ceiling:.0f} GFLOP/s (numpy, {reference_loops.available_cores()} cores)")
    figures = {"data": args.data or "synthetic", "matmul_ceiling_gflops": round(ceiling, 1)}
    figures["cores"] = reference_loops.available_cores()
    if args.sweep:
        figures["sweep"] = benchmark_sweep(args, ceiling, log)
        print_sweep(figures["sweep"])
    else:
        figures |= {"epochs": args.epochs, "networks": benchmark_networks(args, ceiling, log)}
        print_networks(figures["networks"], ceiling, figures["data"])
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print("\n" + json.dumps(figures))


if __name__ == "__main__":
    main()
