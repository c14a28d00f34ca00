"""The report's "Draw a digit" panel: every configuration's network, computed in the page.

A digit drawn on the page's canvas is made into a 28x28 digit the way MNIST's were made
(`mnist_digit` is the Python version of the page's steps, which the tests compare), and each
configuration's best run by validation accuracy answers with its ten outputs. The networks travel in
the page as JSON (weights as base64 float32), computed there by a few lines of plain JavaScript
(`report_files/drawing.js`): no server, nothing downloaded.
"""

import base64
import dataclasses
import html
import json
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from explorer.config.defaults import (
    DRAWING_MAX_PARAMETERS,
    DRAWING_MAX_TOTAL_PARAMETERS,
    DRAWING_TEST_DIGITS,
    INPUT_DIM,
    NUM_CLASSES,
)
from explorer.config.models import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from explorer.models.keras_compat import SavedLayer, saved_layers

REPORT_FILES = Path(__file__).parent / "report_files"
# Every activation a configuration allows, and Keras' other name for silu: drawing.js computes each.
PAGE_ACTIVATIONS = frozenset({*HIDDEN_ACTIVATIONS, *OUTPUT_ACTIVATIONS, "swish"})
# Layers that do nothing at inference: Dropout is the identity once trained, and augmentation
# (`models.augment.RandomAffine`) moves only training digits.
IDENTITY_LAYERS = frozenset({"Dropout", "GaussianDropout", "GaussianNoise", "AlphaDropout", "RandomAffine"})


@dataclasses.dataclass(frozen=True)
class DrawingBudget:
    """How many parameters the page embeds: per network, and all networks together."""

    max_parameters: int = DRAWING_MAX_PARAMETERS
    max_total: int = DRAWING_MAX_TOTAL_PARAMETERS


class NotComputable(ValueError):
    """A network whose layers the page cannot compute; the message says which."""


# --- The networks, as the page computes them ----------------------------------------------------------


def _floats(array: np.ndarray) -> str:
    """An array as base64 of its little-endian float32 bytes, as the page's Float32Array reads them."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _activation(layer: SavedLayer) -> str:
    activation = layer.config.get("activation", "linear")
    if activation not in PAGE_ACTIVATIONS:
        raise NotComputable(
            f"its {layer.config.get('name')} layer's activation {activation!r} is not one the page computes"
        )
    return activation


def _page_layer(layer: SavedLayer) -> dict | None:
    """One layer as the page computes it (None: the identity at inference)."""
    if layer.class_name in IDENTITY_LAYERS:
        return None
    if layer.class_name == "Dense":
        kernel = layer.weights[0]
        bias = layer.weights[1] if layer.config.get("use_bias", True) else np.zeros(kernel.shape[1])
        return {"kind": "dense", "activation": _activation(layer), "units": int(kernel.shape[1]),
                "kernel": _floats(kernel), "bias": _floats(bias)}  # fmt: skip
    if layer.class_name == "Activation":
        return {"kind": "activation", "activation": _activation(layer)}
    if layer.class_name == "BatchNormalization" and layer.config.get("axis", -1) in (-1, 1, [-1], [1]):
        return {"kind": "affine", **dict(zip(("scale", "shift"), map(_floats, batch_norm_affine(layer)), strict=True))}
    raise NotComputable(f"its {layer.config.get('name')} layer ({layer.class_name}) is not one the page computes")


def batch_norm_affine(layer: SavedLayer) -> tuple[np.ndarray, np.ndarray]:
    """A BatchNormalization layer in inference mode as one scale and shift per unit:
    gamma (x - mean) / sqrt(variance + epsilon) + beta, without gamma or beta when it has none."""
    weights = list(layer.weights)
    gamma = weights.pop(0) if layer.config.get("scale", True) else 1.0
    beta = weights.pop(0) if layer.config.get("center", True) else 0.0
    mean, variance = weights
    scale = gamma / np.sqrt(variance.astype(np.float64) + layer.config.get("epsilon", 1e-3))
    return scale, beta - mean * scale


def page_network(layers: Sequence[SavedLayer]) -> tuple[list[dict], int]:
    """A saved network's layers as the page computes them, and its number of parameters.

    Raises:
        NotComputable: a layer the page does not compute, or not 784 pixels in and 10 outputs out.
    """
    first = layers[0].config.get("batch_shape") if layers and layers[0].class_name == "InputLayer" else None
    if first is None or list(first)[1:] != [INPUT_DIM]:
        raise NotComputable(f"it does not read the {INPUT_DIM} pixels as one flat row")
    page = [computed for computed in map(_page_layer, layers[1:]) if computed is not None]
    dense = [layer for layer in page if layer["kind"] == "dense"]
    if not dense or dense[-1]["units"] != NUM_CLASSES:
        raise NotComputable(f"its last Dense layer does not give the {NUM_CLASSES} outputs")
    return page, sum(int(weight.size) for layer in layers for weight in layer.weights)


# --- The panel -------------------------------------------------------------------------------------------


def best_runs(results: Sequence[Mapping]) -> dict[str, Mapping]:
    """Configuration -> its finished run with the highest validation accuracy (the lowest repeat
    number among equals)."""
    best: dict[str, Mapping] = {}
    for result in sorted(results, key=lambda result: result.get("repeat", 0)):
        if result["status"] != "ok":
            continue
        held = best.get(result["name"])
        if held is None or (result.get("val_accuracy") or 0.0) > (held.get("val_accuracy") or 0.0):
            best[result["name"]] = result
    return best


@dataclasses.dataclass(frozen=True)
class PanelInputs:
    """What the panel is made from: the leaderboard's rows in order, each configuration's chosen
    run's folder, and the test digits with their labels."""

    rows: Sequence[Mapping]
    folders: Mapping[str, Path]  # configuration -> the folder of its best run by validation
    test_images: np.ndarray  # uint8 (N, 28, 28)
    test_labels: np.ndarray  # uint8 (N,)


def _networks(inputs: PanelInputs, budget: DrawingBudget) -> tuple[list[dict], list[str]]:
    """The networks the page computes, in leaderboard order, and a note for each one left out: one
    past the budget of a network (unless it is the best), or past the page's total."""
    networks, notes, total = [], [], 0
    for row in inputs.rows:
        name = row["name"]
        if name not in inputs.folders:
            notes.append(f"{name}: no finished run.")
            continue
        try:
            layers, parameters = page_network(saved_layers(inputs.folders[name] / "model.keras"))
        except ValueError as error:  # NotComputable, or a missing or damaged model.keras
            notes.append(f"{name}: left out, {error}.")
            continue
        # The best network (by validation) is drawn whatever its size, if the page's total allows:
        # it is the one a reader most wants to try, and records networks are past the budget.
        if parameters > budget.max_parameters and row.get("vs_best") != "best":
            notes.append(f"{name}: left out, its {parameters:,} parameters are past the page's budget of "
                         f"{budget.max_parameters:,} a network.")  # fmt: skip
        elif total + parameters > budget.max_total:
            notes.append(f"{name}: left out, its {parameters:,} parameters would take the page past its budget of "
                         f"{budget.max_total:,} in all.")  # fmt: skip
        else:
            total += parameters
            networks.append({"name": name, "parameters": parameters, "layers": layers})
    return networks, notes


def _test_digits(inputs: PanelInputs, best: str | None) -> list[dict]:
    """Up to DRAWING_TEST_DIGITS test digits the best network got wrong: pixels as base64 uint8,
    the true label and the best network's answer (from its run's test_predictions.npy)."""
    if best is None or best not in inputs.folders:
        return []
    try:
        predicted = np.load(inputs.folders[best] / "test_predictions.npy", allow_pickle=False)
    except (OSError, ValueError):
        return []
    if predicted.shape != inputs.test_labels.shape:
        return []
    wrong = np.flatnonzero(predicted != inputs.test_labels)[:DRAWING_TEST_DIGITS]
    return [{"pixels": base64.b64encode(inputs.test_images[index].astype(np.uint8).tobytes()).decode("ascii"),
             "label": int(inputs.test_labels[index]), "answer": int(predicted[index])} for index in wrong]  # fmt: skip


def drawing_panel(inputs: PanelInputs, budget: DrawingBudget = DrawingBudget()) -> str:
    """The "Draw a digit" panel's HTML: the canvas, the digit as the networks see it, each network's
    ten outputs in leaderboard order, a note for each network left out, the networks and the best
    network's mistakes as JSON, and the script that computes them (`report_files/drawing.js`)."""
    if not inputs.rows:
        return ""
    networks, notes = _networks(inputs, budget)
    best = next((row["name"] for row in inputs.rows if row.get("vs_best") == "best"), None)
    data = {"networks": networks, "digits": _test_digits(inputs, best), "best": best}
    megabytes = sum(network["parameters"] for network in networks) * 4 * 4 / 3 / 1e6  # float32 as base64
    size = f"The weights of these {len(networks)} networks take {megabytes:.1f} MB of this page."
    page = string.Template((REPORT_FILES / "drawing.html").read_text(encoding="utf-8"))
    return page.substitute(
        size=html.escape(size),
        notes="".join(f"<li>{html.escape(note)}</li>" for note in notes),
        data=json.dumps(data, separators=(",", ":")).replace("</", "<\\/"),
        script=(REPORT_FILES / "drawing.js").read_text(encoding="utf-8"),
    )
