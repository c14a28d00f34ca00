"""What both training scripts share: the Keras backend, MNIST loaded and flattened, a history plotted.

`model_builder_seq.py` writes every network out in Keras; `model_builder_loop.py` builds them from
a dict of configurations. Both import this module, and through it the engine (the `explorer`
package beside it, one module per stage) that fits, evaluates, compares and records them.

Used on its own, in a notebook or a script of yours:

    import common
    from common import keras

    (x_train, y_train), (x_test, y_test) = common.load_flat_mnist()   # (60000, 784) floats in [0, 1]
    model = keras.Sequential([keras.Input(shape=(common.INPUT_DIM,)),
                              keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(common.NUM_CLASSES, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=2, validation_split=0.1)
    common.plot_history(history.history).savefig("curves.png")
"""

from collections.abc import Callable

import numpy as np

"""
## The backend

Keras 3 runs the same model code on JAX or TensorFlow and reads `KERAS_BACKEND` once, when it is
first imported, so the choice (`--backend`, else `KERAS_BACKEND`, else JAX) is made before the
import of Keras below. JAX is the default: on this project's 2-core machines it trained these dense
networks 2.5-5x faster than TensorFlow.
"""

from explorer.backend import BACKENDS, DEFAULT_BACKEND, keras  # noqa: E402  (first: picks the backend)

"""
## MNIST, loaded and flattened

`load_mnist` takes the official IDX files or an mnist.npz from `--data`, else Keras' own download
(`keras.datasets.mnist.load_data()`), else a real 5,000-digit sample shipped with a dependency,
and says which. A dense network sees each 28x28 digit as 784 numbers in [0, 1], and its label as
ten numbers with a 1 at the digit (one-hot), which suits softmax, sigmoid and linear outputs alike.
"""

from explorer.data import load_mnist  # noqa: E402
from explorer.splits import INPUT_DIM, NUM_CLASSES, prepare_data, to_features, to_one_hot  # noqa: E402


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
    (train_images, train_labels), (test_images, test_labels), _ = load_mnist(path, log=log)
    return (
        (to_features(train_images), to_one_hot(train_labels)),
        (to_features(test_images), to_one_hot(test_labels)),
    )


"""
## A history, plotted

`plot_history` draws accuracy and loss per epoch, training against validation, from Keras'
`History.history` (or from a model's `history.csv`, read with `read_history`), and returns the
Matplotlib figure: save it, or show it in a notebook.
"""

from explorer.run_folder import read_history  # noqa: E402
from explorer.views import plot_history  # noqa: E402

"""
## What the scripts hand to the engine

A variant is a name and a *builder*: a function that returns a compiled Keras model. The engine
seeds before calling it, fits it with its callbacks, evaluates it, and records and compares it
(`run_sweep`). The loop script's configurations become builders through the one dense builder.
"""

from explorer.cli import make_parser, parse_command_line  # noqa: E402
from explorer.configs import (  # noqa: E402
    ModelConfig,
    dense_network,
    load_toml_configs,
    select_configs,
    validate_configs,
)
from explorer.errors import UserInputError, report_error  # noqa: E402
from explorer.sweep import run_sweep  # noqa: E402
from explorer.variants import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, Variant, VariantList  # noqa: E402

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "INPUT_DIM",
    "NUM_CLASSES",
    "ModelConfig",
    "UserInputError",
    "Variant",
    "VariantList",
    "dense_network",
    "keras",
    "load_flat_mnist",
    "load_mnist",
    "load_toml_configs",
    "make_parser",
    "parse_command_line",
    "plot_history",
    "prepare_data",
    "read_history",
    "report_error",
    "run_sweep",
    "select_configs",
    "validate_configs",
]
