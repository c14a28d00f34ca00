"""Errors the user can fix, and the exit codes the scripts return.

Every bad input (a configuration, a builder, a data file, a command-line value) raises a
`UserInputError` whose message is one line naming the bad value and what is allowed. The scripts
print it and exit with code 2, never with a traceback.
"""

import os
import sys
import tempfile
import traceback

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
    """Write `error` as one line to `stream` (stderr by default) and return exit code 2. When it
    was caused by an error of the user's own code (a builder, a layer), that error's full traceback
    is kept in a file in the system's temporary folder, which the line names."""
    message = " ".join(str(error).split())  # one line, whatever the message held
    cause = error.__cause__
    if cause is not None and not isinstance(cause, UserInputError):
        with tempfile.NamedTemporaryFile(
            "w", prefix="mnist-explorer-traceback-", suffix=".txt", delete=False, encoding="utf-8"
        ) as kept:
            kept.write("".join(traceback.format_exception(cause)))
        message += f" (full traceback: {kept.name})"
    print(f"error: {message}", file=stream or sys.stderr)
    return EXIT_BAD_INPUT


class RunFolderWriteError(UserInputError):
    """A file of the run folder could not be written (a full disk, a folder made read-only): the run
    stops at the first such failure, so nothing is written half-way, and says what it could not write."""

    def __init__(self, path: object, error: OSError):
        # h5py puts HDF5's whole error stack in strerror; the system's words for errno say it all.
        reason = os.strerror(error.errno) if error.errno else " ".join(str(error).split())[:80]
        super().__init__(
            f"cannot write {path} ({reason}); the run stopped here, and every model finished before it is "
            "intact: make room (or make the folder writable), then continue it with --resume"
        )


class DamagedFileError(UserInputError):
    """A file in a run folder that cannot be read as what it should be (truncated, edited, binary)."""


MAX_SHOWN = 80  # characters of a bad value an error message repeats


def shown(value: object) -> str:
    """`repr(value)` for an error message, cut to `MAX_SHOWN` characters: a 10 MB list is named, not
    echoed."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text):,} characters)"


def failure_reason(error: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"
