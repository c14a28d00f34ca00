"""Keras, imported with the chosen backend, and the facts a result records about it.

Keras 3 runs the same model code on JAX or TensorFlow and reads `KERAS_BACKEND` once, when it is
first imported. Every module of the engine that needs Keras imports it from here
(`from explorer.models.backend import keras`), after `config.backend_choice.choose_backend` has set the environment
from `--backend` (else `KERAS_BACKEND`, else JAX), so the choice is made once and first.
"""

import contextlib
import os
import platform
import re
import sys
import tempfile

import numpy as np

from explorer.config.backend_choice import choose_backend
from explorer.config.defaults import BACKENDS
from explorer.errors import ConfigError


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


choose_backend(sys.argv[1:], os.environ)


with native_stderr_filtered(TENSORFLOW_IMPORT_NOISE):
    import keras  # must follow the backend choice above


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
    it is installed (unless `keras_compat.tensorflow_left_alone`), importing it even on JAX, so TensorFlow's
    start-up noise is held back."""
    with native_stderr_filtered(TENSORFLOW_IMPORT_NOISE):
        keras.utils.set_random_seed(seed)
