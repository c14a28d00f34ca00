"""The explorer from Python: one call that takes networks and settings as values, not a command line.

    import common

    result = common.sweep({"narrow": {"hidden_units": [32]}, "wide": {"hidden_units": [512]}},
                          epochs=3, repeats=1)
    result.leaderboard            # a pandas DataFrame, best first
    result.figures["comparison"]  # a Matplotlib Figure: shown inline in Jupyter
    result.run_dir                # every file of the run, as the scripts write it

Both scripts train through this function too, with the `Options` their command line gives.
"""

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping

from explorer.cli import check_places
from explorer.config.defaults import DEFAULT_MAX_TRIALS
from explorer.config.grids import expand_grids
from explorer.config.models import validate_configs
from explorer.config.options import Options, make_options
from explorer.config.search_space import SEARCH_TABLE, split_search
from explorer.engine.search import SearchRequest
from explorer.engine.sweep import run_sweep
from explorer.errors import ConfigError
from explorer.models.dense import dense_network
from explorer.models.variants import Variant
from explorer.views.compare_runs import compare_runs
from explorer.views.summarize import SweepOutcome


def variants_of(networks: object, seed: int = 0, max_trials: int = DEFAULT_MAX_TRIALS) -> list[Variant]:
    """The variants to train, from any of: a dict of configurations (name -> fields, `grid` tables
    included), a dict of builders (name -> function returning a compiled model), or a list of
    `Variant`s.

    Raises:
        ConfigError: for a bad configuration or grid, or anything else.
    """
    if isinstance(networks, Mapping) and all(isinstance(value, Mapping) for value in networks.values()):
        configs = validate_configs(expand_grids(networks, seed=seed, max_trials=max_trials))
        return [
            Variant(
                config.name,
                functools.partial(dense_network, config),
                config.epochs,
                config.batch_size,
                early_stopping=config.early_stopping,
                takes_training_steps=config.has_schedule,
            )
            for config in configs
        ]
    if isinstance(networks, Mapping) and all(callable(value) for value in networks.values()):
        return [Variant(name, build) for name, build in networks.items()]
    if isinstance(networks, Iterable) and not isinstance(networks, (str, bytes, Mapping)):
        variants = list(networks)
        if variants and all(isinstance(variant, Variant) for variant in variants):
            return variants
    raise ConfigError(
        "networks: expected a dict of configurations (name -> fields), a dict of builders (name -> "
        f"function) or a list of Variants, got {type(networks).__name__}"
    )


def sweep(
    networks: object,
    options: Options | None = None,
    *,
    reference: str | None = None,
    log: Callable[[str], None] = print,
    search_request: SearchRequest | None = None,
    **settings: object,
) -> SweepOutcome:
    """Train, evaluate and compare `networks`, as the scripts do, and return the outcome.

    Args:
        networks: configurations, builders or variants (see `variants_of`).
        options: the command line's options (the scripts pass theirs); None builds them from
            `settings`, with the checks the command line's values meet (`make_options`).
        reference: the configuration every other is compared with (default: the first); from
            Python a name that is not in the sweep is refused, as --reference is.
        log: where progress lines go.
        search_request: a space and the loop that turns its candidates into variants (the loop
            script's); from Python, a `search` table in a dict of configurations is enough
            (`{"search": {"mine": {"width": {"low": 32, "high": 512}}}}` with `search=True`).
        settings: any command-line option by its Python name (`options.SETTINGS`):
            data="path/to/mnist", out="runs/mine", epochs=5, batch_size=64, repeats=1, seed=7,
            quick=True, fuse=False, plan=True, compare=["runs/a", "runs/b"], ...

    Returns:
        `exit_code`, `run_dir`, `leaderboard` (a pandas DataFrame) and `figures` (name -> Figure).

    Raises:
        UserInputError: for any bad input, before anything trains.
    """
    if options is None:
        options = make_options(settings)  # the command line's checks, with Python's names
        check_places(options)
        # From Python, `reference` is the caller's choice, checked as --reference is; a script's
        # (with its options) is its declared default, used only when the sweep holds it.
        options = dataclasses.replace(options, reference=reference) if reference is not None else options
    elif settings:
        raise ConfigError(f"give either options or settings, not both (got {', '.join(settings)})")
    if options.compare:  # finished runs, side by side: nothing to train
        return compare_runs(options.compare, options, log)
    if isinstance(networks, Mapping) and SEARCH_TABLE in networks and search_request is None:
        networks, space = split_search(networks)
        search_request = SearchRequest(space, functools.partial(variants_of, seed=options.seed))
    variants = variants_of(networks, options.seed) if networks or search_request is None else []
    return run_sweep(variants, options, log=log, reference=reference, search=search_request)
