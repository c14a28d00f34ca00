"""A digit of your own made into what a trained network was fed: MNIST's 28x28 grey levels.

`mnist_digit` is the report's drawing panel in Python (`views/report_files/drawing.js` does the same
in the page, and the tests hold the two to each other): the ink's bounding box scaled into 20x20,
centred by its mass in 28x28, as MNIST's digits were made. `prepare_digit` puts a scanned or
photographed digit (any size, dark on light or light on dark) through a threshold first, so that the
paper is no ink, and returns the 784 features a network takes.
"""

import math

import numpy as np

from explorer.config.defaults import DIGIT_BOX, IMAGE_SHAPE


def _round_half_up(value: float) -> int:
    """Rounding as the page's `Math.floor(value + 0.5)` does (Python's round() rounds half to even)."""
    return math.floor(value + 0.5)


def _to_a_millionth(value: float) -> float:
    """A centre of mass to a millionth of a pixel: a centre exactly between two pixels (any
    symmetric stroke) then rounds the same way here and in the page, whatever its sums' last bits."""
    return math.floor(value * 1e6 + 0.5) / 1e6


def _area_weights(source: int, target: int) -> np.ndarray:
    """(target, source) weights that average each target pixel's share of the source pixels: the
    overlap of [i, i+1) scaled into the source with each source pixel, so each row sums to 1."""
    scale = source / target
    weights = np.zeros((target, source))
    for index in range(target):
        low, high = index * scale, (index + 1) * scale
        for pixel in range(math.floor(low), min(math.ceil(high), source)):
            weights[index, pixel] = max(0.0, min(high, pixel + 1) - max(low, pixel)) / scale
    return weights


def mnist_digit(stroke_image: np.ndarray) -> np.ndarray:
    """A drawn digit made into a 28x28 MNIST digit, as the report's page makes it.

    The bounding box of the ink (pixels above 0) is scaled by area averaging, keeping its aspect
    ratio, so that its longer side is 20 pixels, then placed in 28x28 so that its centre of mass
    (in pixel indices) falls on the pixel nearest (14, 14); ink shifted past the edge is lost.

    Args:
        stroke_image: (height, width) ink in [0, 1], 0 where nothing is drawn.

    Returns:
        (28, 28) float64 grey levels in [0, 1]; all 0 when nothing is drawn.
    """
    image = np.clip(np.asarray(stroke_image, dtype=np.float64), 0.0, 1.0)
    digit = np.zeros(IMAGE_SHAPE)
    rows, columns = np.nonzero(image > 0)
    if rows.size == 0:
        return digit
    box = image[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    longer = max(box.shape)
    height, width = (max(1, _round_half_up(side * DIGIT_BOX / longer)) for side in box.shape)
    small = _area_weights(box.shape[0], height) @ box @ _area_weights(box.shape[1], width).T
    mass = small.sum()
    centre_row = (small.sum(axis=1) @ np.arange(height)) / mass
    centre_column = (small.sum(axis=0) @ np.arange(width)) / mass
    top = _round_half_up(IMAGE_SHAPE[0] / 2 - _to_a_millionth(centre_row))
    left = _round_half_up(IMAGE_SHAPE[1] / 2 - _to_a_millionth(centre_column))
    for row in range(height):
        if 0 <= top + row < IMAGE_SHAPE[0]:
            for column in range(width):
                if 0 <= left + column < IMAGE_SHAPE[1]:
                    digit[top + row, left + column] = small[row, column]
    return np.clip(digit, 0.0, 1.0)


def ink_threshold(grey: np.ndarray) -> float:
    """Otsu's threshold of grey levels in [0, 1]: the level that splits them into two classes
    (paper and ink) with the largest variance between the classes, over 256 bins."""
    counts, edges = np.histogram(grey, bins=256, range=(0.0, 1.0))
    levels = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts)
    above = below[-1] - below
    mass_below = np.cumsum(counts * levels)
    mean_below = np.divide(mass_below, below, out=np.zeros_like(levels), where=below > 0)
    mean_above = np.divide(mass_below[-1] - mass_below, above, out=np.zeros_like(levels), where=above > 0)
    between = below * above * (mean_below - mean_above) ** 2
    return float(edges[1:][np.argmax(between)])


def prepare_digit(image: np.ndarray) -> np.ndarray:
    """One image of a digit (2-D grey levels, 0-255 or 0-1, any size, either polarity) as the (1, 784)
    features a network of this project takes: made light on dark (the polarity of most of its
    pixels is the paper's), the paper set to 0 by `ink_threshold` and the ink stretched to 0-1, then
    `mnist_digit` (20x20 box, centred by mass), flattened row by row as the training digits were.

    Raises:
        ValueError: for an image that is not 2-D.
    """
    grey = np.asarray(image, dtype=np.float64)
    if grey.ndim != 2:
        raise ValueError(f"a digit is one grey image (height, width), not an array of shape {grey.shape}")
    grey = grey / 255.0 if grey.max(initial=0.0) > 1.0 else grey
    if np.median(grey) > 0.5:  # dark ink on light paper: MNIST's digits are light on dark
        grey = 1.0 - grey
    threshold = ink_threshold(grey)
    ink = np.clip((grey - threshold) / max(grey.max() - threshold, 1e-12), 0.0, 1.0)
    return mnist_digit(ink).reshape(1, -1).astype(np.float32)
