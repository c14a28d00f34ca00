"""Figures that look inside the digits: what a first layer learned (and how), and where two networks
differ.

Pure functions like `views`: arrays in, a `matplotlib.figure.Figure` out; `first_layer_kernel` reads
the arrays of a saved model.
"""

import math
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from explorer.config.defaults import NUM_CLASSES
from explorer.models.backend import keras
from explorer.models.variants import first_dense_layer

IMAGE_SIDE = 28  # MNIST digits are 28 x 28 pixels: a first-layer unit has one weight per pixel


def image_grid(figure, rows: int, columns: int, height: float, title_lines: int = 1) -> list:
    """A `rows` x `columns` grid of image axes (frames off) in `figure` (or a subfigure) `height`
    inches high, placed by fixed margins: room on top for the suptitle and above each image for its title
    of `title_lines` small lines. Constrained layout would solve the grid again at every save, about
    0.4 s for 64 images, for a result these margins give at once."""
    top_room, title_room = 0.4, 0.2 * title_lines  # inches: the suptitle's line, an image's title
    cell = (height - top_room - 0.05) / rows  # an image and the title above it
    axes = figure.subplots(
        rows, columns, squeeze=False,
        gridspec_kw={"left": 0.01, "right": 0.99, "bottom": 0.05 / height,
                     "top": 1 - (top_room + title_room) / height,
                     "wspace": 0.1, "hspace": title_room / max(cell - title_room, 0.1)},
    ).ravel()  # fmt: skip
    for ax in axes:
        ax.axis("off")
    return list(axes)


COLUMNS = 8


def plot_first_layer(kernel: np.ndarray, title: str = "", limit: int = 64) -> Figure:
    """The first Dense layer's weights, one 28 x 28 image per unit (up to `limit` units).

    Red pixels raise the unit's input, blue ones lower it; each image has its own colour scale,
    centred on zero. A layer of `NUM_CLASSES` units that is also the output (a network with no
    hidden layer) is its ten class templates: each panel is titled with its digit.

    Args:
        kernel: the layer's kernel, shape (784, units).
        title: the figure's title; it should say whether these are hidden units or class templates.
    """
    units = kernel.shape[1]
    shown = min(units, limit)
    columns = min(COLUMNS if units != NUM_CLASSES else 5, shown)
    rows = math.ceil(shown / columns)
    size = (columns * 1.25, rows * 1.35 + 0.6)
    figure = Figure(figsize=size)
    axes = image_grid(figure, rows, columns, size[1])
    for unit, ax in enumerate(axes[:shown]):
        weights = kernel[:, unit].reshape(IMAGE_SIDE, IMAGE_SIDE)
        scale = float(np.abs(weights).max()) or 1.0
        ax.imshow(weights, cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set_title(f"digit {unit}" if units == NUM_CLASSES else f"unit {unit}", fontsize="small")
    figure.suptitle(title if shown == units else f"{title} (the first {shown} of {units} units)")
    return figure


def plot_first_layer_progress(epochs: Mapping[int, np.ndarray], title: str) -> Figure:
    """A first layer's units after a few epochs: a row per epoch, a column per unit (`epochs`: the
    1-based epoch -> its kernel's units, 784 x a few), each image on its own colour scale centred on
    zero, as in `plot_first_layer`: noise at the first epoch turning into strokes."""
    shown = sorted(epochs)
    units = epochs[shown[0]].shape[1]
    size = (units * 0.55 + 0.6, len(shown) * 0.65 + 0.6)  # 80 small images: a page-wide strip
    figure = Figure(figsize=size)
    axes = image_grid(figure, len(shown), units, size[1])
    for row, epoch in enumerate(shown):
        for unit in range(units):
            ax = axes[row * units + unit]
            weights = np.asarray(epochs[epoch][:, unit], dtype=np.float32).reshape(IMAGE_SIDE, IMAGE_SIDE)
            scale = float(np.abs(weights).max()) or 1.0
            ax.imshow(weights, cmap="RdBu_r", vmin=-scale, vmax=scale)
            if unit == 0:
                ax.set_title(f"epoch {epoch}", fontsize="small", loc="left")
    figure.suptitle(title)
    return figure


def _spread(indices: np.ndarray, limit: int) -> np.ndarray:
    """Up to `limit` of `indices`, evenly spread, so one class early in the test set does not fill
    the page."""
    if len(indices) == 0:
        return indices
    return indices[np.unique(np.linspace(0, len(indices) - 1, min(limit, len(indices))).astype(int))]


def plot_discordant(
    images: np.ndarray,
    labels: np.ndarray,
    predicted: dict[str, np.ndarray],
    title: str = "",
    limit: int = 20,
) -> Figure:
    """What changed, digit by digit, between two networks: the test digits the first gets right
    and the second wrong, then the reverse (the discordant pairs McNemar's test counts), each
    group with its count and up to `limit` of its digits.

    Args:
        images: the test digits, (N, 28, 28).
        labels: their true labels, (N,).
        predicted: two names -> each network's predicted label per test digit, (N,).
    """
    (first, first_predicted), (second, second_predicted) = predicted.items()
    first_right, second_right = first_predicted == labels, second_predicted == labels
    panel_width, panel_height, heading_height = 10 * 1.2, 2 * 1.45 + 0.5, 0.35
    figure = Figure(figsize=(panel_width, 2 * panel_height + heading_height))
    heading, *panels = figure.subfigures(3, 1, height_ratios=[heading_height, panel_height, panel_height])
    ways = [
        (first, second, second_predicted, first_right & ~second_right),
        (second, first, first_predicted, second_right & ~first_right),
    ]
    for panel, (right, wrong, wrong_predicted, discordant) in zip(panels, ways, strict=True):
        picks, count = _spread(np.flatnonzero(discordant), limit), int(discordant.sum())
        axes = image_grid(panel, 2, 10, panel_height, title_lines=2)
        for ax, index in zip(axes, picks, strict=False):
            ax.imshow(images[index], cmap="gray_r")
            ax.set_title(f"true {labels[index]}\nsaid {wrong_predicted[index]}", fontsize="small")
        if len(picks) == 0:
            axes[0].text(0.5, 0.5, "none", ha="center", va="center")
        panel.suptitle(
            f"{right} right, {wrong} wrong: {count:,} digit{'' if count == 1 else 's'} ({len(picks)} shown; "
            f"under each, the true digit and what {wrong} said)",
            fontsize="medium",
        )
    heading.suptitle(title, y=0.6)
    return figure


def first_layer_kernel(model_path: Path) -> tuple[np.ndarray, bool] | None:
    """The kernel of a saved model's first Dense layer, when that layer reads the 784 pixels, and
    whether it is also the output layer (a network with no hidden layer); None for other models."""
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile):
        return None  # a model Keras cannot reload (custom layers, a damaged file) has no such figure
    found = first_dense_layer(model)
    return None if found is None else (keras.ops.convert_to_numpy(found[0].kernel), found[1])
