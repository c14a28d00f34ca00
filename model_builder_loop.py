"""
Title: Dense networks on MNIST, many at once
Description: Train a sweep of dense (fully connected) networks on MNIST from one dict of
configurations, then compare them side by side.

What it trains: every entry of the dict of configurations in this script (or of a TOML file given
with `--config`), each a 784-input network of hidden Dense layers and a Dense(10) output, built by
one dense builder in a loop. Each model is fitted on the training split, watched on a held-out
validation split, and evaluated once on the test set; then all of them are compared.

How to run it:

    python model_builder_loop.py                                # the default sweep, 3 runs each
    python model_builder_loop.py --quick                        # a smoke run in seconds
    python model_builder_loop.py --data path/to/mnist           # MNIST IDX files, or mnist.npz
    python model_builder_loop.py --only dense_128_relu dense_512_relu --epochs 5
    python model_builder_loop.py --config my_sweep.toml         # your own configurations
    python model_builder_loop.py --grid "hidden_units=[32],[128]" activation=relu,tanh --plan
    python model_builder_loop.py --compare runs/A runs/B        # finished runs side by side
    python model_builder_loop.py --resume runs/20261125-101500  # continue an interrupted run
    python model_builder_loop.py --executor ray                 # as Ray Tune trials
    python model_builder_loop.py --config sweeps/search.toml --search --budget 20m

Models that share seed, epochs, batch size and optimizer train together as branches of one model
(the same numbers, faster); `--no-fuse` trains them one by one.

Every output lands in the run folder (`--out`, default `runs/<timestamp>`): per model
`history.csv`, `curves.png`, `model.keras`, `result.json`; for the sweep `summary.csv`,
`summary.json`, `comparison.png`, `confusion_matrix.png`, `misclassified.png` and `report.html`.

The same networks, each written out in Keras, are in `model_builder_seq.py`.
"""

"""
## Setup
"""

import functools
import sys
from pathlib import Path

import common  # first: it picks the Keras backend (--backend, else KERAS_BACKEND, else JAX)

"""
## The configurations

One entry per network: name -> fields. Unset fields take `common.ModelConfig`'s defaults:
`activation="relu"`, `dropout=0.0`, `output_activation="softmax"` (with the loss that suits it),
`optimizer="adam"`, `learning_rate=1e-3`, `epochs=20`, `batch_size=128`. Each group answers one
question; the 128-unit ReLU network is the reference point every group varies from.
"""

REFERENCE = "dense_128_relu"  # every network is compared with this one, pair by pair (--reference)
CONFIGS = {
    # Width: how many hidden units does one layer need?
    "dense_32_relu": {"hidden_units": [32]},
    "dense_64_relu": {"hidden_units": [64]},
    "dense_128_relu": {"hidden_units": [128]},
    "dense_256_relu": {"hidden_units": [256]},
    "dense_512_relu": {"hidden_units": [512]},
    # Hidden activation: does the nonlinearity matter at 128 units?
    "dense_128_sigmoid": {"hidden_units": [128], "activation": "sigmoid"},
    "dense_128_tanh": {"hidden_units": [128], "activation": "tanh"},
    "dense_128_gelu": {"hidden_units": [128], "activation": "gelu"},
    # Depth: one hidden layer against two and three of the same width.
    "dense_128x2_relu": {"hidden_units": [128, 128]},
    "dense_128x3_relu": {"hidden_units": [128, 128, 128]},
    # Output activation: softmax against ten one-vs-rest sigmoids (binary cross-entropy).
    "dense_128_relu_sigmoid_out": {"hidden_units": [128], "output_activation": "sigmoid"},
    # No hidden layer at all: softmax regression, the linear baseline.
    "softmax_regression": {"hidden_units": []},
    # Wide and regularized: two 512-unit layers with dropout, as in Keras' classic mnist_mlp.
    "dense_512x2_relu_dropout": {"hidden_units": [512, 512], "dropout": 0.2},
}

"""
## Command line
"""


def parse_args(argv=None):
    parser = common.make_parser(Path(__file__).name, __doc__)
    networks = parser.add_argument_group("which networks")
    networks.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help=f"train only these configurations (default: all {len(CONFIGS)}): {', '.join(CONFIGS)}",
    )
    networks.add_argument(
        "--grid",
        nargs="+",
        metavar="FIELD=V1,V2",
        help="train the product of these values instead of the default configurations (or as well as "
        'those of --config), e.g. --grid "hidden_units=[32],[128]" activation=relu,tanh',
    )
    networks.add_argument(
        "--sample",
        type=int,
        metavar="N",
        default=None,
        help="train a random N of the grids' configurations, chosen with --seed (default: all)",
    )
    networks.add_argument(
        "--max-trials",
        type=int,
        metavar="N",
        default=common.DEFAULT_MAX_TRIALS,
        help=f"refuse a sweep of more configurations than this (default: {common.DEFAULT_MAX_TRIALS})",
    )
    networks.add_argument(
        "--config",
        metavar="FILE.toml",
        default=None,
        help="train the configurations of a TOML file instead, one [name] table per network with "
        "any of the fields hidden_units, activation, dropout, output_activation, loss, optimizer, "
        "learning_rate, epochs, batch_size, and augment, batch_norm, label_smoothing, lr_schedule, "
        "weight_decay, max_norm, early_stopping (see docs/sweeps.md)",
    )
    common.add_search_options(parser)  # --search, --trials, --budget, --verify
    return common.parse_command_line(parser, argv)


"""
## One builder per configuration

Every configuration is checked first (a typo fails here, in one line, before anything trains).
Then the loop gives each one a builder: `common.dense_network` builds and compiles, in Keras, the
network its configuration describes (784 inputs, its hidden Dense layers with their activation and
dropout, a Dense(10) output), exactly as `model_builder_seq.py` writes each one out.
"""


def variants_from(configs):
    variants = []
    for config in common.validate_configs(configs):
        # A builder takes no arguments and returns the compiled network: the dense builder, bound
        # to this configuration.
        build = functools.partial(common.dense_network, config)
        variants.append(
            common.Variant(
                config.name,
                build,
                epochs=config.epochs,
                batch_size=config.batch_size,
                # Early stopping watches the training, and a schedule lasts as long as the training
                # does: the engine adds the callback, and gives the builder its steps.
                early_stopping=config.early_stopping,
                takes_training_steps=config.has_schedule,
            )
        )
    return variants


"""
## Train, evaluate and compare

`common.sweep` seeds before each build, fits every network on the training split with a
validation split held out and a checkpoint every epoch, evaluates it once on the test set, and
writes the curves, the comparison and `report.html`; see `model_builder_seq.py` for why this part
is shared.
"""


def main(argv=None) -> int:
    try:
        options, script_options = parse_args(argv)
        configs = common.load_toml_configs(script_options["config"]) if script_options["config"] else CONFIGS
        if script_options["grid"]:  # replaces the default configurations, adds to a file's
            configs = common.with_command_line_grid(configs if script_options["config"] else {}, script_options["grid"])
        # A [search.NAME] table is a space to search (--search), not a network: the engine asks
        # this script's loop for the variants of the candidates it wants to train.
        configs, space = common.split_search(configs)
        configs = common.expand_grids(
            configs, sample=script_options["sample"], max_trials=script_options["max_trials"], seed=options.seed
        )
        configs = common.select_configs(configs, script_options["only"])
        variants = variants_from(configs) if configs else []
        search = common.SearchRequest(space, variants_from) if space else None
        return common.sweep(variants, options, reference=REFERENCE, search_request=search).exit_code
    except common.UserInputError as error:
        return common.report_error(error)


if __name__ == "__main__":
    sys.exit(main())
