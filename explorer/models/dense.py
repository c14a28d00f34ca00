"""The one dense builder: a validated `ModelConfig` turned into a compiled Keras network.

784 inputs -> [random moves of each training digit] -> hidden Dense layers (each optionally
followed by BatchNormalization before its activation, and by Dropout) -> Dense(10). The output
activation decides how the loss reads the output: softmax gives probabilities, linear gives logits
(so the loss is computed `from_logits`), sigmoid gives ten independent one-vs-rest probabilities.
Every technique a configuration leaves off adds nothing: the default network is the one a Keras
guide writes.
"""

from explorer.config.defaults import INPUT_DIM, NUM_CLASSES, WARMUP_FRACTION
from explorer.config.models import ModelConfig
from explorer.models.augment import RandomAffine
from explorer.models.backend import keras

OPTIMIZER_CLASSES = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "nadam": keras.optimizers.Nadam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
    "adamax": keras.optimizers.Adamax,
}  # one for each name in `config.models.OPTIMIZERS`


def dense_network(config: ModelConfig, training_steps: int | None = None) -> keras.Sequential:
    """The one dense builder: the network `config` describes, named after it and compiled with its
    optimizer, learning rate (or schedule over `training_steps` optimizer steps) and loss."""
    layers: list = [keras.Input(shape=(INPUT_DIM,), name="pixels")]
    if config.augment:
        augment = config.augment
        layers.append(RandomAffine(augment.rotation, augment.shift, augment.zoom, name="augment"))
    # Srivastava et al.'s max-norm: after each update, a unit's incoming weights are scaled back
    # onto the ball of this radius if they left it.
    constraint = keras.constraints.MaxNorm(config.max_norm) if config.max_norm else None
    for index, (units, activation) in enumerate(config.hidden_layers, start=1):
        if config.batch_norm:  # normalise the sums, then activate; BN's shift makes a bias redundant
            layers += [
                keras.layers.Dense(units, use_bias=False, kernel_constraint=constraint, name=f"hidden_{index}"),
                keras.layers.BatchNormalization(name=f"batch_norm_{index}"),
                keras.layers.Activation(activation, name=f"activation_{index}"),
            ]
        else:
            layers.append(
                keras.layers.Dense(units, activation=activation, kernel_constraint=constraint, name=f"hidden_{index}")
            )
        if config.dropout:
            layers.append(keras.layers.Dropout(config.dropout, name=f"dropout_{index}"))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation=config.output_activation, name="output"))
    model = keras.Sequential(layers, name=config.name)
    model.compile(optimizer=make_optimizer(config, training_steps), loss=make_loss(config))
    return model


def learning_rate(
    config: ModelConfig, training_steps: int | None
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """`config.learning_rate`, constant or as the peak of its schedule over `training_steps`.

    Raises:
        ValueError: a schedule without `training_steps` (the engine always gives them).
    """
    if config.lr_schedule == "constant":
        return config.learning_rate
    if not training_steps:
        raise ValueError(
            f"lr_schedule {config.lr_schedule!r} needs training_steps, the optimizer steps of the training"
        )
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=training_steps)
    warmup_steps = max(1, round(WARMUP_FRACTION * training_steps))
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(1, training_steps - warmup_steps),
        warmup_target=config.learning_rate,
        warmup_steps=warmup_steps,
    )


def make_optimizer(config: ModelConfig, training_steps: int | None = None) -> keras.optimizers.Optimizer:
    """The configuration's Keras optimizer; weight decay, where set, is Keras' decoupled one, which
    every Keras optimizer takes (`weight_decay=`), AdamW with 0.004 unless told otherwise."""
    decay = {} if config.weight_decay is None else {"weight_decay": config.weight_decay}
    return OPTIMIZER_CLASSES[config.optimizer](learning_rate=learning_rate(config, training_steps), **decay)


def make_loss(config: ModelConfig) -> str | keras.losses.Loss:
    """The loss for `config`: its Keras name, as a script would write it, or a Loss object where
    it reads logits or smooths the labels."""
    name = config.resolved_loss
    if name == "mean_squared_error" or (config.output_activation != "linear" and not config.label_smoothing):
        return name
    loss_class = (
        keras.losses.CategoricalCrossentropy if name == "categorical_crossentropy" else keras.losses.BinaryCrossentropy
    )
    return loss_class(from_logits=config.output_activation == "linear", label_smoothing=config.label_smoothing)
