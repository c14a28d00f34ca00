"""Shared fixtures: tiny, seeded, synthetic MNIST-shaped data; nothing touches the network."""

import gzip
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

# Parallel workers (make test) each keep JAX's compile cache in a folder of their own: JAX writes a
# cache entry in place, so another process could read one half-written.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault(
        "JAX_COMPILATION_CACHE_DIR",
        str(Path.home() / ".cache" / "mnist-dense-explorer" / f"jax-{os.environ['PYTEST_XDIST_WORKER']}"),
    )

import common  # first of the project: it picks the Keras backend before Keras is imported
from explorer.api import variants_of
from explorer.config.defaults import IMAGE_SHAPE, NUM_CLASSES
from explorer.models.trials import Trial
from explorer.models.variants import Variant, inspect_variant

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
    (variant,) = variants_of({name: fields or {}})
    return variant


def dense_trial(name: str, fields: dict | None = None, seed: int = 0, repeat: int = 0) -> Trial:
    """One trial of `dense_variant(name, fields)` with `seed`."""
    variant = dense_variant(name, fields)
    return Trial(variant, inspect_variant(variant), seed, repeat)


TWO_MODELS = "[first]\nhidden_units = [16]\nepochs = {epochs}\n\n[second]\nhidden_units = [8]\nepochs = {epochs}\n"


def sweep_files(folder: Path, epochs: int) -> list:
    """A two-model sweep's configuration file and its data (the synthetic digits as an npz), written
    into `folder`; returns the loop script's arguments that train it."""
    (x_train, y_train), (x_test, y_test) = (
        make_synthetic_digits(SYNTHETIC_TRAIN, 1),
        make_synthetic_digits(SYNTHETIC_TEST, 2),
    )
    np.savez(folder / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (folder / "sweep.toml").write_text(TWO_MODELS.format(epochs=epochs))
    return ["--config", folder / "sweep.toml", "--data", folder / "mnist.npz"]


def run_loop(*arguments) -> int:
    """The loop script's `main`, in this process, with one run per configuration."""
    import model_builder_loop

    return model_builder_loop.main(["--repeats", "1", *(str(argument) for argument in arguments)])


@pytest.fixture(scope="session")
def finished_run_template(tmp_path_factory):
    """A finished two-model run (2 epochs each), trained once per session; tests damage copies of
    it (`finished_run`). Its configuration and data stay where they are: a resume must name the same
    paths, which the fingerprints include."""
    folder = tmp_path_factory.mktemp("finished")
    arguments = sweep_files(folder, epochs=2)
    common.keras.utils.set_random_seed(0)
    assert run_loop(*arguments, "--out", folder / "run") == 0
    return folder, arguments


@pytest.fixture
def finished_run(finished_run_template, tmp_path):
    """A copy of the finished two-model run, and the arguments that made it (without --out)."""
    folder, arguments = finished_run_template
    shutil.copytree(folder / "run", tmp_path / "run")
    return tmp_path / "run", arguments


# --- A real browser, for the report's page tests ----------------------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
NO_BROWSER = "Chromium and ChromeDriver are not installed (apt-get install chromium chromium-driver)"


def headless_chromium(profile: Path, window: str = "1280,2000"):
    """A headless Chromium driven by Selenium, with its own profile folder and nothing fetched in
    the background; the caller quits it. Skips the test when Selenium is not installed."""
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", f"--window-size={window}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)


def train_and_evaluate(trial, data, model_dir: Path, *, context, **setup) -> dict:
    """Train one trial on its own, checkpointing in `model_dir/checkpoint`, and write its files to
    `model_dir`, through the engine's one recording function; `setup` sets the other `GroupSetup`
    fields (verbose, tensorboard_root, ...). The tests' way to train a single model."""
    from explorer.engine.groups import train_and_record
    from explorer.engine.training import GroupSetup
    from explorer.store.group_checkpoint import GroupCheckpoint
    from explorer.store.trial_folder import TrialFolder

    folders = [TrialFolder(model_dir, trial, key="")]
    group_setup = GroupSetup(folders, GroupCheckpoint(model_dir / "checkpoint"), **setup)
    (result,) = train_and_record([trial], data, group_setup, [{**context, "fused_group": None}])
    return result
