"""Augmentation inside the model: random rotations, zooms and shifts of the digits while training.

`RandomAffine` moves each digit of a training batch by its own random rotation, zoom and shift,
in one bilinear resampling inside the compiled training step; at inference (evaluation,
prediction, the report's drawing panel) it passes the pixels through unchanged.

Why not Keras' RandomRotation, RandomZoom and RandomTranslation after a Reshape: on a CPU with
JAX they resample through `map_coordinates`, one gather per pixel and transform, which made an
epoch of 784-1024-1024-10 take 48.5 s against 3.2 s without them (docs/performance.md). Bilinear
resampling of a 28x28 image is separable once the source coordinates are known: each output
pixel takes a weighted sum over source rows of a weighted sum over source columns, so the batch
is resampled with one batched matrix product of (784 x 28) by (28 x 28) per digit.
"""

import math

from explorer.config.defaults import IMAGE_SHAPE
from explorer.models.backend import keras

ops = keras.ops


def _tent(coordinates, size: int):
    """Bilinear weights of each source index 0..size-1 for fractional `coordinates` (..., n):
    max(0, 1 - |coordinate - index|), shape (..., n, size). Outside the image every weight is 0,
    so what moves in from beyond the border is black, as MNIST's background is."""
    indices = ops.arange(size, dtype="float32")
    return ops.relu(1.0 - ops.abs(ops.expand_dims(coordinates, -1) - indices))


def affine_resample(pixels, angle, scale, shift_rows, shift_columns):
    """Flat 28x28 digits (batch, 784) rotated by `angle` (radians), zoomed by `scale` and shifted
    by whole or fractional pixels about the image's centre, each digit by its own values
    (each argument shape (batch,)), with bilinear interpolation."""
    rows, columns = IMAGE_SHAPE
    centre_row, centre_column = (rows - 1) / 2, (columns - 1) / 2
    grid_rows, grid_columns = ops.meshgrid(ops.arange(rows, dtype="float32"), ops.arange(columns, dtype="float32"),
                                           indexing="ij")  # fmt: skip
    # Each output pixel's offset from the centre, less the shift, turned back by the inverse
    # rotation and zoom, gives where in the source digit it reads from.
    u = ops.reshape(grid_rows, (1, -1)) - centre_row - shift_rows[:, None]
    v = ops.reshape(grid_columns, (1, -1)) - centre_column - shift_columns[:, None]
    cos, sin, inverse_scale = ops.cos(angle)[:, None], ops.sin(angle)[:, None], 1.0 / scale[:, None]
    source_rows = (cos * u + sin * v) * inverse_scale + centre_row
    source_columns = (cos * v - sin * u) * inverse_scale + centre_column
    images = ops.reshape(pixels, (-1, rows, columns))
    # (batch, 784, columns) @ (batch, columns, rows): each output pixel's column-interpolated rows.
    along_rows = ops.matmul(_tent(source_columns, columns), ops.transpose(images, (0, 2, 1)))
    return ops.sum(_tent(source_rows, rows) * along_rows, axis=-1)


@keras.saving.register_keras_serializable(package="explorer")
class RandomAffine(keras.layers.Layer):
    """Each training digit rotated by up to ±`rotation` degrees, zoomed by up to ±`zoom` (0.1:
    90% to 110% of its size) and shifted by up to ±`shift` pixels along each axis, uniformly at
    random; the identity at inference. Input and output: flat digits of 784 pixels."""

    def __init__(self, rotation: float = 0.0, shift: float = 0.0, zoom: float = 0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation, self.shift, self.zoom, self.seed = float(rotation), float(shift), float(zoom), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def _uniform(self, batch, bound: float, centre: float = 0.0):
        return keras.random.uniform((batch,), centre - bound, centre + bound, seed=self.seed_generator)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        batch = ops.shape(inputs)[0]
        angle = self._uniform(batch, math.radians(self.rotation))
        scale = self._uniform(batch, self.zoom, centre=1.0)
        rows, columns = self._uniform(batch, self.shift), self._uniform(batch, self.shift)
        return ops.cast(affine_resample(ops.cast(inputs, "float32"), angle, scale, rows, columns), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation, "shift": self.shift, "zoom": self.zoom,
                "seed": self.seed}  # fmt: skip
