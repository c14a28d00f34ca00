"""The work a model does, in floating-point operations (FLOPs) per sample: the one counting rule.

A dense stack (Dense, Dropout, Activation, Flatten and InputLayer layers in a Sequential or
functional model, nested ones included) is counted from its layers' shapes, exactly: its matrix
products, 2 FLOPs per multiply-add. Every sample costs a forward pass; a training sample also
costs the backward pass, 2 FLOPs per multiply-add for the gradient of a trainable layer's weights
and 2 more for the gradient of its input, which is computed only when a trainable layer comes
before it (the first Dense layer's input is the pixels: nothing needs their gradient). Biases,
activations, the loss and the optimizer's update are left out: they grow with the widths, not
their products (XLA's count of the whole step is 2-11% higher, `tests/test_flops.py`).

Any other model (a convolution, a recurrent or a custom layer) is counted by XLA: the cost
analysis of its compiled training step on JAX, divided by the batch size, elementwise work
included (`keras_compat.compiled_step_flops`). On TensorFlow its FLOPs are unknown (None), never
a partial count of the layers this rule knows.
"""

import dataclasses

from explorer.models import keras_compat
from explorer.models.backend import keras

# Layers without weights whose work is elementwise or none: free under the rule.
FREE_LAYERS = (keras.layers.InputLayer, keras.layers.Dropout, keras.layers.Activation, keras.layers.Flatten)


@dataclasses.dataclass(frozen=True)
class SampleFlops:
    """FLOPs per sample: a training sample's (forward and backward) and a forward pass's."""

    train: float
    forward: float
    counted_by: str  # "layers" (this module's rule) or "XLA" (the compiled training step)

    def per_epoch(self, train_samples: int, validation_samples: int) -> int:
        """FLOPs of one epoch: every training sample trained on, every validation sample forward."""
        return round(self.train * train_samples + self.forward * validation_samples)


def dense_flops(multiply_adds: list[tuple[int, bool]]) -> SampleFlops:
    """The rule for a chain of Dense layers, given each one's multiply-adds per sample and whether
    it is trainable, in call order."""
    forward = train = 0
    after_trainable = False
    for count, trainable in multiply_adds:
        forward += 2 * count
        train += 2 * count + 2 * count * trainable + 2 * count * after_trainable
        after_trainable = after_trainable or trainable
    return SampleFlops(train=train, forward=forward, counted_by="layers")


def _chain(model: keras.layers.Layer) -> list[keras.layers.Layer] | None:
    """The layers of a Sequential or functional model with one input and one output, nested such
    models flattened, in call order; None for a model whose call order its layers do not say."""
    if not isinstance(model, (keras.Sequential, keras.Function)) or not model.built:
        return None  # a subclassed model's `call` decides the order; an unbuilt one has no shapes
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return None  # two branches from one input would both be "first"
    layers = []
    for layer in model.layers:
        inner = _chain(layer) if isinstance(layer, keras.Model) else [layer]
        if inner is None:
            return None
        layers.extend(inner)
    return layers


def layer_flops(model: keras.Model) -> SampleFlops | None:
    """The rule's count for a dense stack (see the module's docstring); None for any other model."""
    layers = _chain(model)
    if layers is None:
        return None
    multiply_adds = []
    for layer in layers:
        if isinstance(layer, keras.layers.Dense) and len(layer.input.shape) == 2:
            inputs, units = layer.kernel.shape
            multiply_adds.append((int(inputs) * int(units), layer.trainable))
        elif not isinstance(layer, FREE_LAYERS):
            return None  # a layer whose cost the rule does not know, or a Dense over a sequence
    return dense_flops(multiply_adds)


def model_flops(model: keras.Model, batch_size: int) -> SampleFlops | None:
    """A built, compiled model's FLOPs per sample: by the rule where it can count them, else from
    XLA's cost analysis of its training step at this batch size; None where neither can."""
    counted = layer_flops(model)
    if counted is not None:
        return counted
    steps = keras_compat.compiled_step_flops(model, batch_size)
    if steps is None:
        return None
    train_step, test_step = steps
    return SampleFlops(train=train_step / batch_size, forward=test_step / batch_size, counted_by="XLA")
