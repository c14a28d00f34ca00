"""
Title: Dense networks on MNIST, one variant at a time
Description: Each dense-network variant written out in Keras, trained, evaluated and compared.

What it trains: thirteen dense (fully connected) networks on 28x28 MNIST digits flattened to 784
inputs, each built and compiled below in plain Keras, in its own block with the question it
answers: hidden width, hidden activation, depth, output activation, no hidden layer at all, and a
wide network with dropout. Each is fitted on the training split, watched on a held-out validation
split, evaluated once on the test set, and plotted; then all of them are compared.

How to run it:

    python model_builder_seq.py                                 # every network, 3 runs each
    python model_builder_seq.py --quick                         # a smoke run in seconds
    python model_builder_seq.py --data path/to/mnist            # MNIST IDX files, or mnist.npz
    python model_builder_seq.py --resume runs/20261125-101500   # continue an interrupted run

Every output lands in the run folder (`--out`, default `runs/<timestamp>`): per model
`history.csv`, `curves.png`, `model.keras`, `result.json`; for the sweep `summary.csv`,
`summary.json`, `comparison.png`, `confusion_matrix.png`, `misclassified.png` and `report.html`.

`model_builder_loop.py` builds the same networks from a dict of configurations, and adds `--only`
and `--config`.
"""

"""
## Setup
"""

import sys
from pathlib import Path

import common  # first: it picks the Keras backend (--backend, else KERAS_BACKEND, else JAX)


def parse_args(argv=None):
    options, _ = common.parse_command_line(common.make_parser(Path(__file__).name, __doc__), argv)
    return options


if __name__ == "__main__":
    try:  # once, before Keras, which takes seconds to import: --help, a typo or a wrong folder answer at once
        COMMAND_LINE = parse_args()
    except common.UserInputError as error:
        sys.exit(common.report_error(error))

# isort: split
import keras  # after common, so that Keras is imported with the chosen backend
from keras import layers

"""
## Hyperparameters

Every network below trains for the same number of epochs with the same batch size, so they differ
only in what each block changes. The input and output sizes come from the data: 28 x 28 pixels
flattened to 784 inputs, and one output per digit.
"""

EPOCHS = 20  # enough for every network here to level off on the validation split
BATCH_SIZE = 128  # the classic Keras MNIST batch; small enough for many steps per epoch
LEARNING_RATE = 1e-3  # Adam's default, a safe start for every network below
REFERENCE = "dense_128_relu"  # every network is compared with this one, pair by pair (--reference)
INPUT_DIM = common.INPUT_DIM  # 784
NUM_CLASSES = common.NUM_CLASSES  # 10

"""
## The networks

Each function builds one network and compiles it with its optimizer and loss, and returns it.
Its name names the model, its folder and its line in every table; `NETWORKS`, after the last one,
lists them in order. Accuracy is added by the engine when it trains: the arg-max of the ten outputs
against the digit, the same for every loss.
"""

"""
### Width: how many hidden units does one layer need?

One hidden ReLU layer of 32 to 512 units. Parameters grow linearly with width
(784*w + w + w*10 + 10); accuracy does not, and the curves show where it stops paying.
"""


def dense_32_relu():
    # 25,450 parameters: the narrowest layer here.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(32, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


def dense_64_relu():
    # 50,890 parameters.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(64, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


def dense_128_relu():
    # 101,770 parameters: the reference network every other group varies from.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(128, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


def dense_256_relu():
    # 203,530 parameters.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(256, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


def dense_512_relu():
    # 407,050 parameters.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(512, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


"""
### Hidden activation: does the nonlinearity matter at 128 units?

Same 101,770 parameters as the reference; only the hidden activation changes.
"""


def dense_128_sigmoid():
    # The classic squashing function: it saturates, so it learns more slowly with Adam at 0.001.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(128, activation="sigmoid"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


def dense_128_tanh():
    # Zero-centred squashing.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(128, activation="tanh"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


def dense_128_gelu():
    # A smooth ReLU, as used in transformers.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(128, activation="gelu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


"""
### Depth: one hidden layer against two and three

Each extra 128-unit layer adds 16,512 parameters to the reference network.
"""


def dense_128x2_relu():
    # 118,282 parameters.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(128, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


def dense_128x3_relu():
    # 134,794 parameters.
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(128, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


"""
### Output activation: softmax against one-vs-rest sigmoids

The reference network with ten independent sigmoid outputs, trained with binary cross-entropy.
Accuracy still takes the arg-max of the ten outputs.
"""


def dense_128_relu_sigmoid_out():
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(128, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="binary_crossentropy")
    return model


"""
### No hidden layer: softmax regression

7,850 parameters: the linear baseline every hidden layer has to beat.
"""


def softmax_regression():
    model = keras.Sequential([keras.Input(shape=(INPUT_DIM,)), layers.Dense(NUM_CLASSES, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


"""
### Wide and regularized: two 512-unit layers with dropout

669,706 parameters, with 20% dropout after each hidden layer to keep them from memorizing the
training set; the shape of Keras' classic `mnist_mlp.py`.
"""


def dense_512x2_relu_dropout():
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy")
    return model


"""
## The list of networks

Every function above, in the order of the tables; add yours here. Each becomes a `Variant`: a name,
its builder, and the epochs and batch size it trains with.
"""

NETWORKS = [
    dense_32_relu,
    dense_64_relu,
    dense_128_relu,
    dense_256_relu,
    dense_512_relu,
    dense_128_sigmoid,
    dense_128_tanh,
    dense_128_gelu,
    dense_128x2_relu,
    dense_128x3_relu,
    dense_128_relu_sigmoid_out,
    softmax_regression,
    dense_512x2_relu_dropout,
]
VARIANTS = [common.Variant(build.__name__, build, epochs=EPOCHS, batch_size=BATCH_SIZE) for build in NETWORKS]


"""
## Train, evaluate and compare

The networks above are only built here; fitting, evaluation and the plots are shared with the loop
script, in `common.sweep`, because they hold what every run needs and a learner should not
have to copy: it checks every builder before anything trains, seeds before each build (so a
network starts from the same weights in either script), fits on the training split with a
validation split held out and a checkpoint every epoch (`--resume` continues a killed run), trains
networks that share epochs, batch size and optimizer together as branches of one model (`--no-fuse`
trains them one by one; the numbers are the same), repeats each with several seeds (`--repeats`),
evaluates once on the test set, and writes the curves, the comparison and `report.html`.
`--executor ray` runs the same on a Ray cluster.
"""


def main(argv=None, options=None) -> int:
    """Train and compare every variant; `options` is the command line already parsed (else `argv`'s)."""
    try:
        options = options or parse_args(argv)
        return common.sweep(VARIANTS, options, reference=REFERENCE).exit_code
    except common.UserInputError as error:
        return common.report_error(error)


if __name__ == "__main__":
    sys.exit(main(options=COMMAND_LINE))
