"""What both training scripts share: the Keras backend, MNIST loaded and flattened, a history plotted.

`model_builder_seq.py` writes every network out in Keras; `model_builder_loop.py` builds them from
a dict of configurations. Both import this module, and through it the engine (the `explorer`
package beside it, one module per stage) that fits, evaluates, compares and records them.

Used on its own, in a notebook or a script of yours:

    import common
    import keras

    (x_train, y_train), (x_test, y_test) = common.load_flat_mnist()   # (60000, 784) floats in [0, 1]
    model = keras.Sequential([keras.Input(shape=(common.INPUT_DIM,)),
                              keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(common.NUM_CLASSES, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=2, validation_split=0.1)
    common.plot_history(history.history).savefig("curves.png")
"""

import os
import sys
from collections.abc import Callable

import numpy as np

"""
## The backend

Keras 3 runs the same model code on JAX or TensorFlow and reads `KERAS_BACKEND` once, when it is
first imported, so the choice (`--backend`, else `KERAS_BACKEND`, else JAX) is made here, before
any `import keras`. JAX is the default: it trains these dense networks faster than TensorFlow on a
CPU (docs/performance.md has the figures).

Keras itself (with JAX or TensorFlow) takes seconds to import, so this module does not import it:
the names below that need it (`keras`, `sweep`, `Variant`, ...) import it when first used.
The command line and the configurations are checked before that, so `--help` and a mistyped
option answer at once.
"""

from explorer.config.backend_choice import choose_backend, resume_folder_in  # noqa: E402
from explorer.config.defaults import BACKENDS, DEFAULT_BACKEND, DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS  # noqa: E402
from explorer.store.folders import recorded_backend  # noqa: E402

# A resumed run (--resume RUN) continues on the backend it was trained on, unless --backend says otherwise.
choose_backend(sys.argv[1:], os.environ, recorded=recorded_backend(resume_folder_in(sys.argv[1:])))

"""
## MNIST, loaded and flattened

`load_mnist` takes the official IDX files or an mnist.npz from `--data`, else Keras' own download
(`keras.datasets.mnist.load_data()`), else a real 5,000-digit sample shipped with a dependency,
and says which. A dense network sees each 28x28 digit as 784 numbers in [0, 1], and its label as
ten numbers with a 1 at the digit (one-hot), which suits softmax, sigmoid and linear outputs alike.
"""

from explorer.config.defaults import INPUT_DIM, NUM_CLASSES  # noqa: E402
from explorer.data.prepare import prepare_data, to_features, to_one_hot  # noqa: E402


def load_flat_mnist(
    path: str | None = None, log: Callable[[str], None] = print
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST ready for a dense network, as `keras.datasets.mnist.load_data()` pairs.

    Args:
        path: a folder of the four official IDX files or an mnist.npz (default: $MNIST_DATA, else
            Keras' cache or download, else the embedded sample).
        log: receives one line naming the source.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 pixels of shape (N, 784) in [0, 1] and
        float32 one-hot labels of shape (N, 10).
    """
    from explorer.data.mnist import load_mnist  # Keras' loader is one of its sources

    (train_images, train_labels), (test_images, test_labels), _ = load_mnist(path, log=log)
    return (
        (to_features(train_images), to_one_hot(train_labels)),
        (to_features(test_images), to_one_hot(test_labels)),
    )


"""
## What the scripts hand to the engine

A variant is a name and a *builder*: a function that returns a compiled Keras model. The engine
seeds before calling it, fits it with its callbacks, evaluates it, and records and compares it
(`sweep`, which also takes a dict of configurations or of builders, and settings as keywords, for
a notebook: `common.sweep(configs, epochs=3, repeats=1).leaderboard`). The loop script's configurations become builders through the one dense builder.
`plot_history` draws accuracy and loss per epoch, training against validation, from Keras'
`History.history` (or from a model's `history.csv`, read with `read_history`), and returns the
Matplotlib figure: save it, or show it in a notebook.
"""

from explorer import imported_on_first_use  # noqa: E402
from explorer.cli import add_search_options, make_parser, parse_command_line  # noqa: E402
from explorer.config.defaults import DEFAULT_MAX_TRIALS  # noqa: E402
from explorer.config.grids import expand_grids, with_command_line_grid  # noqa: E402
from explorer.config.models import ModelConfig, load_toml_configs, select_configs, validate_configs  # noqa: E402
from explorer.config.search_space import split_search  # noqa: E402
from explorer.errors import UserInputError, report_error  # noqa: E402

# These need Keras (or, for the figures, Matplotlib): each is imported from its module when first used.
NEEDS_KERAS = {
    "keras": "explorer.models.backend",
    "load_mnist": "explorer.data.mnist",
    "Variant": "explorer.models.variants",
    "dense_network": "explorer.models.dense",
    "run_sweep": "explorer.engine.sweep",
    "sweep": "explorer.api",
    "SearchRequest": "explorer.engine.search",
    "read_history": "explorer.store.schema",
    "plot_history": "explorer.views.figures",
}


__getattr__ = imported_on_first_use(NEEDS_KERAS, __name__)  # `common.keras`, `common.sweep`, ...

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "DEFAULT_MAX_TRIALS",
    "INPUT_DIM",
    "NUM_CLASSES",
    "ModelConfig",
    "expand_grids",
    "with_command_line_grid",
    "UserInputError",
    "add_search_options",
    "load_flat_mnist",
    "load_toml_configs",
    "make_parser",
    "parse_command_line",
    "prepare_data",
    "report_error",
    "select_configs",
    "split_search",
    "validate_configs",
    *NEEDS_KERAS,
]
