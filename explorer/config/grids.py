"""Sweeps in one line: grids of configurations, expanded to their cartesian product.

In a TOML file, a `[grid.NAME]` table beside the ordinary one-network tables: each field given as a
list lists the values to try, a field given once is fixed for the whole grid.

    [grid.width_by_depth]
    hidden_units = [[64], [128], [256], [128, 128]]
    activation = ["relu", "tanh"]
    epochs = 10

On the loop script's command line, the same without a file: `--grid "hidden_units=[64],[128]"
"activation=relu,tanh"` (a grid named `grid`). Every configuration of the product is named after
its grid and the values that vary (`width_by_depth-h128x128-tanh`), and is validated like any other
before anything trains. `--sample N` keeps a seeded random N of the product; a sweep above
`--max-trials` configurations is refused. No Keras here: a grid's mistakes answer at once.
"""

import itertools
import math
import random
import tomllib
from collections.abc import Mapping, Sequence

from explorer.config.checks import check_name
from explorer.config.defaults import DEFAULT_MAX_TRIALS
from explorer.config.models import CONFIG_FIELDS, closest
from explorer.errors import ConfigError, shown

GRID_TABLE = "grid"


COMMAND_LINE_GRID = "grid"  # the name of the grid given with --grid


# How each field reads in an expanded configuration's name: hidden units 128x128 -> "h128x128".
NAME_PARTS = {
    "hidden_units": lambda units: "h" + ("x".join(map(str, units)) or "0"),
    "activation": lambda value: "-".join(value) if isinstance(value, list) else str(value),
    "dropout": lambda value: f"d{value:g}",
    "output_activation": lambda value: f"out_{value}",
    "loss": lambda value: f"loss_{value}",
    "optimizer": str,
    "learning_rate": lambda value: f"lr{value:g}",
    "epochs": lambda value: f"e{value}",
    "batch_size": lambda value: f"b{value}",
    "augment": lambda value: (
        f"aug_{value}"
        if isinstance(value, str)
        else "aug_" + "_".join(f"{key}{amount:g}" for key, amount in value.items())
    ),
    "batch_norm": lambda value: "bn" if value else "no_bn",
    "label_smoothing": lambda value: f"ls{value:g}",
    "lr_schedule": lambda value: f"lr_{value}",
    "weight_decay": lambda value: f"wd{value:g}",
    "max_norm": lambda value: f"maxnorm{value:g}",
    "early_stopping": lambda value: f"es{value}",
}


def _grid_values(where: str, field: str, value: object) -> list:
    """The values a grid tries for `field`: a list is the values, anything else is one value."""
    if field not in CONFIG_FIELDS:
        raise ConfigError(
            f"{where}: unknown field {shown(field)}{closest(field, CONFIG_FIELDS)}; allowed fields: {', '.join(CONFIG_FIELDS)}"
        )
    if not isinstance(value, list):
        return [value]
    if not value:
        raise ConfigError(f"{where}: {field} = [] lists no values to try; give at least one")
    if field == "hidden_units" and not all(isinstance(units, list) for units in value):
        raise ConfigError(
            f"{where}: hidden_units = {shown(value)}: in a grid it lists the networks to try, each a list "
            "of widths, such as [[64], [128, 128]] ([[]] for no hidden layer)"
        )
    return value


def _name_part(field: str, value: object) -> str:
    try:
        return NAME_PARTS[field](value)
    except (TypeError, ValueError):  # a value of the wrong type: validation names it later
        return str(value)


def grid_size(where: str, fields: Mapping[str, object]) -> int:
    """How many configurations the grid's product holds."""
    return math.prod(len(_grid_values(where, field, value)) for field, value in fields.items())


def expand_grid(
    name: str, fields: Mapping[str, object], picks: Sequence[int] | None = None
) -> dict[str, dict[str, object]]:
    """The configurations of one grid, name -> fields, in product order (or only the `picks`-th
    of the product, in that order, without building the rest).

    Raises:
        ConfigError: for an unknown field, an empty list, hidden_units not given as a list of
            lists, or two configurations that would share a name.
    """
    where = f"grid {name!r}"
    if not isinstance(fields, Mapping) or not fields:
        raise ConfigError(f"{where}: expected a table of fields, some of them lists of values to try")
    values = {field: _grid_values(where, field, value) for field, value in fields.items()}
    varying = [field for field, choices in values.items() if len(choices) > 1]
    combinations = (
        itertools.product(*values.values())
        if picks is None
        else (_combination(list(values.values()), index) for index in picks)
    )
    expanded: dict[str, dict[str, object]] = {}
    for combination in combinations:
        chosen = dict(zip(values, combination, strict=True))
        config_name = "-".join([name, *(_name_part(field, chosen[field]) for field in varying)])
        if config_name in expanded:
            raise ConfigError(
                f"{where}: two configurations would both be named {config_name!r}; make the values differ"
            )
        expanded[check_name(config_name)] = chosen
    return expanded


def _combination(choices: Sequence[Sequence[object]], index: int) -> tuple:
    """The `index`-th combination of `itertools.product(*choices)`, computed, not enumerated."""
    picked = []
    for options in reversed(choices):
        index, position = divmod(index, len(options))
        picked.append(options[position])
    return tuple(reversed(picked))


def expand_grids(
    configs: Mapping[str, object], *, sample: int | None = None, max_trials: int = DEFAULT_MAX_TRIALS, seed: int = 0
) -> dict[str, dict[str, object]]:
    """Plain configurations (name -> fields) with every `[grid.NAME]` table expanded.

    Args:
        configs: name -> fields, with grids under the key "grid" (name -> fields with lists).
        sample: train only this many of the grids' configurations, chosen at random with `seed`
            (the plain tables are kept whole).
        max_trials: refuse more configurations than this (a typo can ask for millions).

    Raises:
        ConfigError: for a bad grid (`expand_grid`), a `sample` below 1 or above the product, a
            sweep over `max_trials`, or a grid configuration named like a plain one.
    """
    plain = {name: fields for name, fields in configs.items() if name != GRID_TABLE}
    grids = configs.get(GRID_TABLE, {})
    if not isinstance(grids, Mapping):
        raise ConfigError(f"[{GRID_TABLE}] must hold one [{GRID_TABLE}.NAME] table per grid, got {shown(grids)}")
    sizes = {name: grid_size(f"grid {name!r}", fields) for name, fields in grids.items()}
    total = sum(sizes.values())
    if sample is not None and not grids:
        raise ConfigError(f"--sample {sample} needs a grid to sample from ([grid.NAME] in --config, or --grid)")
    if sample is not None and not 1 <= sample <= total:
        raise ConfigError(f"--sample {sample}: expected a number from 1 to {total:,}, the size of the grids' product")
    chosen = sorted(random.Random(seed).sample(range(total), sample)) if sample is not None else None
    expanded: dict[str, dict[str, object]] = {}
    start = 0
    for name, fields in grids.items():
        picks = None if chosen is None else [index - start for index in chosen if start <= index < start + sizes[name]]
        start += sizes[name]
        if picks is None or picks:
            expanded.update(expand_grid(name, fields, picks))
    count = len(plain) + len(expanded)
    if count > max_trials:
        raise ConfigError(
            f"the sweep has {count:,} configurations, over the limit of {max_trials:,}; "
            "train a random few with --sample N, or raise the limit with --max-trials"
        )
    for name in expanded:
        if name in plain:
            raise ConfigError(f"grid configuration {name!r} has the name of a configuration table; rename one")
    return {**plain, **expanded}


def with_command_line_grid(configs: Mapping[str, object], terms: Sequence[str]) -> dict[str, object]:
    """`configs` with the grid of the `--grid` terms added (as grid "grid")."""
    grids = {**configs.get(GRID_TABLE, {}), COMMAND_LINE_GRID: parse_grid_terms(terms)}
    return {**configs, GRID_TABLE: grids}


def parse_grid_terms(terms: Sequence[str]) -> dict[str, object]:
    """`--grid` terms, `key=v1,v2,...`, as one grid's fields. Each value is read as TOML (numbers,
    [lists], "strings") and, failing that, as a bare string: `activation=relu,tanh`.

    Raises:
        ConfigError: for a term without `=`, an empty value list, or a field given twice.
    """
    fields: dict[str, object] = {}
    for term in terms:
        key, separator, text = term.partition("=")
        key = key.strip()
        if not separator or not key:
            raise ConfigError(f"--grid {shown(term)}: expected FIELD=VALUE,VALUE,... such as activation=relu,tanh")
        if key in fields:
            raise ConfigError(f"--grid: field {key!r} is given twice; list all its values in one term")
        values = [_toml_value(part) for part in _top_level_parts(text)]
        if not values:
            raise ConfigError(f"--grid {shown(term)}: no values after '='")
        fields[key] = values  # a list: the values to try, even when there is one
    return fields


def _top_level_parts(text: str) -> list[str]:
    """`text` split at the commas outside brackets: "[64],[128, 128]" -> ["[64]", "[128, 128]"]."""
    parts, depth, current = [], 0, ""
    for character in text:
        depth += {"[": 1, "]": -1}.get(character, 0)
        if character == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += character
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def _toml_value(text: str) -> object:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word such as relu
