"""Where one fused training step's time goes: the default sweep's 13 networks, taken apart.

The default sweep trains its 13 networks as one fused model (one forward and backward pass per
batch for all of them). This benchmark builds that model as the engine does and measures, in one
process, on the same batches:

1. the steady epoch as the engine runs it: `fit`, batch 128, no validation, the labels given once
   and each call's 16 batches in one compiled loop (`engine.fusion.FusedModel`); and as Keras
   alone would run the same model: a label array per branch, one jitted call per batch;
2. the same compiled step, the whole epoch in one `lax.scan` (no Python between steps): what `fit`
   adds outside the compiled step is the difference;
3. XLA's own profile of the compiled step (`jax.profiler`: one event per kernel it runs), each
   kernel assigned by the operation it comes from in the compiled HLO (Keras names them after the
   network, the loss and the optimizer) to: matrix products, the optimizer's update, dropout's
   random numbers, activations and biases, losses, metrics, copies. The scan epoch is split in
   proportion to each share's kernel time;
4. the floors: the step's matrix products (FLOPs read from the compiled HLO) at XLA's matmul rate
   measured here, and Adam's bytes (read weight, gradient and both moments, write three) at the
   memory bandwidth measured here, by one fused Adam over a flat array of the same size.

    python benchmarks/step_split.py --data path/to/mnist        # about 2 minutes
    python benchmarks/step_split.py                             # MNIST-shaped synthetic digits

`benchmarks/speed.py --sweep` runs it too, beside the whole sweep. XLA's CPU flags (`XLA_FLAGS`)
are read from the environment, so two runs side by side compare a flag.
"""

import argparse
import collections
import glob
import gzip
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "benchmarks")]

BATCH = 128
SEED = 42
PROFILED_STEPS = 64
ADAM_BYTES_PER_PARAMETER = 7 * 4  # float32: read weight, gradient, both moments; write three
SHARES = (
    "matrix products",
    "optimizer update",
    "dropout's random numbers",
    "activations and biases",
    "losses",
    "metrics and step counters",
    "copies and layout",
)


# ---------------------------------------------------------------------------------------------------
# The compiled HLO: which share each kernel belongs to, and its FLOPs
# ---------------------------------------------------------------------------------------------------


def hlo_kernels(hlo_text: str, optimizer_name: str) -> dict[str, tuple[str, float]]:
    """Every instruction of the compiled module by name: (its share, its matrix-product FLOPs).

    A fusion counts as a matrix product when its fused computation holds a dot; the rest are told
    apart by the op name JAX records, which carries Keras' name scopes (`jvp(<network>)/...`,
    `<optimizer>/...`, `compile_loss/...`)."""
    computations: dict[str, list[float]] = {}
    shapes: dict[str, str] = {}
    found: dict[str, tuple[str, str | None, float, str]] = {}
    current = None
    for line in hlo_text.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if header and not line.startswith(" "):
            current = header.group(1)
            computations[current] = []
            continue
        instruction = re.match(r"^\s+(?:ROOT )?%([\w.\-]+) = (\S+) ([a-z\-]+)\((.*)", line)
        if not (instruction and current):
            continue
        name, shape, opcode, rest = instruction.groups()
        shapes[name] = shape
        flops = _dot_flops(shape, rest, shapes) if opcode == "dot" else 0.0
        computations[current].append(flops)
        called = re.search(r"calls=%([\w.\-]+)", line)
        op_name = re.search(r'op_name="([^"]*)"', line)
        found[name] = (opcode, called.group(1) if called else None, flops, op_name.group(1) if op_name else "")
    kernels = {}
    for name, (opcode, called, flops, op_name) in found.items():
        fused_flops = sum(computations.get(called, [])) if called else 0.0
        kernels[name] = (_share(opcode, flops + fused_flops, op_name, optimizer_name), flops + fused_flops)
    return kernels


def _dot_flops(shape: str, operands: str, shapes: dict[str, str]) -> float:
    """2 x (output elements) x (contracted length) for an HLO dot."""
    out = [int(size) for size in re.match(r"\w+\[([\d,]*)\]", shape).group(1).split(",") if size]
    lhs_name = re.match(r"%([\w.\-]+)", operands).group(1)
    lhs = [int(size) for size in re.match(r"\w+\[([\d,]*)\]", shapes[lhs_name]).group(1).split(",") if size]
    contracted = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", operands).group(1)
    length = 1
    for axis in (int(index) for index in contracted.split(",") if index):
        length *= lhs[axis]
    elements = 1
    for size in out:
        elements *= size
    return 2.0 * elements * length


def _share(opcode: str, flops: float, op_name: str, optimizer_name: str) -> str:
    path = op_name.split("/", 1)[1] if op_name.startswith("jit(") else op_name
    if flops > 0:
        return "matrix products"
    if path.startswith(f"{optimizer_name}/") or f"/{optimizer_name}/" in path:
        return "optimizer update"
    if "dropout" in path and ("_bernoulli" in path or "_uniform" in path or opcode == "while"):
        return "dropout's random numbers"
    if "compile_loss" in path:
        return "losses"
    if path.startswith(("jvp(", "transpose(jvp(")):
        return "activations and biases"
    if opcode in ("copy", "transpose", "bitcast", "slice", "concatenate", "dynamic-slice", "dynamic-update-slice"):
        return "copies and layout"
    return "copies and layout" if not path else "metrics and step counters"


def profile_split(trace_folder: Path, kernels: dict[str, tuple[str, float]], steps: int) -> dict:
    """Kernel time per share (thread-seconds, summed over XLA's threads), kernels per step, and
    the products' FLOP rate, from the Perfetto trace `jax.profiler` wrote."""
    trace_file = glob.glob(str(trace_folder / "plugins" / "profile" / "*" / "perfetto_trace.json.gz"))[0]
    with gzip.open(trace_file) as stream:
        trace = json.load(stream)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    seconds, counts, flops = collections.Counter(), collections.Counter(), 0.0
    for event in events:
        if event.get("ph") == "X" and event["name"] in kernels:
            share, kernel_flops = kernels[event["name"]]
            seconds[share] += event["dur"] / 1e6
            counts[share] += 1
            flops += kernel_flops
    return {
        "thread_seconds": {share: seconds[share] for share in SHARES},
        "kernels_per_step": {share: counts[share] / steps for share in SHARES},
        "products_gflop_per_step": flops / steps / 1e9,
    }


# ---------------------------------------------------------------------------------------------------
# The fused model of the default sweep, and its step as a pure function
# ---------------------------------------------------------------------------------------------------


def fused_default_sweep(samples: int):
    """The default sweep's 13 networks, built and fused as the engine builds them for `samples`
    training digits."""
    import model_builder_loop
    from explorer.config.defaults import STEPS_PER_EXECUTION
    from explorer.engine.fusion import batches_to_train, fused_model
    from explorer.engine.training import build_members
    from explorer.models.trials import plan_trials

    trials = plan_trials(model_builder_loop.variants_from(model_builder_loop.CONFIGS), SEED)
    model = fused_model(build_members(trials), STEPS_PER_EXECUTION, batches_to_train(trials, samples))
    return model, [trial.name for trial in trials]


def as_keras_runs_it(model):
    """The fused model trained as Keras alone would train it: one jitted call per batch (Keras'
    own `make_train_function`), for labels given as a copy per branch."""
    import functools

    from explorer.models.backend import keras

    model.make_train_function = functools.partial(keras.Model.make_train_function, model)
    return model


def step_state(model) -> tuple:
    """The state Keras' JAX `train_step(state, data)` takes, as fresh arrays (the jitted step
    donates them)."""
    import jax.numpy as jnp

    groups = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables)
    return tuple([jnp.array(variable.value) for variable in group] for group in (*groups, model.metrics_variables))


def epoch_seconds(runs: dict[str, Callable[[], None]], epochs: int = 3) -> dict[str, float]:
    """Median steady epoch of each of `runs` (name: a function that trains one epoch), after one
    epoch each that compiles; their epochs take turns, so a slower spell of the machine falls on
    all of them alike."""
    for run in runs.values():
        run()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(epochs):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}


def fit_epoch(model, x, labels, shuffle: bool = True) -> Callable[[], None]:
    """One epoch of `fit` as the engine calls it (which shuffles the training digits)."""
    return lambda: model.fit(x, labels, epochs=1, batch_size=BATCH, verbose=0, shuffle=shuffle)


def scan_epoch(model, batches) -> Callable[[], None]:
    """One epoch of Keras' own compiled step over every full batch in one `lax.scan`, on a copy
    of the model's state."""
    import jax

    @jax.jit
    def epoch(state, batches):
        def body(state, batch):
            return model.train_step(state, batch)[1], None

        return jax.lax.scan(body, state, batches)[0]

    state = [step_state(model)]

    def run() -> None:
        state[0] = jax.block_until_ready(epoch(state[0], batches))

    return run


def profiled_step(model, batches, steps: int, folder: Path) -> tuple[str, float, float]:
    """Run Keras' compiled step `steps` times under `jax.profiler` (Python's own tracer off) and
    return the compiled module's HLO text, the wall seconds of those steps and of compiling the
    step once (with JAX's compile cache off)."""
    import jax

    step = jax.jit(model.train_step, donate_argnums=0)
    first = jax.tree_util.tree_map(lambda array: array[0], batches)
    state = step_state(model)
    lowered = step.lower(state, first)
    jax.config.update("jax_enable_compilation_cache", False)  # compile it, do not read it from disk
    try:
        started = time.perf_counter()
        hlo_text = lowered.compile().as_text()
        compile_seconds = time.perf_counter() - started
    finally:
        jax.config.update("jax_enable_compilation_cache", True)
    state = jax.block_until_ready(step(state, first)[1])
    options = jax.profiler.ProfileOptions()
    options.python_tracer_level = 0
    # Each step's batch sliced beforehand, so that the profile holds the step alone.
    per_step = [jax.tree_util.tree_map(lambda array, at=index: array[at], batches) for index in range(steps)]
    with jax.profiler.trace(str(folder), create_perfetto_trace=True, profiler_options=options):
        started = time.perf_counter()
        for batch in per_step:
            state = step(state, batch)[1]
        jax.block_until_ready(state)
        wall = time.perf_counter() - started
    return hlo_text, wall, compile_seconds


# ---------------------------------------------------------------------------------------------------
# The floors: matmul rate and memory bandwidth, measured here
# ---------------------------------------------------------------------------------------------------


def flat_adam_seconds(parameters: int, steps: int) -> float:
    """Seconds for `steps` Adam updates of one flat float32 array of `parameters` weights: every
    byte Adam must move, in one fused kernel a step (the bandwidth floor of the update)."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def updates(weights, gradient, momentum, velocity):
        def body(carry, _):
            weights, momentum, velocity, step = carry
            step = step + 1.0
            momentum = momentum + (gradient - momentum) * 0.1
            velocity = velocity + (gradient * gradient - velocity) * 0.001
            rate = 1e-3 * jnp.sqrt(1 - 0.999**step) / (1 - 0.9**step)
            return (weights - rate * momentum / (jnp.sqrt(velocity) + 1e-7), momentum, velocity, step), None

        return jax.lax.scan(body, (weights, momentum, velocity, 0.0), None, length=steps)[0]

    arrays = [jnp.full((parameters,), 1e-3, jnp.float32) for _ in range(4)]
    jax.block_until_ready(updates(*arrays))
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        jax.block_until_ready(updates(*arrays))
        best = min(best, time.perf_counter() - started)
    return best


def adam_update_seconds(model, steps: int) -> dict[str, float]:
    """Keras' Adam over the fused model's variables alone (one small kernel or three per variable),
    against the same arithmetic as one multi-tensor update (every variable's gradient, moments and
    weights concatenated, updated at once, split back: PyTorch's `foreach` idea), `steps` updates
    each in one `lax.scan`; the weights they reach are compared, and must be equal."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    optimizer = model.optimizer
    weights = [jnp.array(variable.value) for variable in model.trainable_variables]
    state = [jnp.array(variable.value) for variable in optimizer.variables]
    gradients = [jnp.full(weight.shape, 1e-3, weight.dtype) for weight in weights]

    def keras_update(weights, state):
        return optimizer.stateless_apply(state, gradients, weights)

    def multi_tensor_update(weights, state):
        # Keras orders Adam's state as iteration, learning rate, then each weight's two moments.
        step = state[0] + 1
        local_step = step.astype("float32")
        rate = state[1] * jnp.sqrt(1 - optimizer.beta_2**local_step) / (1 - optimizer.beta_1**local_step)
        flat = [
            jnp.concatenate([array.ravel() for array in arrays])
            for arrays in (gradients, state[2::2], state[3::2], weights)
        ]
        gradient, momentum, velocity, weight = flat
        momentum = momentum + (gradient - momentum) * (1 - optimizer.beta_1)
        velocity = velocity + (jnp.square(gradient) - velocity) * (1 - optimizer.beta_2)
        weight = weight - (momentum * rate) / (jnp.sqrt(velocity) + optimizer.epsilon)
        ends = np.cumsum([array.size for array in weights])[:-1]
        split = [
            [part.reshape(array.shape) for part, array in zip(jnp.split(flat, ends), weights, strict=True)]
            for flat in (weight, momentum, velocity)
        ]
        return split[0], [step, state[1]] + [array for pair in zip(split[1], split[2], strict=True) for array in pair]

    seconds, reached = {}, {}
    for name, update in (("keras_adam", keras_update), ("multi_tensor_adam", multi_tensor_update)):
        run = jax.jit(
            lambda weights, state, update=update: jax.lax.scan(
                lambda carry, _: (update(*carry), None), (weights, state), None, length=steps
            )[0]
        )
        reached[name] = jax.block_until_ready(run(weights, state))[0]
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            jax.block_until_ready(run(weights, state))
            best = min(best, time.perf_counter() - started)
        seconds[name] = best
    equal = all(
        bool(jnp.array_equal(a, b)) for a, b in zip(reached["keras_adam"], reached["multi_tensor_adam"], strict=True)
    )
    return {**seconds, "multi_tensor_equal": equal}


# ---------------------------------------------------------------------------------------------------
# The split
# ---------------------------------------------------------------------------------------------------


def measure(data_path: str | None, profiled_steps: int = PROFILED_STEPS) -> dict:
    """Every figure of the split, for the default sweep's fused step on the data at `data_path`."""
    import jax.numpy as jnp
    import numpy as np
    import reference_loops
    import speed

    data = speed.load_data(data_path)
    model, names = fused_default_sweep(len(data.x_train))
    steps = len(data.x_train) // BATCH
    keras_way, _ = fused_default_sweep(len(data.x_train))
    batches = (
        jnp.asarray(data.x_train[: steps * BATCH].reshape(steps, BATCH, -1)),
        {name: jnp.asarray(data.y_train[: steps * BATCH].reshape(steps, BATCH, -1)) for name in names},
    )
    model.fit(data.x_train[:BATCH], data.y_train[:BATCH], verbose=0)  # builds the optimizer for the scan
    copies = {name: data.y_train for name in names}
    epochs = epoch_seconds(
        {
            "engine": fit_epoch(model, data.x_train, data.y_train),
            "keras_way": fit_epoch(as_keras_runs_it(keras_way), data.x_train, copies),
            "unshuffled": fit_epoch(model, data.x_train, data.y_train, shuffle=False),
            "scan": scan_epoch(model, batches),
        }
    )
    fit_seconds, scan_seconds = epochs["engine"], epochs["scan"]
    with tempfile.TemporaryDirectory() as folder:
        hlo_text, profiled_wall, compile_seconds = profiled_step(model, batches, profiled_steps, Path(folder))
        kernels = hlo_kernels(hlo_text, model.optimizer.name)
        profile = profile_split(Path(folder), kernels, profiled_steps)
    parameters = int(sum(np.prod(variable.shape) for variable in model.trainable_variables))
    matmul_gflops = reference_loops.jax_matmul_gflops()
    adam_seconds = flat_adam_seconds(parameters, steps)
    adam_updates = adam_update_seconds(model, steps)
    thread_seconds = profile["thread_seconds"]
    total = sum(thread_seconds.values())
    return {
        "networks": len(names),
        "steps_per_epoch": steps,
        "parameters": parameters,
        "fit_epoch_seconds": fit_seconds,
        "keras_way_fit_epoch_seconds": epochs["keras_way"],
        "fit_unshuffled_epoch_seconds": epochs["unshuffled"],
        "scan_epoch_seconds": scan_seconds,
        "outside_compiled_step_seconds": fit_seconds - scan_seconds,
        "compile_seconds": compile_seconds,
        "profiled_steps": profiled_steps,
        "profiled_step_ms": 1e3 * profiled_wall / profiled_steps,
        "shares": {share: thread_seconds[share] / total for share in SHARES},
        "epoch_seconds_by_share": {share: scan_seconds * thread_seconds[share] / total for share in SHARES},
        "kernels_per_step": profile["kernels_per_step"],
        "products_gflop_per_step": profile["products_gflop_per_step"],
        "jax_matmul_gflops": matmul_gflops,
        "products_floor_epoch_seconds": profile["products_gflop_per_step"] * steps / matmul_gflops,
        "adam_floor_epoch_seconds": adam_seconds,
        "memory_gb_per_second": parameters * ADAM_BYTES_PER_PARAMETER * steps / adam_seconds / 1e9,
        "keras_adam_epoch_seconds": adam_updates["keras_adam"],
        "multi_tensor_adam_epoch_seconds": adam_updates["multi_tensor_adam"],
        "multi_tensor_adam_equal": adam_updates["multi_tensor_equal"],
    }


def print_split(split: dict) -> None:
    steps, scan = split["steps_per_epoch"], split["scan_epoch_seconds"]
    print(
        f"\nThe default sweep's fused step ({split['networks']} networks, {split['parameters']:,} weights, "
        f"batch {BATCH}, {steps} steps an epoch), one steady epoch without validation:"
    )
    print(
        f"  fit, as Keras runs it (a label array per branch, one jitted call per batch): "
        f"{split['keras_way_fit_epoch_seconds']:.2f} s"
    )
    print(
        f"  fit, as the engine runs it (labels once, 16 batches a call in one lax.scan): {split['fit_epoch_seconds']:.2f} s"
    )
    print(f"  fit without shuffling (batches sliced, not gathered): {split['fit_unshuffled_epoch_seconds']:.2f} s")
    print(f"  the compiled step alone (one lax.scan an epoch): {scan:.2f} s")
    print(
        f"  outside the compiled step (fit's loop, batches, callbacks): {split['outside_compiled_step_seconds']:.2f} s"
    )
    print(f"  compiling the step once (one batch, JAX's compile cache off): {split['compile_seconds']:.2f} s")
    print(f"The compiled step by share (XLA's profile of {split['profiled_steps']} steps, kernel time):")
    for share in SHARES:
        print(
            f"  {share:<28} {split['shares'][share]:>6.1%}  {split['epoch_seconds_by_share'][share]:>5.2f} s an epoch"
            f"  {split['kernels_per_step'][share]:>6.0f} kernels a step"
        )
    products = split["products_floor_epoch_seconds"]
    print(
        f"Floors: the products ({split['products_gflop_per_step']:.3f} GFLOP a step) at XLA's matmul rate "
        f"({split['jax_matmul_gflops']:.0f} GFLOP/s): {products:.2f} s an epoch; Adam's bytes at "
        f"{split['memory_gb_per_second']:.0f} GB/s: {split['adam_floor_epoch_seconds']:.2f} s an epoch; "
        f"both: {products + split['adam_floor_epoch_seconds']:.2f} s against fit's {split['fit_epoch_seconds']:.2f} s"
    )
    same = "the same weights" if split["multi_tensor_adam_equal"] else "DIFFERENT weights"
    print(
        f"Adam's update alone, an epoch of it: Keras' (per variable) {split['keras_adam_epoch_seconds']:.2f} s; "
        f"one multi-tensor update (concatenate, update, split) {split['multi_tensor_adam_epoch_seconds']:.2f} s, {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="MNIST folder or mnist.npz (default: MNIST-shaped synthetic data)")
    parser.add_argument("--steps", type=int, default=PROFILED_STEPS, help="steps to profile (default: 64)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    split = measure(args.data, args.steps)
    print_split(split)
    if args.json:
        args.json.write_text(json.dumps(split, indent=2) + "\n")


if __name__ == "__main__":
    main()
