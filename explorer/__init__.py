"""The engine behind `model_builder_seq.py` and `model_builder_loop.py`, in packages named after
its stages. From the top down; a stage imports only the stages below it (`make lint` checks it):

    api        `common.sweep`: networks and settings as Python values -> the sweep's outcome
    cli        argparse -> the same validated `Options` (nothing below sees argparse)
    engine/    the sweep: plan the groups, fuse them, train (the one training function, on the
               local or the Ray executor), record each trial; then the views
    views/     pure figures, tables, the report and TensorBoard; `summarize` is the one writer of a
               run's views, for one run or several compared
    store/     the run folder: where runs may go, atomic files and the lock, every file's shape
               (`schema`), the owners of a trial's files and a group's checkpoint, the resume plan
    analysis/  statistics: summaries over repeats, paired comparisons, Pareto front, factors
    data/      MNIST from IDX, npz, Keras or the embedded sample; split, flattened, one-hot; a
               digit of your own made as MNIST's were (`prepare_digit`)
    models/    Keras and its backend, variants (a name and a builder), the dense builder, trials,
               and every use of a Keras internal (`keras_compat`)
    config/    every default and limit (`defaults`), options, model configurations, grids
    errors     one-line errors and exit codes

The views sit above the store because they are rebuilt from the run folder; the engine above the
views because recording a model draws its curves. Trials (a variant with a seed) live in `models/`,
below the store, because the run folder is laid out by trial.

`cli`, `config/`, `analysis/`, `errors` and `store.folders` import no Keras, JAX or TensorFlow
(`make lint` checks it too): the command line and the configurations are checked before Keras is
imported, which takes seconds.
"""

import importlib
from collections.abc import Callable, Mapping


def imported_on_first_use(names: Mapping[str, str], module: str) -> Callable[[str], object]:
    """A module's `__getattr__` (PEP 562) that imports each of `names` (name -> its module) when it
    is first asked for, so that Keras loads only when a name that needs it is used."""

    def __getattr__(name: str) -> object:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


# What a notebook or a script in any folder needs: `from explorer import sweep`.
PUBLIC = {
    "sweep": "explorer.api",
    "Variant": "explorer.models.variants",
    "read_history": "explorer.store.schema",
    "prepare_digit": "explorer.data.own_digit",
    "plot_history": "explorer.views.figures",
    "INPUT_DIM": "explorer.config.defaults",
    "NUM_CLASSES": "explorer.config.defaults",
}
__getattr__ = imported_on_first_use(PUBLIC, __name__)
__all__ = list(PUBLIC)
