"""Checks of plain values (names, counts, numbers), without Keras: each returns the value or
raises a one-line `ConfigError` naming it and what is allowed.
"""

import re
from collections.abc import Sequence

from explorer.errors import ConfigError, shown

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
