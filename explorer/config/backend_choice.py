"""Which backend Keras imports with, chosen from the command line or the environment before
Keras is first imported (it reads `KERAS_BACKEND` once).
"""

from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

from explorer.config.defaults import BACKENDS, DEFAULT_BACKEND


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


def resume_folder_in(argv: Sequence[str]) -> str | None:
    """The folder of `--resume RUN` (or `--resume=RUN`) in `argv`, if any."""
    for index, argument in enumerate(argv):
        if argument == "--resume" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--resume="):
            return argument.split("=", 1)[1]
    return None


def choose_backend(argv: Sequence[str], environ: MutableMapping[str, str], recorded: str | None = None) -> str:
    """Set, in `environ`, what Keras and its backends read when first imported: the backend
    (`backend_from_argv`; JAX unless told otherwise, see `config.defaults.DEFAULT_BACKEND`; a
    resumed run's own, `recorded`, unless `--backend` is given), TensorFlow's log level and JAX's
    compile cache. Returns the backend Keras will import. Idempotent: call it before Keras is
    imported."""
    named = any(argument == "--backend" or argument.startswith("--backend=") for argument in argv)
    if not named and recorded in BACKENDS:
        environ["KERAS_BACKEND"] = recorded
    elif named or environ.get("KERAS_BACKEND") is None:
        environ["KERAS_BACKEND"] = backend_from_argv(argv, environ)
    # else the user's KERAS_BACKEND stands, supported or not: the command line refuses a wrong one.
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's runtime warnings, once imported
    # JAX keeps compiled programs on disk, keyed by the program: repeats, same-shape models and the
    # next run skip compiling. JAX_COMPILATION_CACHE_DIR moves it; an empty value turns it off.
    cache_home = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_home / "mnist-dense-explorer" / "jax"))
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    return environ["KERAS_BACKEND"]
