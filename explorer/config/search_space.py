"""A search space as plain data: a `[search.NAME]` table whose lists are choices and whose
`{low, high}` tables are intervals, validated before anything trains.

    [search.dense]
    width = {low = 32, high = 1024, log = true}   # hidden_units = [width] * depth
    depth = [1, 2, 3]
    activation = ["relu", "gelu", "tanh"]
    dropout = {low = 0.0, high = 0.5}
    learning_rate = {low = 1e-4, high = 1e-2, log = true}
    batch_size = [64, 128, 256]
    epochs = 12                                   # one number: every candidate trains as long

Any configuration field may be searched (`CONFIG_FIELDS`), plus `width` and `depth`, which stand
for `hidden_units` (give one or the other). A field given once is fixed. `hidden_units` lists its
choices as a list of lists, as a grid does. Every choice, and each end of every interval, is
checked as a configuration field is (`validate_config`), and the largest network at the largest
batch against the machine's memory. No Keras, no Optuna here: `engine.search` turns a space into
Optuna's distributions.
"""

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping

from explorer.config.checks import check_name, is_int, is_number
from explorer.config.defaults import MAX_LAYERS, MAX_UNITS
from explorer.config.models import CONFIG_FIELDS, closest, validate_config
from explorer.errors import ConfigError, shown

SEARCH_TABLE = "search"


# Width and depth stand for hidden_units: [width] * depth.
SHAPE_FIELDS = ("width", "depth")
SEARCHABLE = tuple(field for field in CONFIG_FIELDS if field != "early_stopping") + SHAPE_FIELDS


# The fields a fused batch shares (`models.trials.fusion_key`): the optimizer's configuration and
# the batch size. A batch samples them once and varies the rest, candidate by candidate.
BATCH_FIELDS = ("optimizer", "learning_rate", "lr_schedule", "weight_decay", "batch_size")


# Fields an interval may give, and whether their values are whole numbers.
INTERVAL_FIELDS = {
    "learning_rate": False,
    "dropout": False,
    "label_smoothing": False,
    "weight_decay": False,
    "max_norm": False,
    "width": True,
    "depth": True,
    "batch_size": True,
}


@dataclasses.dataclass(frozen=True)
class Interval:
    """Numbers from `low` to `high`, on a log scale when `log`, whole when `integer`."""

    low: float
    high: float
    log: bool = False
    integer: bool = False
    step: float | None = None


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of `values` (each a configuration field's value, a list or a table included)."""

    values: tuple

    def labels(self) -> tuple:
        """The values as Optuna stores them: a number, text or bool as it is, anything else (a list
        of widths, an augmentation table) as its JSON text."""
        return tuple(
            value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)
            for value in self.values
        )


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A validated `[search.NAME]` table: the fixed fields, and the searched ones (batch fields first)."""

    name: str
    fixed: Mapping[str, object]
    searched: Mapping[str, Interval | Choice]

    @property
    def fingerprint(self) -> str:
        """The space's identity: a study resumes only with the space it was started with."""
        text = json.dumps({"fixed": self.fixed, "searched": {k: repr(v) for k, v in self.searched.items()}},
                          sort_keys=True, default=str)  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def fields(self, picked: Mapping[str, object]) -> dict[str, object]:
        """A configuration's fields: the fixed ones with the `picked` values, width and depth
        turned into hidden_units."""
        fields = {**self.fixed, **picked}
        if "width" in fields or "depth" in fields:
            width, depth = fields.pop("width", 128), fields.pop("depth", 1)
            fields["hidden_units"] = [width] * depth
        return fields


def _interval(where: str, field: str, table: Mapping) -> Interval:
    unknown = sorted(set(table) - {"low", "high", "log", "step"})
    if unknown:
        raise ConfigError(
            f"{where}: {field} has unknown key {shown(unknown[0])}; an interval takes low, high, log, step"
        )
    if field not in INTERVAL_FIELDS:
        raise ConfigError(
            f"{where}: {field} = {shown(dict(table))}: only {', '.join(INTERVAL_FIELDS)} take an interval; "
            f"give {field} as a list of choices"
        )
    integer = INTERVAL_FIELDS[field]
    low, high, log, step = table.get("low"), table.get("high"), table.get("log", False), table.get("step")
    kind = "whole numbers" if integer else "numbers"
    if not all((is_int if integer else is_number)(value) for value in (low, high)) or not low < high:
        raise ConfigError(f"{where}: {field} = {shown(dict(table))}: low and high must be {kind}, low below high")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: {field}: log = {shown(log)} is not allowed; expected true or false")
    if log and low <= 0:
        raise ConfigError(f"{where}: {field}: a log scale needs low above 0, got low = {low}")
    if step is not None and (log or not is_number(step) or step <= 0 or (integer and not is_int(step))):
        raise ConfigError(f"{where}: {field}: step = {shown(step)} is not allowed; expected a positive "
                          f"{'whole ' if integer else ''}number, and no step with log = true")  # fmt: skip
    return Interval(float(low) if not integer else low, float(high) if not integer else high, log, integer, step)


def _searched(where: str, field: str, value: object) -> Interval | Choice | None:
    """The field's interval or choices, or None when the value is fixed."""
    if field not in SEARCHABLE:
        if field == "early_stopping":
            raise ConfigError(f"{where}: early_stopping is not searched: the search stops poor candidates itself")
        raise ConfigError(
            f"{where}: unknown field {shown(field)}{closest(field, SEARCHABLE)}; allowed fields: {', '.join(SEARCHABLE)}"
        )
    if isinstance(value, Mapping) and field != "augment":
        return _interval(where, field, value)
    if field == "epochs" and isinstance(value, list):
        raise ConfigError(f"{where}: epochs = {shown(value)}: every candidate trains for the same epochs (poor ones "
                          "stop sooner); give one number")  # fmt: skip
    if not isinstance(value, list):
        return None
    if not value:
        raise ConfigError(f"{where}: {field} = [] lists no choices; give at least one")
    if field == "hidden_units" and not all(isinstance(units, list) for units in value):
        raise ConfigError(f"{where}: hidden_units = {shown(value)}: in a search it lists the choices, each a list "
                          "of widths, such as [[64], [128, 128]] (or search width and depth)")  # fmt: skip
    labels = Choice(tuple(value)).labels()
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}: {field} = {shown(value)} lists a choice twice")
    return Choice(tuple(value))


def _ends(searched: Interval | Choice) -> tuple:
    return (searched.low, searched.high) if isinstance(searched, Interval) else searched.values


def _check_values(name: str, space: SearchSpace) -> None:
    """Every choice and interval end checked as a configuration's field, beside the fixed fields
    and the first value of the others; then the largest network at the largest batch."""
    probe = {field: _ends(searched)[0] for field, searched in space.searched.items()}
    try:
        for field, searched in space.searched.items():
            for value in _ends(searched):
                validate_config(name, space.fields({**probe, field: value}))
        largest = {field: max(_ends(searched)) for field, searched in space.searched.items()
                   if field in ("width", "depth", "batch_size")}  # fmt: skip
        validate_config(name, space.fields({**probe, **largest}))
        validate_config(name, space.fields(probe))
    except ConfigError as error:
        raise ConfigError(str(error).replace(f"config {name!r}", f"search {name!r}", 1)) from None


def parse_search_space(name: str, table: object) -> SearchSpace:
    """The space of one `[search.NAME]` table.

    Raises:
        ConfigError: one line naming the search, the field, the value and what is allowed.
    """
    check_name(name)
    where = f"search {name!r}"
    if not isinstance(table, Mapping) or not table:
        raise ConfigError(
            f"{where}: expected a table of fields, some of them lists of choices or {{low, high}} intervals"
        )
    if "hidden_units" in table and set(SHAPE_FIELDS) & set(table):
        raise ConfigError(f"{where}: give hidden_units, or width and depth, not both")
    for field, high in (("width", MAX_UNITS), ("depth", MAX_LAYERS)):
        value = table.get(field)
        if value is not None and not isinstance(value, (list, Mapping)) and not (is_int(value) and 0 <= value <= high):
            raise ConfigError(
                f"{where}: {field} = {shown(value)} is not allowed; expected a whole number up to {high:,}"
            )
    searched = {field: _searched(where, field, value) for field, value in table.items()}
    order = sorted(searched, key=lambda field: field not in BATCH_FIELDS)  # batch fields first, stable
    space = SearchSpace(
        name,
        {field: value for field, value in table.items() if searched[field] is None},
        {field: searched[field] for field in order if searched[field] is not None},
    )
    if not space.searched:
        raise ConfigError(f"{where}: nothing to search; give some field a list of choices or a {{low, high}} interval")
    _check_values(name, space)
    return space


def split_search(configs: Mapping[str, object]) -> tuple[dict[str, object], SearchSpace | None]:
    """The plain configurations and the search space of a sweep's tables (at most one search).

    Raises:
        ConfigError: for a bad space, or more than one.
    """
    plain = {name: fields for name, fields in configs.items() if name != SEARCH_TABLE}
    tables = configs.get(SEARCH_TABLE)
    if tables is None:
        return plain, None
    if not isinstance(tables, Mapping) or len(tables) != 1:
        count = len(tables) if isinstance(tables, Mapping) else 0
        raise ConfigError(f"[{SEARCH_TABLE}] must hold one [{SEARCH_TABLE}.NAME] table, got {count}: "
                          "a run searches one space")  # fmt: skip
    [(name, table)] = tables.items()
    return plain, parse_search_space(name, table)


def parse_duration(text: object) -> float:
    """Seconds from "20m", "1h30m", "90s", "45" (seconds) or a number.

    Raises:
        ValueError: naming the text and what is allowed.
    """
    if is_number(text) and math.isfinite(text) and text > 0:
        return float(text)
    units, seconds, number = {"h": 3600, "m": 60, "s": 1}, 0.0, ""
    cleaned = str(text).strip().lower().replace(" ", "")
    for character in cleaned:
        if character.isdigit() or character == ".":
            number += character
        elif character in units and number and number.count(".") <= 1:
            seconds, number = seconds + float(number) * units[character], ""
        else:
            number = "bad"
            break
    if number:
        seconds = seconds + float(number) if number.replace(".", "", 1).isdigit() else -1
    if not cleaned or seconds <= 0:
        raise ValueError(f"{shown(text)} is not a duration; expected such as 20m, 1h30m, 90s or 600 (seconds)")
    return seconds
