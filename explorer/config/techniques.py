"""The fields beyond a network's shape: augmentation, batch normalization, label smoothing, a
learning-rate schedule, weight decay, a max-norm constraint and early stopping.

Each is off unless a configuration asks for it, so a configuration written before them means what
it meant. `technique_fields` checks them, as `models.validate_config` checks the others, and
`models.dense.dense_network` writes each out in Keras.
"""

import dataclasses
import math
from collections.abc import Mapping

from explorer.config.checks import is_int, is_number
from explorer.config.defaults import (
    AUGMENT_PRESETS,
    LR_SCHEDULES,
    MAX_EPOCHS,
    MAX_ROTATION_DEGREES,
    MAX_SHIFT_PIXELS,
    MAX_ZOOM,
)
from explorer.errors import ConfigError, shown

AUGMENT_CHOICES = ("none", *AUGMENT_PRESETS)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random moves of each training digit, up to: `rotation` degrees either way, `shift` pixels
    along each axis, `zoom` as a fraction of its size (0.1: 90% to 110%)."""

    rotation: float = 0.0
    shift: float = 0.0
    zoom: float = 0.0

    def text(self) -> str:
        """ "standard", or the amounts: "rotate 10°, shift 2 px, zoom 0.1"."""
        for name, amounts in AUGMENT_PRESETS.items():
            if dataclasses.asdict(self) == amounts:
                return name
        parts = (f"rotate {self.rotation:g}°", f"shift {self.shift:g} px", f"zoom {self.zoom:g}")
        return ", ".join(part for part, amount in zip(parts, dataclasses.astuple(self), strict=True) if amount)


AUGMENT_LIMITS = {"rotation": MAX_ROTATION_DEGREES, "shift": MAX_SHIFT_PIXELS, "zoom": MAX_ZOOM}


def _augmentation(where: str, value: object) -> Augmentation | None:
    if isinstance(value, str) and value in AUGMENT_CHOICES:
        return None if value == "none" else Augmentation(**AUGMENT_PRESETS[value])
    expected = (
        f"one of {', '.join(map(repr, AUGMENT_CHOICES))}, or a table of amounts such as "
        "{rotation = 10, shift = 2, zoom = 0.1} (degrees, pixels, fraction of the size)"
    )
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where}: augment = {shown(value)} is not allowed; expected {expected}")
    for key, amount in value.items():
        limit = AUGMENT_LIMITS.get(key)
        if limit is None:
            raise ConfigError(f"{where}: augment has an unknown amount {shown(key)}; allowed: rotation, shift, zoom")
        if not is_number(amount) or not 0 <= amount <= limit:
            raise ConfigError(
                f"{where}: augment {key} = {shown(amount)} is not allowed; expected a number from 0 to {limit:g}"
            )
    augmentation = Augmentation(**{key: float(amount) for key, amount in value.items()})
    return augmentation if any(dataclasses.astuple(augmentation)) else None


def _fraction(where: str, field: str, value: object, meaning: str) -> float:
    if not is_number(value) or not 0 <= value < 1:
        raise ConfigError(
            f"{where}: {field} = {shown(value)} is not allowed; expected a number from 0 ({meaning}) up to but not including 1"
        )
    return float(value)


def technique_fields(where: str, values: Mapping[str, object], loss: str) -> dict[str, object]:
    """The technique fields of `values`, checked and typed; `loss` is the configuration's resolved
    loss (label smoothing needs a cross-entropy).

    Raises:
        ConfigError: one line naming the field, the value and what is allowed.
    """
    if not isinstance(values["batch_norm"], bool):
        raise ConfigError(f"{where}: batch_norm = {shown(values['batch_norm'])} is not allowed; expected true or false")
    smoothing = _fraction(where, "label_smoothing", values["label_smoothing"], "none")
    if smoothing and loss == "mean_squared_error":
        raise ConfigError(
            f"{where}: label_smoothing = {smoothing:g} needs a cross-entropy loss; mean_squared_error has none "
            "(set loss to categorical_crossentropy or binary_crossentropy, or label_smoothing to 0)"
        )
    schedule = values["lr_schedule"]
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"{where}: lr_schedule {shown(schedule)} is unknown; allowed: {', '.join(LR_SCHEDULES)}")
    weight_decay, max_norm, patience = values["weight_decay"], values["max_norm"], values["early_stopping"]
    if weight_decay is not None:
        weight_decay = _fraction(where, "weight_decay", weight_decay, "no decay")
    if not is_number(max_norm) or not math.isfinite(max_norm) or max_norm < 0:
        raise ConfigError(
            f"{where}: max_norm = {shown(max_norm)} is not allowed; expected 0 (none) or a positive number such as 3"
        )
    if not is_int(patience) or not 0 <= patience <= MAX_EPOCHS:
        raise ConfigError(
            f"{where}: early_stopping = {shown(patience)} is not allowed; expected 0 (off) or the epochs to wait "
            f"for validation loss to improve, a whole number up to {MAX_EPOCHS:,}"
        )
    return {
        "augment": _augmentation(where, values["augment"]),
        "batch_norm": values["batch_norm"],
        "label_smoothing": smoothing,
        "lr_schedule": schedule,
        "weight_decay": weight_decay,
        "max_norm": float(max_norm),
        "early_stopping": patience,
    }
