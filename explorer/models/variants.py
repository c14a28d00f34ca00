"""Variants: a name, a model builder, epochs and a batch size; and what the engine reads off a model.

A *builder* is a function with no arguments that returns a compiled Keras model: the network
written out in Keras, `model.compile(optimizer=..., loss=...)` included. The engine seeds before
it calls a builder, names the model after its variant, and owns the metric (accuracy: the arg-max
of the ten outputs against the digit, whatever the loss), so any builder trains, is recorded,
compared and resumed alike.

`inspect_variant` calls each builder once, before anything trains, and turns bad input into one
line; it reads from the model's own layers what the summaries show (`describe_model`), and a
fingerprint of its architecture and compile configuration (`model_fingerprint`) that `--resume`
compares and fusion groups by.
"""

import dataclasses
import hashlib
import json
import re
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from explorer.config.checks import check_count, check_name, check_unique_names
from explorer.config.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    INPUT_DIM,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    NUM_CLASSES,
)
from explorer.config.techniques import Augmentation
from explorer.errors import ConfigError
from explorer.models.augment import RandomAffine
from explorer.models.backend import keras, seed_everything
from explorer.models.flops import SampleFlops, model_flops

# Losses that want integer labels; the engine feeds one-hot labels, which serve every other loss.
SPARSE_LOSSES = ("sparse_categorical_crossentropy", "sparse_categorical_hinge")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One network to train: its name, the builder that returns it compiled, epochs and batch size.

    `early_stopping`: stop once validation loss has not improved for this many epochs and keep the
    best epoch's weights (0: train every epoch). `takes_training_steps`: the builder takes the
    number of optimizer steps the training will run, `training_steps=N` (a learning-rate schedule's
    length), which the engine gives it once it knows the data's size (`with_training_steps`).
    """

    name: str
    build: Callable[..., keras.Model]
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    early_stopping: int = 0
    takes_training_steps: bool = False


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """What the engine reads off a built model, before any training."""

    description: Mapping[str, object]  # the summary's architecture columns (`describe_model`)
    fingerprint: str  # architecture and compile configuration (`model_fingerprint`)
    optimizer: str  # the optimizer's configuration as JSON: models that agree on it may fuse
    weight_paths: tuple[str, ...]  # fused branches need distinct ones
    parameters: int
    flops: SampleFlops | None  # per sample (`flops.model_flops`); None: unknown, never a partial count
    summary: str = ""  # what `model.summary()` prints for it (`summary_text`)

    def flops_per_epoch(self, train_samples: int, validation_samples: int) -> int | None:
        """Floating-point operations of one epoch (`flops.SampleFlops.per_epoch`): every training
        sample forward and backward, every validation sample forward; None when unknown."""
        return None if self.flops is None else self.flops.per_epoch(train_samples, validation_samples)


def build_model(variant: Variant) -> keras.Model:
    """Call the builder, check what it returned, and name the model after the variant.

    Raises:
        ConfigError: one line naming the variant, when the builder raises or returns anything but
            a compiled model with one input of `INPUT_DIM` features and one output of `NUM_CLASSES`.
    """
    where = f"variant {variant.name!r}"
    try:
        model = variant.build()
    except Exception as error:  # a learner's builder may raise anything: say what, and where
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"{where}: its builder raised {type(error).__name__}: {first_line}{_raised_at(error)}"
        ) from error
    if not isinstance(model, keras.Model):
        raise ConfigError(f"{where}: its builder returned {type(model).__name__}; expected a compiled keras.Model")
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise ConfigError(f"{where}: the model is not compiled; call model.compile(optimizer=..., loss=...) in it")
    shapes = [tuple(tensor.shape) for tensor in (*model.inputs, *model.outputs)] if model.built else []
    if shapes != [(None, INPUT_DIM), (None, NUM_CLASSES)]:
        raise ConfigError(
            f"{where}: the model's input and output shapes are {shapes or 'unknown (start it with keras.Input)'}; "
            f"expected one input of shape (None, {INPUT_DIM}) and one output of shape (None, {NUM_CLASSES})"
        )
    loss = loss_name(model.loss)
    if loss in SPARSE_LOSSES:
        raise ConfigError(
            f"{where}: loss {loss!r} wants integer labels, and the engine feeds one-hot labels; "
            f"use {loss.removeprefix('sparse_')!r}"
        )
    model.name = variant.name
    return model


def _gist(error: BaseException) -> str:
    """An error's message in one line: its first, or, where Keras wraps a layer's error in "Exception
    encountered when calling X.call()." and the layer's own words below, both, without the bold."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        return f"{lines[0].rstrip('.')}: {lines[1]}"[:200]
    return (lines or [""])[0][:200]


def _raised_at(error: BaseException) -> str:
    """Where in the builder's own code `error` was raised (" (at file:line, in function)"): the
    innermost frame outside Keras and the libraries, for a learner to find the line to fix."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if "site-packages" not in frame.filename]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno}, in {frame.name})"


def loss_name(loss: object) -> str:
    """The name of a compiled loss: a string as given, a Loss object's name, or a function's."""
    if isinstance(loss, str):
        return loss
    return getattr(loss, "name", None) or getattr(loss, "__name__", type(loss).__name__)


def activation_name(function: Callable) -> str:
    serialized = keras.activations.serialize(function)
    return serialized if isinstance(serialized, str) else getattr(function, "__name__", str(function))


# The layers of a dense stack as the dense builder writes it: hidden Dense layers, each maybe
# followed by BatchNormalization and its Activation, and by Dropout; RandomAffine first, if at all.
STACK_LAYERS = (keras.layers.Dense, keras.layers.Dropout, keras.layers.BatchNormalization, keras.layers.Activation)


def _dense_stack(layers: Sequence[keras.layers.Layer]) -> dict[str, object] | None:
    """The architecture columns of a dense stack (`STACK_LAYERS`, ending in Dense), else None."""
    augment = layers[0] if layers and isinstance(layers[0], RandomAffine) else None
    stack = layers[1:] if augment else layers
    if (
        not stack
        or not isinstance(stack[-1], keras.layers.Dense)
        or not all(isinstance(layer, STACK_LAYERS) for layer in stack)
    ):
        return None
    hidden = [index for index, layer in enumerate(stack[:-1]) if isinstance(layer, keras.layers.Dense)]
    activations = []
    for index in hidden:  # a Dense layer's own activation, or that of the Activation layer after its BN
        after = stack[index + 1 : index + 3]
        normalised = (
            len(after) == 2
            and isinstance(after[0], keras.layers.BatchNormalization)
            and isinstance(after[1], keras.layers.Activation)
        )
        activations.append(activation_name((after[1] if normalised else stack[index]).activation))
    rates = [float(layer.rate) for layer in stack if isinstance(layer, keras.layers.Dropout)]
    norms = {getattr(stack[index].kernel_constraint, "max_value", None) for index in hidden}
    return {
        "hidden_units": [int(stack[index].units) for index in hidden],
        # One name when every hidden layer shares it, one per layer otherwise, none without any.
        "activation": activations[0] if len(set(activations)) == 1 else (activations or None),
        "dropout": rates[0] if len(set(rates)) == 1 else (rates or 0.0),
        "output_activation": activation_name(stack[-1].activation),
        "augment": augment_text(augment),
        "batch_norm": any(isinstance(layer, keras.layers.BatchNormalization) for layer in stack),
        "max_norm": float(norms.pop() or 0.0) if len(norms) == 1 else None,
    }


def augment_text(layer: RandomAffine | None) -> str:
    """ "none", a preset's name ("standard") or the amounts of a RandomAffine layer."""
    return Augmentation(layer.rotation, layer.shift, layer.zoom).text() if layer else "none"


def learning_rate_facts(optimizer: keras.optimizers.Optimizer) -> dict[str, object]:
    """The peak learning rate, its schedule (constant, cosine, warmup_cosine, or the schedule's
    class name) and the decoupled weight decay (0.0 for none), read from the optimizer's config."""
    config = optimizer.get_config()
    rate, schedule = config["learning_rate"], "constant"
    if isinstance(rate, Mapping):  # a serialized LearningRateSchedule
        settings = rate.get("config", {})
        name = rate.get("class_name", "schedule")
        warm = bool(settings.get("warmup_steps")) and settings.get("warmup_target") is not None
        schedule = ("warmup_cosine" if warm else "cosine") if name == "CosineDecay" else name
        rate = settings.get("warmup_target") if warm else settings.get("initial_learning_rate")
    return {
        "learning_rate": float(f"{float(rate):.6g}") if rate is not None else None,  # the float32 value, as written
        "lr_schedule": schedule,
        "weight_decay": float(config.get("weight_decay") or 0.0),
    }


def describe_model(model: keras.Model, variant: Variant) -> dict[str, object]:
    """The architecture columns of the summary, read from the model's own layers: hidden units,
    activations, dropout, output activation, the techniques (augmentation, batch normalization,
    max-norm, label smoothing, schedule, weight decay, early stopping), loss, optimizer, learning
    rate, epochs and batch size.

    A dense stack (`STACK_LAYERS`) fills every column; any other model fills the architecture
    columns with None and says `"architecture": "other"`.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    stack = _dense_stack(layers)
    architecture = ("hidden_units", "activation", "dropout", "output_activation", "augment", "batch_norm", "max_norm")
    return {
        "architecture": "dense" if stack else "other",
        **(stack or dict.fromkeys(architecture)),
        "loss": loss_name(model.loss),
        "from_logits": bool(getattr(model.loss, "from_logits", False)),
        "label_smoothing": float(getattr(model.loss, "label_smoothing", 0.0) or 0.0),
        "optimizer": type(model.optimizer).__name__.lower(),
        **learning_rate_facts(model.optimizer),
        "early_stopping": variant.early_stopping,
        "epochs": variant.epochs,
        "batch_size": variant.batch_size,
    }


def _without_names(value: object) -> object:
    """A Keras configuration with every `name` left out: Keras' automatic names (dense_3, adam_2)
    count models built earlier in the process, and say nothing about the network."""
    if isinstance(value, Mapping):
        return {key: _without_names(item) for key, item in value.items() if key != "name"}
    if isinstance(value, (list, tuple)):
        return [_without_names(item) for item in value]
    return value


def normalised_config(model: keras.Model) -> dict[str, object]:
    """The model's architecture and compile configuration (optimizer and loss), names left out."""
    compile_config = model.get_compile_config() or {}
    return _without_names(
        {
            "model": model.get_config(),
            "optimizer": compile_config.get("optimizer"),
            "loss": compile_config.get("loss"),
        }
    )


def model_fingerprint(model: keras.Model) -> str:
    payload = json.dumps(normalised_config(model), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def inspect_variant(variant: Variant) -> ModelFacts:
    """Check a variant and build its model once, to read its facts (weights are not kept).

    Raises:
        ConfigError: for a bad name, epochs or batch size, a builder that fails (`build_model`), or
            a model whose training step cannot be traced (the error chained).
    """
    check_name(variant.name)
    where = f"variant {variant.name!r}"
    if not callable(variant.build):
        raise ConfigError(f"{where}: its builder {variant.build!r} is not a function")
    check_count(where, "epochs", variant.epochs, MAX_EPOCHS)
    check_count(where, "batch_size", variant.batch_size, MAX_BATCH_SIZE)
    model = build_model(variant)
    optimizer = _without_names(model.optimizer.get_config())
    try:
        flops = model_flops(model, variant.batch_size)  # a model no rule counts is traced for training
    except Exception as error:  # a layer that cannot run in training: this network cannot train at all
        raise ConfigError(
            f"{where}: its training step cannot be traced: {type(error).__name__}: {_gist(error)}{_raised_at(error)}"
        ) from error
    return ModelFacts(
        description=describe_model(model, variant),
        fingerprint=model_fingerprint(model),
        optimizer=json.dumps({"class": type(model.optimizer).__name__, **optimizer}, sort_keys=True, default=str),
        weight_paths=tuple(weight.path for weight in model.weights),
        parameters=int(model.count_params()),
        flops=flops,
    )


def summary_text(variant: Variant) -> str:
    """What `model.summary()` prints for the variant's model built in a fresh Keras session: its
    layers (named dense, dense_1, ... as in a script of its own), output shapes and parameters."""
    # Only the names need resetting: Python's garbage collection (free_memory) took 0.24 s a model.
    keras.backend.clear_session(free_memory=False)
    lines: list[str] = []
    build_model(variant).summary(print_fn=lambda line, **_: lines.append(line))
    return "\n".join(lines).strip("\n")


def first_dense_layer(model: keras.Model) -> tuple[keras.layers.Layer, bool] | None:
    """A model's first Dense layer when it reads the 784 pixels, and whether it is also the output
    (a network with no hidden layer: its kernel holds class templates, not units); None otherwise."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense or dense[0].kernel.shape[0] != INPUT_DIM:
        return None
    return dense[0], len(dense) == 1


def compile_for_training(model: keras.Model, steps_per_execution: int) -> keras.Model:
    """Compile again with the builder's optimizer and loss, the engine's accuracy metric and
    `steps_per_execution`. Categorical accuracy (arg-max of the output against the one-hot label)
    means the same for softmax, logits and one-vs-rest sigmoid outputs."""
    model.compile(
        optimizer=model.optimizer,
        loss=model.loss,
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        steps_per_execution=steps_per_execution,
    )
    return model


def check_variants(variants: Sequence[Variant]) -> list[ModelFacts]:
    """Check every variant, in order, before anything trains; return each one's facts, with
    its `model.summary()`.

    Raises:
        ConfigError: when there are none, for two names that differ only in case, or for the first
            bad variant (`inspect_variant`).
    """
    check_unique_names([variant.name for variant in variants])
    seed_everything(0)  # building may draw random numbers (and, on TensorFlow, import it): quietly
    # Every model is built in one session first, as fused training builds them, so that the weight
    # paths in the facts are the ones a fused group would see; only then each in a fresh session
    # for its summary.
    facts = [inspect_variant(variant) for variant in variants]
    return [
        dataclasses.replace(fact, summary=summary_text(variant)) for fact, variant in zip(facts, variants, strict=True)
    ]
