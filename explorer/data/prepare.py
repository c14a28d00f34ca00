"""Preparing MNIST for a dense network: a stratified validation split, flattened pixels, one-hot labels.

The test set is kept apart: it is used once, for the final evaluation, and never for choosing.
"""

import dataclasses

import numpy as np

from explorer.config.defaults import NUM_CLASSES
from explorer.errors import DataError


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so that each class contributes `fraction` of its members to the second part.

    Args:
        labels: integer class labels.
        fraction: share of every class to hold out, in (0, 1).
        seed: seed of the permutation, so the split is reproducible.

    Returns:
        `(kept, held_out)` index arrays, each sorted, disjoint, together covering every index.
    """
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    # Largest-remainder rounding: the held-out total is round(fraction * N) exactly (6,000 of
    # MNIST's 60,000 at 0.1) while each class stays within one digit of its exact share.
    quotas = fraction * sizes
    counts = np.floor(quotas).astype(int)
    shortfall = round(fraction * len(labels)) - counts.sum()
    counts[np.argsort(-(quotas - counts), kind="stable")[:shortfall]] += 1
    held_out = []
    for label, count in zip(classes, counts, strict=True):
        members = np.flatnonzero(labels == label)
        held_out.append(rng.permutation(members)[:count])
    held = np.sort(np.concatenate(held_out)) if held_out else np.array([], dtype=int)
    kept = np.setdiff1d(np.arange(len(labels)), held, assume_unique=True)
    return kept, held


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """Model-ready arrays: flattened float32 pixels in [0, 1] and one-hot float32 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_images: np.ndarray  # uint8 (N, 28, 28), for the gallery of mistakes
    test_labels: np.ndarray  # uint8 (N,), for the confusion matrix

    @property
    def input_dim(self) -> int:
        return self.x_train.shape[1]


def to_features(images: np.ndarray) -> np.ndarray:
    """Flatten uint8 images to float32 feature rows scaled to [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def to_one_hot(labels: np.ndarray) -> np.ndarray:
    """One-hot float32 rows, one column per class. One-hot serves all three output activations."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def prepare_data(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    validation_split: float,
    seed: int,
    max_train: int | None = None,
    max_test: int | None = None,
) -> PreparedData:
    """Hold out a stratified, seeded validation split from the training set and make arrays ready.

    The test set is kept apart: it is used once, for the final evaluation, and never for choosing.

    Args:
        train, test: `(images, labels)` pairs from `load_mnist`.
        validation_split: share of each class of the training set held out for validation.
        seed: seed of the split (and of the subsampling below).
        max_train, max_test: keep at most this many training/test digits, stratified (quick runs).
    """
    (x_train, y_train), (x_test, y_test) = train, test
    if max_train is not None and max_train < len(y_train):
        _, keep = stratified_split(y_train, max_train / len(y_train), seed)
        x_train, y_train = x_train[keep], y_train[keep]
    if max_test is not None and max_test < len(y_test):
        _, keep = stratified_split(y_test, max_test / len(y_test), seed)
        x_test, y_test = x_test[keep], y_test[keep]
    fit_rows, val_rows = stratified_split(y_train, validation_split, seed)
    if len(val_rows) == 0 or len(fit_rows) == 0:
        raise DataError(
            f"validation split {validation_split} of {len(y_train)} training digits leaves an empty "
            "training or validation set"
        )
    return PreparedData(
        x_train=to_features(x_train[fit_rows]),
        y_train=to_one_hot(y_train[fit_rows]),
        x_val=to_features(x_train[val_rows]),
        y_val=to_one_hot(y_train[val_rows]),
        x_test=to_features(x_test),
        y_test=to_one_hot(y_test),
        test_images=x_test,
        test_labels=y_test,
    )
