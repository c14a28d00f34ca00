"""Choosing the Keras backend, before Keras is imported, and the facts a result records about it.

Keras 3 runs the same model code on JAX or TensorFlow and reads `KERAS_BACKEND` once, when it is
first imported. JAX is the default: on this project's 2-core machines it trained these dense nets
2.5-5x faster than TensorFlow. The scripts' `--backend` flag therefore has to be honoured here,
before `import keras` below, rather than after argparse runs in `main()`. Every module of the
engine imports Keras from here (`from explorer.backend import keras`), so whichever is imported
first, the choice is made once and first.
"""

import contextlib
import os
import platform
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from explorer.errors import ConfigError

BACKENDS = ("jax", "tensorflow")
DEFAULT_BACKEND = "jax"


def backend_from_argv(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """Return the backend to import Keras with.

    Args:
        argv: command-line arguments (without the program name); `--backend NAME` or
            `--backend=NAME` wins.
        environ: the environment; `KERAS_BACKEND` is used when argv names none.

    Returns:
        The chosen backend if it is one of `BACKENDS`, else `DEFAULT_BACKEND`. An unsupported
        name is not an error here: argparse (or `check_backend`) reports it with a clear message
        once the script runs, and Keras must still import with something that works.
    """
    chosen = environ.get("KERAS_BACKEND", DEFAULT_BACKEND)
    for index, argument in enumerate(argv):
        if argument == "--backend" and index + 1 < len(argv):
            chosen = argv[index + 1]
        elif argument.startswith("--backend="):
            chosen = argument.split("=", 1)[1]
    return chosen if chosen in BACKENDS else DEFAULT_BACKEND


@contextlib.contextmanager
def native_stderr_filtered(noise: re.Pattern):
    """Hold back lines matching `noise` that native code writes to file descriptor 2.

    TensorFlow's C++ runtime logs informational lines (oneDNN, CPU features) while it is imported,
    before its logging honours TF_CPP_MIN_LOG_LEVEL; they would turn every one-line error into
    five. Python-level output and every other line pass through unchanged.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not noise.match(line):
                    sys.stderr.write(line)


TENSORFLOW_IMPORT_NOISE = re.compile(r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog)")

os.environ["KERAS_BACKEND"] = backend_from_argv(sys.argv[1:], os.environ)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's runtime warnings, once imported
# JAX keeps compiled programs on disk, keyed by the program: repeats, same-shape models and the
# next run skip compiling. JAX_COMPILATION_CACHE_DIR moves it; an empty value turns it off.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnist-dense-explorer" / "jax"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

with native_stderr_filtered(TENSORFLOW_IMPORT_NOISE):
    import keras  # must follow the backend choice above
import numpy as np  # noqa: E402


def check_backend(requested: str) -> None:
    """Fail clearly when `requested` is not the backend Keras was imported with.

    Raises:
        ConfigError: if `requested` is not supported, or differs from `keras.backend.backend()`
            (possible only when a script's `main()` is called from an already running process).
    """
    if requested not in BACKENDS:
        raise ConfigError(
            f"backend {requested!r} is not supported; allowed: {', '.join(BACKENDS)} "
            "(set with --backend or KERAS_BACKEND)"
        )
    if requested != keras.backend.backend():
        raise ConfigError(
            f"backend {requested!r} was asked for, but Keras was already imported with "
            f"{keras.backend.backend()!r}; start a new process with --backend {requested}"
        )


def versions() -> dict[str, str]:
    """Return the versions that decide a result: Python, NumPy, Keras and the active backend."""
    backend = keras.backend.backend()
    found = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "keras": keras.__version__,
        "backend": backend,
    }
    if backend == "jax":
        import jax

        found["jax"] = jax.__version__
    else:
        import tensorflow

        found["tensorflow"] = tensorflow.__version__
    return found


def device_description() -> str:
    """The device Keras trains on, e.g. "cpu" or "gpu: NVIDIA H100 80GB HBM3"."""
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return device.platform if device.platform == "cpu" else f"{device.platform}: {device.device_kind}"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "cpu"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"gpu: {details.get('device_name', gpus[0].name)}"


def seed_everything(seed: int) -> None:
    """`keras.utils.set_random_seed`: Python, NumPy and the backend. It also seeds TensorFlow when
    it is installed, importing it even on JAX, so TensorFlow's start-up noise is held back."""
    with native_stderr_filtered(TENSORFLOW_IMPORT_NOISE):
        keras.utils.set_random_seed(seed)
