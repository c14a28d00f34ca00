# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Width, depth and activation of a dense network on MNIST
#
# This notebook asks three questions of a dense (fully connected) Keras network on MNIST: how many
# hidden units does one layer need, does a second layer help, and does the hidden activation
# matter? It trains a small grid of networks with `sweep`, the function the two scripts train
# through, and reads the answers from its leaderboard and figures.
#
# The budget is small on purpose: `quick=True` trains on 2,000 digits for one epoch, so the whole
# notebook runs in about a minute on a laptop CPU. Take `quick=True` out (and give `data=` the
# folder of the official MNIST files, or let Keras download them) for figures worth quoting.

# %%
# %matplotlib inline
import os
from pathlib import Path

if Path.cwd().name == "notebooks":
    os.chdir("..")  # the project folder: the runs go into its runs/, beside the scripts' runs

from explorer import INPUT_DIM, NUM_CLASSES, sweep

# %% [markdown]
# ## One grid: width by depth by activation
#
# A configuration is plain data: `hidden_units` lists the widths of the hidden layers, and
# `activation` names their activation. A `grid` table lists values to try; the sweep trains their
# product, each network named after what varies (`g-h128x128-tanh`). The first configuration,
# one layer of 32 ReLU units, is the reference every other is compared with.

# %%
configs = {
    "grid": {
        "g": {
            "hidden_units": [[32], [128], [512], [128, 128]],
            "activation": ["relu", "tanh"],
        }
    }
}
result = sweep(configs, quick=True, log=lambda line: None)  # into the project's runs/<timestamp>
result.exit_code, result.run_dir

# %% [markdown]
# ## The leaderboard
#
# One row per network, best first by mean test accuracy. `vs_reference` and `vs_best` are paired
# verdicts: *better* or *worse* when the test shows it (Holm-corrected over all comparisons), else
# *not detected*. With several runs the test is a two-way t-test over seeds; with one run, as
# here, it is McNemar's test on the test digits, which compares two trained models rather than two
# configurations. With one run of one epoch on 2,000 digits, expect few verdicts: that is the
# statistics being honest about a small budget.

# %%
leaderboard = result.leaderboard
leaderboard[["test_accuracy", "vs_reference", "vs_best", "parameters", "flops_per_epoch"]]

# %% [markdown]
# What the sweep found, in sentences (the end of the terminal output and the top of the report):

# %%
print("\n\n".join(result.findings))

# %% [markdown]
# ## Width, depth and activation, one factor at a time
#
# Each panel holds the configurations that differ from the reference in one field only, with the
# cost (FLOPs per epoch) on a second axis: accuracy bought per unit of compute.

# %%
result.figures["factors"]

# %% [markdown]
# ## Accuracy per digit
#
# Which digits each network gets right: the same networks, digit by digit.

# %%
result.figures["per_class"]

# %% [markdown]
# ## What the best network's first layer learned
#
# Each image is one hidden unit's 784 weights laid out as the 28 x 28 digit it reads: red pixels
# raise the unit, blue ones lower it. After one quick epoch they are still mostly noise; after a
# full run on MNIST they show strokes.

# %%
result.figures["first_layer"]

# %% [markdown]
# ## Your own network, in Keras
#
# `sweep` also takes builders: functions that return a compiled Keras model with 784
# inputs and 10 outputs. The engine seeds before it calls each one and adds the accuracy metric.

# %%
import keras
from keras import layers


def wide_with_dropout():
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


own = sweep({"wide_with_dropout": wide_with_dropout}, quick=True, log=lambda line: None)
own.leaderboard[["test_accuracy", "parameters"]]
