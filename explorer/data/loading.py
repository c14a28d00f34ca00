"""The digits a sweep trains on: loaded from their source, split and flattened, with their identity.

The sweep and `--compare` both load through `load_prepared`, so a compared run's test digits are
reloaded exactly as its sweep loaded them.
"""

import dataclasses
from collections.abc import Callable
from pathlib import Path

from explorer.config.defaults import QUICK_TEST_DIGITS, QUICK_TRAIN_DIGITS
from explorer.data.mnist import DataSource, count_digits, given_path, load_mnist
from explorer.data.prepare import PreparedData, prepare_data


@dataclasses.dataclass(frozen=True)
class LoadedData:
    """The prepared arrays, where they came from (`source`, and as `run.json` records it), and the
    data's identity, which every trial's fingerprint includes (a change of data retrains)."""

    data: PreparedData
    source: DataSource
    record: dict
    identity: dict


def load_prepared(
    path: str | Path | None, *, seed: int, validation_split: float, quick: bool, log: Callable[[str], None]
) -> LoadedData:
    """MNIST from `path` (see `load_mnist` for what None finds), split per class with `seed`;
    with `quick`, the first QUICK_TRAIN_DIGITS training and QUICK_TEST_DIGITS test digits."""
    train, test, source = load_mnist(path, seed=seed, log=log)
    limits = {"max_train": QUICK_TRAIN_DIGITS, "max_test": QUICK_TEST_DIGITS} if quick else {}
    data = prepare_data(train, test, validation_split=validation_split, seed=seed, **limits)
    record = dataclasses.asdict(source) | {"full_mnist": source.is_full_mnist}
    return LoadedData(data, source, record, {**record, "validation_split": validation_split, **limits})


def planned_data(
    path: str | Path | None, *, seed: int, validation_split: float, quick: bool
) -> tuple[int, int, DataSource]:
    """The numbers of training and validation digits a sweep would use, and where they would come
    from, for `--plan`: from the label counts alone where the source is a path (no image is read),
    else from the loaded data. The split holds out exactly round(fraction x N) digits
    (`stratified_split`)."""
    counts = count_digits(path)
    if counts is None:
        loaded = load_prepared(path, seed=seed, validation_split=validation_split, quick=quick, log=lambda line: None)
        return len(loaded.data.x_train), len(loaded.data.x_val), loaded.source
    train = min(counts[0], QUICK_TRAIN_DIGITS) if quick else counts[0]
    held_out = round(validation_split * train)
    source = DataSource("path", str(Path(given_path(path)).expanduser()), counts[0], counts[1])
    return train - held_out, held_out, source


def planned_digits(path: str | Path | None, *, seed: int, validation_split: float, quick: bool) -> tuple[int, int]:
    """The numbers of training and validation digits a sweep would use (`planned_data`)."""
    train, validation, _ = planned_data(path, seed=seed, validation_split=validation_split, quick=quick)
    return train, validation
