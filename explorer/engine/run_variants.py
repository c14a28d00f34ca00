"""The variants as this run trains them: the command line's epochs and batch size in place of
their own, and a schedule's length given to the builders that take it.
"""

import dataclasses
import functools
import math
from collections.abc import Sequence

from explorer.config.options import Options
from explorer.data.loading import planned_digits
from explorer.models.variants import Variant


def with_overrides(variants: Sequence[Variant], options: Options) -> list[Variant]:
    """The variants with the command line's epochs and batch size, where it sets them."""
    epochs, batch_size = options.epochs_override, options.batch_size
    return [
        dataclasses.replace(variant, epochs=epochs or variant.epochs, batch_size=batch_size or variant.batch_size)
        for variant in variants
    ]


def with_training_steps(
    variants: Sequence[Variant], options: Options, train_digits: int | None = None
) -> list[Variant]:
    """The variants whose builders take the number of optimizer steps (a learning-rate schedule's
    length, `Variant.takes_training_steps`) with it given: epochs times batches per epoch of the
    training digits this run will use (`train_digits` once the data is loaded; before, counted from
    the labels alone where it can be)."""
    if not any(variant.takes_training_steps for variant in variants):
        return list(variants)
    train = train_digits
    if train is None:
        train, _ = planned_digits(
            options.data, seed=options.seed, validation_split=options.validation_split, quick=options.quick
        )
    return [
        dataclasses.replace(
            variant,
            build=functools.partial(
                variant.build, training_steps=variant.epochs * math.ceil(train / variant.batch_size)
            ),
            takes_training_steps=False,
        )
        if variant.takes_training_steps
        else variant
        for variant in variants
    ]


def prepared(variants: Sequence[Variant], options: Options, train_digits: int | None = None) -> list[Variant]:
    """The variants as this run trains them (`with_overrides`, then `with_training_steps`)."""
    return with_training_steps(with_overrides(variants, options), options, train_digits)
