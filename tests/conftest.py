"""Shared fixtures: tiny, seeded, synthetic MNIST-shaped data; nothing touches the network."""

import functools
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import common  # first: it picks the Keras backend (KERAS_BACKEND, else JAX) before Keras is imported
from explorer.configs import validate_config
from explorer.dense import dense_network
from explorer.splits import IMAGE_SHAPE, NUM_CLASSES
from explorer.trials import Trial
from explorer.variants import Variant, inspect_variant

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The official MNIST files: $MNIST_DATA, else the team's shared copy beside the project.
REAL_MNIST = Path(os.environ.get("MNIST_DATA") or PROJECT_ROOT.parent / "shared" / "data" / "mnist")
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 600, 200


@pytest.fixture(autouse=True)
def seed():
    """Seed Python, NumPy and the backend before every test, so every test is repeatable."""
    common.keras.utils.set_random_seed(0)
    return 0


def make_synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped uint8 images whose class is easy to learn: digit d lights rows 2d..2d+4 (plus
    noise), so a small network separates them within an epoch or two."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % NUM_CLASSES
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(count, *IMAGE_SHAPE)).astype(np.uint8)
    for index, label in enumerate(labels):
        images[index, 2 * label + 2 : 2 * label + 7, 4:24] = 230
    return images, labels.astype(np.uint8)


@pytest.fixture
def synthetic_mnist():
    """`(x_train, y_train), (x_test, y_test)` of 600 and 200 synthetic digits."""
    return make_synthetic_digits(SYNTHETIC_TRAIN, seed=1), make_synthetic_digits(SYNTHETIC_TEST, seed=2)


@pytest.fixture
def synthetic_npz(tmp_path, synthetic_mnist):
    """The synthetic digits saved as a Keras-style mnist.npz."""
    (x_train, y_train), (x_test, y_test) = synthetic_mnist
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (the format of the official MNIST files)."""
    magic = 0x0800 | array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gzipped: bool = False) -> Path:
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    return path


def write_official_folder(folder: Path, mnist) -> Path:
    """Write `(x_train, y_train), (x_test, y_test)` as the four officially named, gzipped IDX files
    (their content is not MNIST's, so the md5 check refuses them)."""
    (x_train, y_train), (x_test, y_test) = mnist
    folder.mkdir(exist_ok=True)
    for name, array in (
        ("train-images-idx3-ubyte.gz", x_train),
        ("train-labels-idx1-ubyte.gz", y_train),
        ("t10k-images-idx3-ubyte.gz", x_test),
        ("t10k-labels-idx1-ubyte.gz", y_test),
    ):
        write_idx(folder / name, array, gzipped=True)
    return folder


def real_mnist_or_skip() -> Path:
    if not (REAL_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {REAL_MNIST} (set MNIST_DATA to a folder of the official IDX files)")
    return REAL_MNIST


def dense_variant(name: str, fields: dict | None = None) -> Variant:
    """The variant the loop script makes of configuration `name: fields`: the dense builder bound to it."""
    config = validate_config(name, fields or {})
    return Variant(config.name, functools.partial(dense_network, config), config.epochs, config.batch_size)


def dense_trial(name: str, fields: dict | None = None, seed: int = 0, repeat: int = 0) -> Trial:
    """One trial of `dense_variant(name, fields)` with `seed`."""
    variant = dense_variant(name, fields)
    return Trial(variant, inspect_variant(variant), seed, repeat)
