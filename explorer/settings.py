"""The backend choice, defaults, limits and checks of plain values: all without Keras.

The command line and the configurations are checked with these before Keras (and JAX or
TensorFlow) is imported, which takes seconds: `--help` and a mistyped value answer at once.
"""

import re
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

from explorer.errors import ConfigError, shown

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


def choose_backend(argv: Sequence[str], environ: MutableMapping[str, str]) -> str:
    """Set, in `environ`, what Keras and its backends read when first imported: the backend
    (`backend_from_argv`; JAX is the default: on this project's 2-core machines it trained these
    dense networks 2.5-5x faster than TensorFlow), TensorFlow's log level and JAX's compile cache.
    Returns the backend Keras will import. Idempotent: call it before Keras is imported."""
    named = any(argument == "--backend" or argument.startswith("--backend=") for argument in argv)
    if named or environ.get("KERAS_BACKEND") is None:
        environ["KERAS_BACKEND"] = backend_from_argv(argv, environ)
    # else the user's KERAS_BACKEND stands, supported or not: the command line refuses a wrong one.
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's runtime warnings, once imported
    # JAX keeps compiled programs on disk, keyed by the program: repeats, same-shape models and the
    # next run skip compiling. JAX_COMPILATION_CACHE_DIR moves it; an empty value turns it off.
    cache_home = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_home / "mnist-dense-explorer" / "jax"))
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    return environ["KERAS_BACKEND"]


DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 128
# Limits that catch typos (an extra zero or three) before they allocate gigabytes.
MAX_EPOCHS = 1_000
MAX_BATCH_SIZE = 65_536
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# Names Windows keeps for devices: no folder may be called so, whatever follows a dot.
RESERVED_NAMES = {"CON", "PRN", "AUX", "NUL", *(f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10))}


def check_name(name: object) -> str:
    """Return `name` if it is a safe file and model name on every system, else raise ConfigError."""
    reserved = isinstance(name, str) and (name.endswith(".") or name.split(".")[0].upper() in RESERVED_NAMES)
    if not isinstance(name, str) or not SAFE_NAME.match(name) or reserved:
        raise ConfigError(
            f"configuration name {shown(name)} is not allowed; use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, not ending in '.', and not a device name such as CON or "
            "COM1 (it becomes a folder name)"
        )
    return name


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_count(where: str, field: str, value: object, high: int) -> int:
    """Return `value` if it is a whole number from 1 to `high`, else raise a one-line ConfigError."""
    if not is_int(value) or not 1 <= value <= high:
        raise ConfigError(
            f"{where}: {field} = {shown(value)} is not allowed; expected a whole number from 1 to {high:,}"
        )
    return value


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_unique_names(names: Sequence[str]) -> None:
    """Refuse an empty list, a name given twice, and names that differ only in case.

    Raises:
        ConfigError: naming the names.
    """
    if not names:
        raise ConfigError("no configurations to train; define at least one")
    seen: dict[str, str] = {}
    for name in names:
        key = str(name).lower()
        if key not in seen:
            seen[key] = name
        elif seen[key] == name:
            raise ConfigError(f"variant {shown(name)} is given twice; give each network its own name")
        else:
            raise ConfigError(
                f"configuration names {shown(seen[key])} and {shown(name)} differ only in case; "
                "they would share one folder on case-insensitive file systems"
            )
