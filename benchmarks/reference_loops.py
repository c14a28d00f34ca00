"""Reference training loops for the side-by-side speed benchmark.

Each loop trains the same network the Keras scripts build, written the way a user of that framework
would write it by hand, so the benchmark can say how far Keras is from a plain PyTorch loop and from
a hand-written, fully jitted JAX loop:

    784 inputs -> Dense(h, relu) for each h in hidden_units -> Dense(10) logits

- softmax cross-entropy on integer labels, averaged over the batch;
- Adam with Keras' defaults: learning rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7;
- Glorot-uniform weights and zero biases, as Keras' Dense initialises them;
- the training set shuffled anew every epoch, and the last, partial batch trained on, as Keras'
  `fit` does (60,000 samples in batches of 128: 468 full batches and one of 96).

Every loop has the same signature and returns the same dict:

    train_pytorch(hidden_units, x_train, y_train, x_test, y_test, *, epochs, batch_size, seed)
    train_jax_scan(hidden_units, x_train, y_train, x_test, y_test, *, epochs, batch_size, seed)

    {"seconds_per_epoch": [...],    # wall-clock seconds of each epoch, the first one included
     "first_epoch_seconds": float,  # the same as seconds_per_epoch[0]: compile and warm-up included
     "test_accuracy": float,        # after the last epoch, on the whole test set
     "peak_rss_mib": float | None}  # the process's peak resident memory during the call

Inputs: `x_*` float32 of shape (N, 784) scaled to [0, 1]; `y_*` integer class labels of shape (N,).

Two helpers put the timings in proportion: `matmul_ceiling_gflops` measures what a float32 numpy
matmul reaches on this machine, and `training_flops_per_epoch` estimates the work of one epoch, so
that `training_flops_per_epoch(...) / matmul_ceiling_gflops() / 1e9` is the fastest an epoch could
possibly run. `load_mnist_idx` reads the four official MNIST IDX files without the project's
`common.py`, so this module stands on its own.

Smoke demo (one epoch of 784-128-10 in each loop):

    python benchmarks/reference_loops.py ../shared/data/mnist

Install the extra packages with `pip install -r requirements-bench.txt`.
"""

import functools
import gzip
import itertools
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Keras' Adam defaults; its epsilon (1e-7) differs from PyTorch's and optax's (1e-8).
LEARNING_RATE = 1e-3
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-7
NUM_CLASSES = 10


# ---------------------------------------------------------------------------------------------------
# Shared helpers: argument checks, core count, peak memory
# ---------------------------------------------------------------------------------------------------


def _check_inputs(x_train, y_train, x_test, y_test, epochs: int, batch_size: int) -> None:
    """Fail early, with a plain message, on inputs that would otherwise fail deep inside a framework."""
    for name, features, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        if np.ndim(features) != 2 or np.ndim(labels) != 1 or len(features) != len(labels):
            raise ValueError(
                f"{name}: expected features (N, D) and labels (N,), got {np.shape(features)} and {np.shape(labels)}"
            )
    if np.shape(x_train)[1] != np.shape(x_test)[1]:
        raise ValueError(f"train and test features differ in width: {np.shape(x_train)[1]} vs {np.shape(x_test)[1]}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got {epochs} and {batch_size}")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _PeakRss:
    """The process's peak resident memory over a stretch of code, in MiB, or None where unmeasurable.

    On Linux, writing "5" to /proc/self/clear_refs resets the kernel's high-water mark (VmHWM) to the
    current RSS, so the VmHWM read afterwards is the peak of this stretch alone rather than of the
    whole process lifetime, which would include loading the data or an earlier loop. The reset is
    process-wide: `resource.getrusage(...).ru_maxrss` read later in the same process sees it too.
    Elsewhere (or where /proc is read-only) the result is None rather than a lifetime figure that
    would look like this run's.
    """

    def __enter__(self) -> "_PeakRss":
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._reset = True
        except OSError:
            self._reset = False
        self.mib: float | None = None
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._reset:
            return
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            return
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        self.mib = int(match.group(1)) / 1024 if match else None


def _result(seconds_per_epoch: list[float], test_accuracy: float, peak_rss_mib: float | None) -> dict:
    return {
        "seconds_per_epoch": seconds_per_epoch,
        "first_epoch_seconds": seconds_per_epoch[0],
        "test_accuracy": float(test_accuracy),
        "peak_rss_mib": peak_rss_mib,
    }


# ---------------------------------------------------------------------------------------------------
# PyTorch: the plain eager loop
# ---------------------------------------------------------------------------------------------------


def train_pytorch(
    hidden_units: Sequence[int],
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    learning_rate: float = LEARNING_RATE,
) -> dict:
    """Train the network with a plain eager PyTorch loop: what a PyTorch user would write.

    The data become torch tensors once; each epoch draws a fresh permutation and indexes the tensors
    with slices of it, one optimizer step per batch, the last partial batch included (as in Keras).
    No `torch.compile`, no DataLoader: a DataLoader's per-sample collation would measure Python
    overhead rather than training.

    PyTorch's intra-op thread pool is set to the cores this process may use (`available_cores()`)
    for the call and restored afterwards, so PyTorch gets the same cores as XLA, which uses them all
    by default. On a machine whose cores are shared with other work this makes the loop very
    sensitive to it: every operator of every step waits for its slowest OpenMP thread, and a thread
    whose core is busy elsewhere can wait a whole scheduler slice. On 2 cores with another job running,
    784-128-10 at batch 128 took 5-10 s an epoch with 2 threads against about 0.9 s with 1 (0.44 s
    and 0.59 s when the machine was quiet), while the JAX loop moved from 0.3 s to 0.5 s.

    Weights and shuffling come from a local `torch.Generator` seeded with `seed`; the global torch
    RNG is left alone apart from the default initialisation `nn.Linear` draws before it is
    overwritten.

    Adam is `torch.optim.Adam` with Keras' betas and epsilon; it adds epsilon after dividing by the
    bias correction, Keras before, a difference far below the noise of these runs.

    Returns the dict described in the module docstring. `first_epoch_seconds` includes the
    allocator's and thread pool's warm-up (there is nothing to compile).
    """
    import torch
    from torch import nn

    _check_inputs(x_train, y_train, x_test, y_test, epochs, batch_size)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(available_cores())
    try:
        with _PeakRss() as peak:
            generator = torch.Generator().manual_seed(seed)
            # torch.from_numpy shares memory with a float32 array instead of copying it.
            features = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
            labels = torch.from_numpy(np.asarray(y_train, dtype=np.int64))  # cross_entropy wants int64

            widths = [features.shape[1], *hidden_units]
            layers: list[nn.Module] = []
            for fan_in, fan_out in itertools.pairwise(widths):
                layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
            layers.append(nn.Linear(widths[-1], NUM_CLASSES))
            model = nn.Sequential(*layers)
            for layer in model:
                if isinstance(layer, nn.Linear):
                    # Glorot's limit sqrt(6 / (fan_in + fan_out)) is symmetric in the two fans, so
                    # PyTorch's (out, in) weight layout gives the same distribution as Keras' (in, out).
                    nn.init.xavier_uniform_(layer.weight, generator=generator)
                    nn.init.zeros_(layer.bias)
            optimizer = torch.optim.Adam(
                model.parameters(), lr=learning_rate, betas=(ADAM_BETA_1, ADAM_BETA_2), eps=ADAM_EPSILON
            )

            samples = len(features)
            seconds_per_epoch = []
            model.train()
            for _ in range(epochs):
                started = time.perf_counter()
                permutation = torch.randperm(samples, generator=generator)
                for start in range(0, samples, batch_size):
                    batch = permutation[start : start + batch_size]
                    loss = nn.functional.cross_entropy(model(features[batch]), labels[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                # Eager PyTorch on the CPU is synchronous: the last step has finished here.
                seconds_per_epoch.append(time.perf_counter() - started)

            model.eval()
            with torch.inference_mode():
                test_features = torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float32))
                predictions = model(test_features).argmax(dim=1).numpy()
            test_accuracy = float(np.mean(predictions == np.asarray(y_test)))
    finally:
        torch.set_num_threads(previous_threads)
    return _result(seconds_per_epoch, test_accuracy, peak.mib)


# ---------------------------------------------------------------------------------------------------
# JAX: the whole epoch as one jitted lax.scan
# ---------------------------------------------------------------------------------------------------


def train_jax_scan(
    hidden_units: Sequence[int],
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    learning_rate: float = LEARNING_RATE,
) -> dict:
    """Train the network with hand-written JAX: one jitted `lax.scan` per epoch over the full batches.

    Parameters are a pytree (a list of {"w", "b"} dicts), Adam is `optax.adam` with Keras' betas and
    epsilon (optax, like PyTorch, adds epsilon after the bias correction; Keras before). The data go
    to the device once with `jax.device_put`; each epoch the permutation is drawn on the device and
    reshaped into (full batches, batch_size) indices, and one compiled scan runs every full batch,
    gathering each batch from the device-resident arrays inside the step, so no shuffled copy of the
    training set is made. The last, partial batch (kept, as in Keras) runs through a second jitted
    step: its shape differs, so it compiles once, in the first epoch.

    The training arrays are arguments of the jitted functions rather than values they close over: a
    closed-over array would be baked into the compiled program as a constant. Parameters and
    optimizer state are donated, so XLA may update them in place. XLA's CPU backend uses every core
    by default. Each epoch's time stops at `jax.block_until_ready` on the parameters, since JAX
    dispatches asynchronously.

    Returns the dict described in the module docstring. `first_epoch_seconds` includes tracing and
    compiling the scan, the tail step and the shuffle.
    """
    import jax
    import jax.numpy as jnp
    import optax

    _check_inputs(x_train, y_train, x_test, y_test, epochs, batch_size)
    with _PeakRss() as peak:
        features = jax.device_put(np.asarray(x_train, dtype=np.float32))
        labels = jax.device_put(np.asarray(y_train, dtype=np.int32))
        samples, input_dim = features.shape
        full_batches = samples // batch_size
        tail_size = samples - full_batches * batch_size

        init_key, shuffle_key = jax.random.split(jax.random.key(seed))
        params = _init_params_glorot(init_key, [input_dim, *hidden_units, NUM_CLASSES])
        optimizer = optax.adam(learning_rate, b1=ADAM_BETA_1, b2=ADAM_BETA_2, eps=ADAM_EPSILON)
        opt_state = optimizer.init(params)

        def loss_fn(params, batch_features, batch_labels):
            logits = _forward(params, batch_features)
            return optax.softmax_cross_entropy_with_integer_labels(logits, batch_labels).mean()

        def train_step(params, opt_state, batch_features, batch_labels):
            loss, grads = jax.value_and_grad(loss_fn)(params, batch_features, batch_labels)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        @jax.jit
        def shuffled_batch_indices(key):
            permutation = jax.random.permutation(key, samples)
            full = permutation[: full_batches * batch_size].reshape(full_batches, batch_size)
            return full, permutation[full_batches * batch_size :]

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def train_full_batches(params, opt_state, features, labels, batch_indices):
            def body(carry, indices):
                params, opt_state, loss = train_step(*carry, features[indices], labels[indices])
                return (params, opt_state), loss

            (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), batch_indices)
            return params, opt_state, losses

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def train_tail_batch(params, opt_state, features, labels, indices):
            return train_step(params, opt_state, features[indices], labels[indices])

        seconds_per_epoch = []
        for epoch in range(epochs):
            started = time.perf_counter()
            full_indices, tail_indices = shuffled_batch_indices(jax.random.fold_in(shuffle_key, epoch))
            if full_batches:
                params, opt_state, _ = train_full_batches(params, opt_state, features, labels, full_indices)
            if tail_size:
                params, opt_state, _ = train_tail_batch(params, opt_state, features, labels, tail_indices)
            jax.block_until_ready(params)
            seconds_per_epoch.append(time.perf_counter() - started)

        predictions = jax.jit(_forward)(params, jnp.asarray(x_test, dtype=jnp.float32)).argmax(axis=1)
        test_accuracy = float(np.mean(np.asarray(predictions) == np.asarray(y_test)))
    return _result(seconds_per_epoch, test_accuracy, peak.mib)


def train_jax_scan_group(
    branches: Sequence[dict],
    x_train,
    y_train,
    x_val,
    y_val,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    learning_rate: float = LEARNING_RATE,
) -> dict:
    """Train a fused group by hand: every branch of it in one jitted `lax.scan` per epoch.

    The same work as the explorer's fused Keras model of those branches: each branch is
    784 -> Dense(h, activation) [-> Dropout] ... -> Dense(10, softmax or sigmoid), with Keras'
    losses written out (categorical cross-entropy of the outputs normalised to sum to one, clipped
    to [1e-7, 1 - 1e-7]; binary cross-entropy for sigmoid outputs), the branches' losses summed, one
    Adam (`optax.adam`, Keras' betas and epsilon) over all weights, each branch's training loss and
    accuracy accumulated over the epoch in the scan, and the validation split evaluated at the end of
    every epoch, as Keras' `fit` does. `branches` are dicts with hidden_units, activation,
    output_activation ("softmax" or "sigmoid") and dropout. Labels are integers here; they are
    one-hot encoded on the device.

    Returns {"seconds_per_epoch": [...], "val_accuracy": {branch index: last epoch's}}.
    """
    import jax
    import jax.numpy as jnp
    import optax

    group_figures = functools.partial(_group_figures, branches)
    _check_inputs(x_train, y_train, x_val, y_val, epochs, batch_size)
    features, labels = jax.device_put(np.asarray(x_train, np.float32)), jax.device_put(np.asarray(y_train, np.int32))
    val_features, val_labels = (
        jax.device_put(np.asarray(x_val, np.float32)),
        jax.device_put(np.asarray(y_val, np.int32)),
    )
    samples, input_dim = features.shape
    full_batches = samples // batch_size
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    params = [
        _init_params_glorot(branch_key, [input_dim, *spec["hidden_units"], NUM_CLASSES])
        for branch_key, spec in zip(jax.random.split(init_key, len(branches)), branches, strict=True)
    ]
    optimizer = optax.adam(learning_rate, b1=ADAM_BETA_1, b2=ADAM_BETA_2, eps=ADAM_EPSILON)
    opt_state = optimizer.init(params)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_epoch(params, opt_state, features, labels, key):
        def step(carry, batch):
            params, opt_state, loss_sums, correct_sums = carry
            indices, step_key = batch
            grads, (losses, correct) = jax.grad(group_figures, has_aux=True)(
                params, features[indices], labels[indices], step_key
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            sums = (loss_sums + losses * indices.shape[0], correct_sums + correct)
            return (optax.apply_updates(params, updates), opt_state, *sums), None

        shuffle, dropout = jax.random.split(key)
        permutation = jax.random.permutation(shuffle, samples)
        full = permutation[: full_batches * batch_size].reshape(full_batches, batch_size)
        zeros = jnp.zeros(len(branches))
        carry, _ = jax.lax.scan(
            step, (params, opt_state, zeros, zeros), (full, jax.random.split(dropout, full_batches))
        )
        if samples > full_batches * batch_size:  # the last, partial batch, as Keras trains it
            tail = permutation[full_batches * batch_size :]
            carry, _ = step(carry, (tail, jax.random.fold_in(dropout, full_batches)))
        params, opt_state, loss_sums, correct_sums = carry
        return params, opt_state, loss_sums / samples, correct_sums / samples

    @jax.jit
    def validate(params, features, labels):
        _, (losses, correct) = group_figures(params, features, labels, None)
        return losses, correct / features.shape[0]

    seconds_per_epoch = []
    for epoch in range(epochs):
        started = time.perf_counter()
        params, opt_state, _, _ = train_epoch(
            params, opt_state, features, labels, jax.random.fold_in(shuffle_key, epoch)
        )
        _, val_accuracy = validate(params, val_features, val_labels)
        jax.block_until_ready(val_accuracy)
        seconds_per_epoch.append(time.perf_counter() - started)
    return {"seconds_per_epoch": seconds_per_epoch, "val_accuracy": [float(value) for value in val_accuracy]}


KERAS_EPSILON = 1e-7  # Keras' backend epsilon: its cross-entropies clip probabilities with it


def _branch_outputs(params: list[dict], spec: dict, features, key):
    """A branch's output probabilities; with a `key`, dropout after each hidden layer (training)."""
    import jax
    import jax.numpy as jnp

    activations = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh,
                   "gelu": functools.partial(jax.nn.gelu, approximate=False), "linear": lambda x: x}  # fmt: skip
    for layer in params[:-1]:
        features = activations[spec["activation"]](features @ layer["w"] + layer["b"])
        if key is not None and spec["dropout"]:
            key, mask_key = jax.random.split(key)
            keep = jax.random.bernoulli(mask_key, 1.0 - spec["dropout"], features.shape)
            features = jnp.where(keep, features / (1.0 - spec["dropout"]), 0.0)
    logits = features @ params[-1]["w"] + params[-1]["b"]
    return jax.nn.sigmoid(logits) if spec["output_activation"] == "sigmoid" else jax.nn.softmax(logits)


def _branch_loss(spec: dict, outputs, one_hot):
    """Keras' loss of the branch per sample: binary cross-entropy for sigmoid outputs, else
    categorical cross-entropy of the outputs normalised to sum to one."""
    import jax.numpy as jnp

    if spec["output_activation"] == "sigmoid":
        outputs = jnp.clip(outputs, KERAS_EPSILON, 1.0 - KERAS_EPSILON)
        return -jnp.mean(one_hot * jnp.log(outputs) + (1 - one_hot) * jnp.log(1 - outputs), axis=-1)
    outputs = jnp.clip(outputs / outputs.sum(axis=-1, keepdims=True), KERAS_EPSILON, 1.0 - KERAS_EPSILON)
    return -jnp.sum(one_hot * jnp.log(outputs), axis=-1)


def _group_figures(branches: Sequence[dict], params: list, features, labels, key):
    """The summed loss of the branches, and per branch its mean loss and correct digits."""
    import jax
    import jax.numpy as jnp

    one_hot = jax.nn.one_hot(labels, NUM_CLASSES)
    keys = [None] * len(branches) if key is None else list(jax.random.split(key, len(branches)))
    losses, correct = [], []
    for branch_params, spec, branch_key in zip(params, branches, keys, strict=True):
        outputs = _branch_outputs(branch_params, spec, features, branch_key)
        losses.append(_branch_loss(spec, outputs, one_hot).mean())
        correct.append(jnp.sum(outputs.argmax(axis=-1) == labels))
    return sum(losses), (jnp.stack(losses), jnp.stack(correct))


def jax_matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Measured float32 GFLOP/s of a jitted square `jnp.matmul` (XLA's own kernels): the best of
    `repeats`, after an untimed call that compiles it."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    left, right = (jax.device_put(rng.random((size, size), dtype=np.float32)) for _ in range(2))
    product = jax.jit(jnp.matmul)
    product(left, right).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product(left, right).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def _init_params_glorot(key, widths: Sequence[int]) -> list[dict]:
    """Glorot-uniform weights of shape (fan_in, fan_out) and zero biases, as Keras' Dense initialises."""
    import jax
    import jax.numpy as jnp

    initializer = jax.nn.initializers.glorot_uniform()
    keys = jax.random.split(key, len(widths) - 1)
    return [
        {"w": initializer(layer_key, (fan_in, fan_out), jnp.float32), "b": jnp.zeros((fan_out,), jnp.float32)}
        for layer_key, (fan_in, fan_out) in zip(keys, itertools.pairwise(widths), strict=True)
    ]


def _forward(params: list[dict], features):
    """Logits of the network: ReLU after every layer but the last."""
    import jax

    for layer in params[:-1]:
        features = jax.nn.relu(features @ layer["w"] + layer["b"])
    return features @ params[-1]["w"] + params[-1]["b"]


# ---------------------------------------------------------------------------------------------------
# Putting the timings in proportion
# ---------------------------------------------------------------------------------------------------


def matmul_ceiling_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Measured float32 GFLOP/s of a square numpy matmul: the best of `repeats` timed runs.

    One n x n by n x n product counts 2 * n**3 floating-point operations. An untimed product runs
    first so that the BLAS thread pool and the output buffer exist before the clock starts; the best
    run, not the mean, is kept because noise from other work only ever slows a run down. This is
    numpy's BLAS as configured in this process (thread count, OPENBLAS_CORETYPE and the like), a
    practical ceiling for dense layers on this machine rather than the processor's peak.
    """
    rng = np.random.default_rng(0)
    left = rng.random((size, size), dtype=np.float32)
    right = rng.random((size, size), dtype=np.float32)
    product = left @ right  # warm-up, untimed
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.matmul(left, right, out=product)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def training_flops_per_epoch(
    hidden_units: Sequence[int], samples: int, input_dim: int = 784, classes: int = NUM_CLASSES
) -> float:
    """Floating-point operations of one training epoch's matrix products over `samples` samples.

    The project's rule (`explorer.models.flops`, written out here so that this module stands on
    its own): each layer's forward matmul costs 2 x fan_in x fan_out per sample (a multiply and an
    add), the backward pass as much again for the gradient of the weights, and as much again for
    the gradient of the layer's input in every layer but the first (nothing needs the pixels'
    gradient). Biases, activations, the loss and the optimizer update are ignored: they grow with
    the layer widths, not their products, and are 1-4% at these sizes (XLA's count of the step).
    """
    widths = [input_dim, *hidden_units, classes]
    multiply_adds = [fan_in * fan_out for fan_in, fan_out in itertools.pairwise(widths)]
    return 2.0 * (3 * sum(multiply_adds) - multiply_adds[0]) * samples


# ---------------------------------------------------------------------------------------------------
# Data: the four official MNIST IDX files, gzipped or not
# ---------------------------------------------------------------------------------------------------


def read_idx(path: Path | str) -> np.ndarray:
    """An IDX file (gzipped or not) as a numpy array of unsigned bytes, in the shape its header gives.

    The header is two zero bytes, a type byte (0x08: unsigned byte, the only type MNIST uses), a byte
    giving the number of dimensions, then each dimension as a big-endian 32-bit integer.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=dims, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, found {data.size:,} values")
    return data.reshape(shape)


def load_mnist_idx(folder: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST from `folder` as (x_train, y_train, x_test, y_test), ready for the training loops.

    Features are float32 of shape (N, 784) scaled to [0, 1], labels int64 of shape (N,). Each file
    is looked for as `NAME.gz` first, then as plain `NAME`.
    """
    folder = Path(folder)

    def load(name: str) -> np.ndarray:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return read_idx(candidate)
        raise FileNotFoundError(f"{folder}: no {name}(.gz)")

    def features(name: str) -> np.ndarray:
        images = load(name)
        return images.reshape(len(images), -1).astype(np.float32) / 255.0

    return (
        features("train-images-idx3-ubyte"),
        load("train-labels-idx1-ubyte").astype(np.int64),
        features("t10k-images-idx3-ubyte"),
        load("t10k-labels-idx1-ubyte").astype(np.int64),
    )


# ---------------------------------------------------------------------------------------------------
# Smoke demo
# ---------------------------------------------------------------------------------------------------


def _smoke_demo(folder: Path) -> None:
    """One epoch of 784-128-10, batch 128, in each loop, set against the matmul ceiling."""
    x_train, y_train, x_test, y_test = load_mnist_idx(folder)
    hidden_units = [128]
    ceiling = matmul_ceiling_gflops()
    floor_seconds = training_flops_per_epoch(hidden_units, len(x_train)) / (ceiling * 1e9)
    print(f"matmul ceiling {ceiling:.1f} GFLOP/s; one epoch of 784-128-10 needs at least {floor_seconds:.3f} s")
    for name, train in (("pytorch", train_pytorch), ("jax_scan", train_jax_scan)):
        result = train(hidden_units, x_train, y_train, x_test, y_test, epochs=1, batch_size=128, seed=0)
        print(f"{name:>9}: {result}")


if __name__ == "__main__":
    default_folder = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
    _smoke_demo(Path(sys.argv[1]) if len(sys.argv) > 1 else default_folder)
