"""Configurations as plain data, validated without Keras (so a typo answers at once).

A configuration is a dict such as `{"hidden_units": [128], "activation": "relu"}` in a script or a
TOML table in a file. `validate_config` turns it into a `ModelConfig` or raises a one-line
`ConfigError` naming the configuration, the field, the bad value and what is allowed. Nothing after
validation checks user input again. `models.dense.dense_network` builds the network a `ModelConfig`
describes.
"""

import dataclasses
import difflib
import itertools
import math
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from explorer.config.checks import check_count, check_name, check_unique_names, is_int, is_number
from explorer.config.defaults import (
    DEFAULT_ACTIVATION,
    DEFAULT_BATCH_SIZE,
    DEFAULT_DROPOUT,
    DEFAULT_EPOCHS,
    DEFAULT_HIDDEN_UNITS,
    DEFAULT_LEARNING_RATE,
    DEFAULT_LOSS,
    DEFAULT_LR_SCHEDULE,
    DEFAULT_OPTIMIZER,
    DEFAULT_OUTPUT_ACTIVATION,
    INPUT_DIM,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_LAYERS,
    MAX_UNITS,
    NUM_CLASSES,
)
from explorer.config.techniques import Augmentation, technique_fields
from explorer.errors import ConfigError, shown

HIDDEN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "gelu", "selu", "silu", "softplus", "leaky_relu", "linear")


OUTPUT_ACTIVATIONS = ("softmax", "linear", "sigmoid")


# "auto" picks the loss that matches the output: softmax -> categorical cross-entropy,
# linear -> categorical cross-entropy from logits, sigmoid -> one-vs-rest binary cross-entropy.
LOSSES = ("auto", "categorical_crossentropy", "binary_crossentropy", "mean_squared_error")


AUTO_LOSS = {
    "softmax": "categorical_crossentropy",
    "linear": "categorical_crossentropy",
    "sigmoid": "binary_crossentropy",
}


# Keras' optimizers by their names (`keras.optimizers.get` knows each).
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd", "adagrad", "adamax")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One dense network and how to train it: 784 inputs -> hidden Dense layers -> Dense(10).

    Build it with `validate_config`, which checks every field; the defaults are those of a
    sensible small Keras MLP.
    """

    name: str
    hidden_units: tuple[int, ...] = DEFAULT_HIDDEN_UNITS
    activation: str | tuple[str, ...] = DEFAULT_ACTIVATION  # one for every hidden layer, or one per layer
    dropout: float = DEFAULT_DROPOUT  # after every hidden layer; 0 means no Dropout layers
    output_activation: str = DEFAULT_OUTPUT_ACTIVATION
    loss: str = DEFAULT_LOSS
    optimizer: str = DEFAULT_OPTIMIZER
    learning_rate: float = DEFAULT_LEARNING_RATE
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    # The techniques (`config.techniques`), each off by default.
    augment: Augmentation | None = None  # random rotations, shifts and zooms of training digits
    batch_norm: bool = False  # BatchNormalization between each hidden Dense layer and its activation
    label_smoothing: float = 0.0
    lr_schedule: str = DEFAULT_LR_SCHEDULE  # over the training's steps: constant, cosine, warmup_cosine
    weight_decay: float | None = None  # decoupled; None: the optimizer's own (AdamW 0.004, others none)
    max_norm: float = 0.0  # the largest norm of a hidden unit's incoming weights; 0: no limit
    early_stopping: int = 0  # epochs without a better validation loss before stopping; 0: off

    @property
    def hidden_layers(self) -> tuple[tuple[int, str], ...]:
        """`(units, activation)` for each hidden layer."""
        activations = (
            (self.activation,) * len(self.hidden_units) if isinstance(self.activation, str) else self.activation
        )
        return tuple(zip(self.hidden_units, activations, strict=True))

    @property
    def has_schedule(self) -> bool:
        """Whether the learning rate follows a schedule, whose length is the training's steps."""
        return self.lr_schedule != "constant"

    @property
    def resolved_loss(self) -> str:
        return AUTO_LOSS[self.output_activation] if self.loss == "auto" else self.loss

    def to_dict(self) -> dict:
        """Plain JSON-ready fields (tuples become lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()
        }


CONFIG_FIELDS = tuple(field.name for field in dataclasses.fields(ModelConfig) if field.name != "name")


def closest(value: object, allowed: Iterable[str]) -> str:
    matches = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _choice(where: str, field: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(
            f"{where}: {field} {shown(value)} is unknown{closest(value, allowed)}; allowed: {', '.join(allowed)}"
        )
    return value


def _not_allowed(where: str, field: str, value: object, expected: str) -> ConfigError:
    return ConfigError(f"{where}: {field} = {shown(value)} is not allowed; expected {expected}")


def _hidden_units(where: str, hidden_units: object) -> tuple[int, ...]:
    if not isinstance(hidden_units, (list, tuple)) or len(hidden_units) > MAX_LAYERS:
        expected = f"a list of up to {MAX_LAYERS} layer widths, e.g. [128] or [512, 512] ([] for none)"
        raise _not_allowed(where, "hidden_units", hidden_units, expected)
    for units in hidden_units:
        if not is_int(units) or not 1 <= units <= MAX_UNITS:
            raise ConfigError(
                f"{where}: hidden_units contains {shown(units)}; every width must be a whole number from 1 to {MAX_UNITS:,}"
            )
    return tuple(hidden_units)


def _activation(where: str, activation: object, depth: int) -> str | tuple[str, ...]:
    if not isinstance(activation, (list, tuple)):
        return _choice(where, "activation", activation, HIDDEN_ACTIVATIONS)
    if len(activation) != depth:
        expected = f"one name for all layers or a list of {depth} (one per hidden layer)"
        raise _not_allowed(where, "activation", activation, expected)
    return tuple(_choice(where, "activation", item, HIDDEN_ACTIVATIONS) for item in activation)


def _fields_of(where: str, fields: object, defaults: Mapping[str, object] | None) -> dict[str, object]:
    """Every field's value: the defaults of `ModelConfig`, then `defaults`, then `fields`."""
    if not isinstance(fields, Mapping):
        raise ConfigError(f"{where}: expected a table of fields, got {type(fields).__name__} {shown(fields)}")
    merged = {**(defaults or {}), **fields}
    for key in merged:
        if key not in CONFIG_FIELDS:
            raise ConfigError(
                f"{where}: unknown field {shown(key)}{closest(key, CONFIG_FIELDS)}; allowed fields: {', '.join(CONFIG_FIELDS)}"
            )
    values = {field.name: field.default for field in dataclasses.fields(ModelConfig) if field.name != "name"}
    values["augment"] = "none"  # as a configuration writes it (`techniques.AUGMENT_CHOICES`)
    return {**values, **merged}


def machine_memory_bytes() -> int:
    """This machine's physical memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def training_memory_bytes(hidden_units: Sequence[int], batch_size: int) -> int:
    """An estimate of what training a dense network takes: float32 weights, their gradients and
    two optimizer slots (Adam's moments) per parameter, and one batch's activations kept for the
    backward pass and their gradients."""
    widths = [INPUT_DIM, *hidden_units, NUM_CLASSES]
    parameters = sum(inputs * outputs + outputs for inputs, outputs in itertools.pairwise(widths))
    activations = batch_size * sum(widths[1:])
    return 4 * (4 * parameters + 2 * activations)


def _check_memory(where: str, hidden_units: Sequence[int], batch_size: int) -> None:
    needed, available = training_memory_bytes(hidden_units, batch_size), machine_memory_bytes()
    if needed > available:
        raise ConfigError(
            f"{where}: needs about {needed / 2**30:,.1f} GiB to train (weights, gradients, optimizer "
            f"state and one batch), which cannot fit in this machine's {available / 2**30:,.1f} GiB; "
            "use fewer or narrower hidden layers, or a smaller batch"
        )


def validate_config(
    name: str, fields: Mapping[str, object], defaults: Mapping[str, object] | None = None
) -> ModelConfig:
    """Check one configuration and return it as a `ModelConfig`.

    Args:
        name: the configuration's name; it names the model, its folder and its legend entry.
        fields: the fields to set (see `CONFIG_FIELDS`); unset fields take `ModelConfig`'s defaults.
        defaults: fields applied before `fields`.

    Raises:
        ConfigError: one line naming the configuration, the field, the value and what is allowed.
    """
    check_name(name)
    where = f"config {name!r}"
    values = _fields_of(where, fields, defaults)
    hidden_units = _hidden_units(where, values["hidden_units"])
    dropout, learning_rate = values["dropout"], values["learning_rate"]
    if not is_number(dropout) or not 0 <= dropout < 1:
        raise _not_allowed(where, "dropout", dropout, "a number from 0 (no dropout) up to but not including 1")
    if not is_number(learning_rate) or not math.isfinite(learning_rate) or learning_rate <= 0:
        raise _not_allowed(where, "learning_rate", learning_rate, "a positive finite number such as 0.001")
    batch_size = check_count(where, "batch_size", values["batch_size"], MAX_BATCH_SIZE)
    _check_memory(where, hidden_units, batch_size)
    output_activation = _choice(where, "output_activation", values["output_activation"], OUTPUT_ACTIVATIONS)
    loss = _choice(where, "loss", values["loss"], LOSSES)
    resolved_loss = AUTO_LOSS[output_activation] if loss == "auto" else loss
    return ModelConfig(
        name=name,
        hidden_units=hidden_units,
        activation=_activation(where, values["activation"], len(hidden_units)),
        dropout=float(dropout),
        output_activation=output_activation,
        loss=loss,
        optimizer=_choice(where, "optimizer", values["optimizer"], tuple(OPTIMIZERS)),
        learning_rate=float(learning_rate),
        epochs=check_count(where, "epochs", values["epochs"], MAX_EPOCHS),
        batch_size=batch_size,
        **technique_fields(where, values, resolved_loss),
    )


def validate_configs(
    configs: Mapping[str, Mapping[str, object]], overrides: Mapping[str, object] | None = None
) -> list[ModelConfig]:
    """Validate every configuration (in order) before anything trains.

    Args:
        configs: name -> fields, as in the loop script's `CONFIGS` or a TOML file.
        overrides: fields that replace every configuration's own (--epochs, --batch-size).

    Raises:
        ConfigError: for the first bad configuration, or when there are none.
    """
    if not isinstance(configs, Mapping) or not configs:
        raise ConfigError("no configurations to train; define at least one")
    validated = [validate_config(name, {**fields, **(overrides or {})}) for name, fields in configs.items()]
    check_unique_names([config.name for config in validated])
    return validated


def load_toml_configs(path: Path | str) -> dict[str, dict]:
    """Read configurations from a TOML file: one table per model, named by the table.

    Example:
        [dense_128_relu]
        hidden_units = [128]
        activation = "relu"

    Raises:
        ConfigError: for a missing file, a TOML syntax error (with its line), or a value that is
            not a table. The fields themselves are checked by `validate_configs`.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot read ({error.strerror or error})") from None
    try:
        # TOML is UTF-8; a byte-order mark, which some editors write first, says so and is skipped.
        text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"--config {path}: not UTF-8 text (byte 0x{raw[error.start]:02x} at position {error.start:,}); "
            "save it as UTF-8, the encoding TOML requires"
        ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"--config {path}: TOML syntax error: {error}") from None
    for name, fields in document.items():
        if not isinstance(fields, dict):
            raise ConfigError(
                f"--config {path}: {shown(name)} must be a table of fields ([{name[:40]}] followed by "
                "key = value lines), "
                f"got {shown(fields)}"
            )
    if not document:
        raise ConfigError(f"--config {path}: no configurations found; add a [name] table per model")
    return document


def select_configs(configs: Mapping[str, Mapping], only: Sequence[str] | None) -> dict[str, Mapping]:
    """Keep only the configurations named in `only` (all when None), in the given order.

    Raises:
        ConfigError: for a name that is not defined, listing the valid names.
    """
    if not only:
        return dict(configs)
    for name in only:
        if name not in configs:
            raise ConfigError(
                f"--only {shown(name)} is not a configuration{closest(name, configs)}; valid names: {', '.join(configs)}"
            )
    return {name: configs[name] for name in dict.fromkeys(only)}
