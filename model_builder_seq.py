"""
Title: Dense networks on MNIST, one variant at a time
Description: Define each dense-network variant in its own block, train them in order, compare.

What it trains: thirteen 784-input dense networks, each written out below with the question it
answers: hidden width, hidden activation, depth, output activation, no hidden layer at all, and a
wide network with dropout. Every block is plain data, built by the one builder in `common.py`,
fitted on the training split, watched on a held-out validation split, evaluated once on the test
set, and plotted.

How to run it:

    python model_builder_seq.py --data ../shared/data/mnist     # the full set
    python model_builder_seq.py                                 # Keras' MNIST, else the embedded sample
    python model_builder_seq.py --quick                         # a smoke run in seconds
    python model_builder_seq.py --resume runs/20261125-101500   # continue an interrupted run

Every output lands in the run folder (`--out`, default `runs/<timestamp>`): per model
`history.csv`, `curves.png`, `model.keras`, `result.json`; for the sweep `summary.csv`,
`summary.json`, `comparison.png`, `confusion_matrix.png` and `misclassified.png`.

`model_builder_loop.py` holds the same variants as one dict, and adds `--only` and `--config`.
"""

"""
## Setup
"""

import sys
from pathlib import Path

import common  # imports Keras on the backend --backend or KERAS_BACKEND names (JAX by default)

"""
## The variants

Each block adds one network to `VARIANTS`, in training order. Fields left out take the defaults of
`common.ModelConfig`: ReLU hidden layers, no dropout, a softmax output with categorical
cross-entropy, Adam at learning rate 0.001, 20 epochs, batches of 128.
"""

VARIANTS = {}

"""
### Width: how many hidden units does one layer need?

One hidden ReLU layer of 32 to 512 units. Parameters grow linearly with width
(784*w + w + w*10 + 10); accuracy does not, and the curves show where it stops paying.
"""

# 25,450 parameters: the narrowest layer here.
VARIANTS["dense_32_relu"] = {"hidden_units": [32], "activation": "relu"}

# 50,890 parameters.
VARIANTS["dense_64_relu"] = {"hidden_units": [64], "activation": "relu"}

# 101,770 parameters: the reference network every other group varies from.
VARIANTS["dense_128_relu"] = {"hidden_units": [128], "activation": "relu"}

# 203,530 parameters.
VARIANTS["dense_256_relu"] = {"hidden_units": [256], "activation": "relu"}

# 407,050 parameters.
VARIANTS["dense_512_relu"] = {"hidden_units": [512], "activation": "relu"}

"""
### Hidden activation: does the nonlinearity matter at 128 units?

Same 101,770 parameters as the reference; only the hidden activation changes.
"""

# The classic squashing function: saturates, so it learns more slowly with Adam at 0.001.
VARIANTS["dense_128_sigmoid"] = {"hidden_units": [128], "activation": "sigmoid"}

# Zero-centred squashing.
VARIANTS["dense_128_tanh"] = {"hidden_units": [128], "activation": "tanh"}

# A smooth ReLU, as used in transformers.
VARIANTS["dense_128_gelu"] = {"hidden_units": [128], "activation": "gelu"}

"""
### Depth: one hidden layer against two and three

Each extra 128-unit layer adds 16,512 parameters to the reference network.
"""

# 118,282 parameters.
VARIANTS["dense_128x2_relu"] = {"hidden_units": [128, 128], "activation": "relu"}

# 134,794 parameters.
VARIANTS["dense_128x3_relu"] = {"hidden_units": [128, 128, 128], "activation": "relu"}

"""
### Output activation: softmax against one-vs-rest sigmoids

The reference network with ten independent sigmoid outputs, trained with binary cross-entropy.
Accuracy still takes the arg-max of the ten outputs.
"""

VARIANTS["dense_128_relu_sigmoid_out"] = {"hidden_units": [128], "activation": "relu", "output_activation": "sigmoid"}

"""
### No hidden layer: softmax regression

7,850 parameters: the linear baseline every hidden layer has to beat.
"""

VARIANTS["softmax_regression"] = {"hidden_units": []}

"""
### Wide and regularized: two 512-unit layers with dropout

669,706 parameters, with 20% dropout after each hidden layer to keep them from memorizing the
training set; the shape of Keras' classic `mnist_mlp.py`.
"""

VARIANTS["dense_512x2_relu_dropout"] = {"hidden_units": [512, 512], "activation": "relu", "dropout": 0.2}

"""
## Command line
"""


def parse_args(argv=None):
    parser = common.make_parser(Path(__file__).name, description=__doc__.split("How to run it:")[0].strip())
    return common.parse_command_line(parser, argv)


"""
## Train, evaluate and compare

`common.run_sweep` validates every variant above before the first one trains, then runs each
block in order through the one train-and-evaluate function (build, compile, fit, evaluate, plot),
and closes with the comparison.
"""


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return common.run_sweep(VARIANTS, args)
    except common.UserInputError as error:
        return common.report_error(error)


if __name__ == "__main__":
    sys.exit(main())
