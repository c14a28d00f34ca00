"""What augmentation costs: one epoch of 784-1024-1024-10 without it, with Keras' preprocessing
layers, and with the project's `RandomAffine`, side by side in one run.

Keras' way is what a learner writes first: `Reshape((28, 28, 1))`, `RandomRotation`, `RandomZoom`,
`RandomTranslation`, `Flatten()` in front of the Dense layers, each active only in training. Ours
is one `RandomAffine` layer with the same amounts (`augment = "standard"`: 10 degrees, 2 pixels,
10%), which resamples the batch with one batched matrix product. The three train the same network
on the same digits with the same Adam, batch 128; the table gives the median seconds of the epochs
after the first (which compiles) and each one's ratio to the plain network.

    python benchmarks/augment.py --data path/to/mnist             # full MNIST, about 4 min on 2 cores
    python benchmarks/augment.py --epochs 2 --train-digits 6000   # a quick look (synthetic digits without --data)
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "benchmarks")]

from speed import load_data  # noqa: E402  (real MNIST, or MNIST-shaped synthetic digits)

import common  # noqa: E402  (it picks the Keras backend before Keras is imported)
from explorer.config.defaults import AUGMENT_PRESETS  # noqa: E402
from explorer.models.augment import RandomAffine  # noqa: E402

keras = common.keras
AMOUNTS = AUGMENT_PRESETS["standard"]


def keras_layers():
    """Keras' own preprocessing layers, as a learner writes them (fractions of a turn and of the size)."""
    return [
        keras.layers.Reshape((28, 28, 1)),
        keras.layers.RandomRotation(AMOUNTS["rotation"] / 360, fill_mode="constant"),
        keras.layers.RandomZoom(AMOUNTS["zoom"], fill_mode="constant"),
        keras.layers.RandomTranslation(AMOUNTS["shift"] / 28, AMOUNTS["shift"] / 28, fill_mode="constant"),
        keras.layers.Flatten(),
    ]


PATHS = {
    "no augmentation": list,
    "Keras' RandomRotation, RandomZoom, RandomTranslation": keras_layers,
    "RandomAffine (this project)": lambda: [RandomAffine(**AMOUNTS)],
}


def epoch_seconds(front, x_train, y_train, epochs: int) -> list[float]:
    keras.utils.set_random_seed(1)
    layers = [keras.Input((784,)), *front, keras.layers.Dense(1024, activation="relu"),
              keras.layers.Dense(1024, activation="relu"), keras.layers.Dense(10, activation="softmax")]  # fmt: skip
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.Adam(), "categorical_crossentropy", steps_per_execution=16)
    seconds, started = [], [0.0]
    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.__setitem__(0, time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.append(time.perf_counter() - started[0]),
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=128, verbose=0, callbacks=[clock])
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="a folder of the four MNIST IDX files (default: synthetic)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per path; the first compiles (default: 3)")
    parser.add_argument("--train-digits", type=int, default=None, help="train on the first N digits only")
    args = parser.parse_args(argv)
    data = load_data(args.data)
    x_train, y_train = data.x_train[: args.train_digits], data.y_train[: args.train_digits]
    print(f"784-1024-1024-10, batch 128, {len(x_train):,} training digits, backend "
          f"{keras.backend.backend()}, {os.cpu_count()} CPUs; median of epochs 2..{args.epochs}")  # fmt: skip
    plain = None
    for name, front in PATHS.items():
        seconds = epoch_seconds(front(), x_train, y_train, args.epochs)
        steady = statistics.median(seconds[1:] or seconds)
        plain = plain or steady
        print(f"  {name:<55} {steady:7.2f} s/epoch  x{steady / plain:5.2f}  (first epoch {seconds[0]:.1f} s)")


if __name__ == "__main__":
    main()
