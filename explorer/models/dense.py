"""The one dense builder: a validated `ModelConfig` turned into a compiled Keras network.

784 inputs -> hidden Dense layers (each optionally followed by Dropout) -> Dense(10). The output
activation decides how the loss reads the output: softmax gives probabilities, linear gives logits
(so the loss is computed `from_logits`), sigmoid gives ten independent one-vs-rest probabilities.
"""

from explorer.config.defaults import INPUT_DIM, NUM_CLASSES
from explorer.config.models import ModelConfig
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


def dense_network(config: ModelConfig) -> keras.Sequential:
    """The one dense builder: the network `config` describes, named after it and compiled with its
    optimizer, learning rate and loss."""
    layers: list = [keras.Input(shape=(INPUT_DIM,), name="pixels")]
    for index, (units, activation) in enumerate(config.hidden_layers, start=1):
        layers.append(keras.layers.Dense(units, activation=activation, name=f"hidden_{index}"))
        if config.dropout:
            layers.append(keras.layers.Dropout(config.dropout, name=f"dropout_{index}"))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation=config.output_activation, name="output"))
    model = keras.Sequential(layers, name=config.name)
    model.compile(
        optimizer=OPTIMIZER_CLASSES[config.optimizer](learning_rate=config.learning_rate), loss=make_loss(config)
    )
    return model


def make_loss(config: ModelConfig) -> str | keras.losses.Loss:
    """The loss for `config`: its Keras name, as a script would write it, or a Loss object reading
    logits when the output activation is linear."""
    name = config.resolved_loss
    if config.output_activation != "linear" or name == "mean_squared_error":
        return name
    if name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(from_logits=True)
    return keras.losses.BinaryCrossentropy(from_logits=True)
