"""How figures tell configurations apart: a colour and a marker each, and number labels that do
not sit on one another.

Matplotlib's default cycle has ten colours, so an eleventh configuration took the first one's
colour; a sweep of 13 read "1/11, 2/12, 3/13". Here every configuration gets its own colour (tab20's
twenty, dark shades first, then evenly spaced hues) and its own colour-and-marker pair, and point
labels are placed greedily where they overlap neither another label nor a point.
"""

import dataclasses
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")
LINE_STYLES = ("-", "--", "-.", ":")


@dataclasses.dataclass(frozen=True)
class Style:
    """One configuration's look in every figure of a run."""

    color: tuple[float, float, float, float]
    marker: str
    line_style: str


def configuration_colors(count: int) -> list[tuple[float, float, float, float]]:
    """`count` distinct colours: tab20's dark shades, then its light ones; past twenty, hues spaced
    evenly around the colour wheel."""
    if count <= 20:
        tab20 = matplotlib.colormaps["tab20"].colors
        ordered = list(tab20[0::2]) + list(tab20[1::2])  # dark shades first: the first ten read best
        return [(*ordered[index], 1.0) for index in range(count)]
    hues = matplotlib.colormaps["hsv"]
    return [tuple(hues(index / count)) for index in range(count)]


def configuration_styles(count: int) -> list[Style]:
    """A colour, a marker and a line style for each of `count` configurations; no two share a colour,
    and no two share a (marker, line style) pair among the first 48."""
    return [
        Style(color, MARKERS[index % len(MARKERS)], LINE_STYLES[index // len(MARKERS) % len(LINE_STYLES)])
        for index, color in enumerate(configuration_colors(count))
    ]


def _overlap(box: np.ndarray, boxes: np.ndarray) -> float:
    """The area `box` (x0, y0, x1, y1) shares with each of `boxes`, summed."""
    if len(boxes) == 0:
        return 0.0
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    return float(np.sum(width * height))


# Where a label may go from its point, in points: right, above, left, below, the diagonals, then
# farther out on the same directions.
_DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, 1), (-1, -1), (1, -1))
_RADII = (9, 15, 23, 33)


def _axes_sizes_points(axes: Sequence) -> list[tuple[float, float]]:
    """Each axes' width and height in points, once the figure's layout engine (if any) has placed
    them: constrained layout resizes the axes, which moves the points apart or together. The
    layout runs once for all of them, and is then kept."""
    figure = axes[0].get_figure(root=True)
    if figure.get_layout_engine() is not None:
        figure.get_layout_engine().execute(figure)
        # Frozen where it was measured: the labels stay out of the layout, so saving need not run it
        # again (it costs about as much as the rest of the figure's drawing).
        figure.set_layout_engine("none")
    width, height = figure.get_size_inches()
    return [(ax.get_position().width * width * 72, ax.get_position().height * height * 72) for ax in axes]


def place_labels(labelled: Mapping[object, Sequence[tuple[tuple[float, float], str]]], fontsize: float = 8) -> None:
    """Annotate each point (data coordinates) of each axes with its label, each where it overlaps
    the fewest labels already placed and points, within the axes; a label moved away from its point
    gets a thin line to it. Call it after the axes' scales and limits, and the figure's other parts
    (its legend), are final: it runs the layout to measure the axes.

    Args:
        labelled: axes -> its (point, label) pairs; the axes of one figure.
    """
    labelled = {ax: pairs for ax, pairs in labelled.items() if pairs}
    if not labelled:
        return
    for ax in labelled:
        ax.autoscale_view()
    for (ax, pairs), size in zip(labelled.items(), _axes_sizes_points(list(labelled)), strict=True):
        _place(ax, [point for point, _ in pairs], [label for _, label in pairs], size, fontsize)


def _place(ax, points, labels, size: tuple[float, float], fontsize: float) -> None:
    """Place one axes' labels greedily, in order, in the axes' `size` (points)."""
    width, height = size
    to_axes = ax.transData + ax.transAxes.inverted()  # limits and scale only: not moved by the layout
    anchors = to_axes.transform(np.asarray(points, dtype=float).reshape(-1, 2)) * (width, height)
    dot = 7.5  # a ringed point (Pareto front) is 15 points across
    taken = [np.array([x - dot, y - dot, x + dot, y + dot]) for x, y in anchors]
    for (x, y), label in zip(anchors, labels, strict=True):
        text_width, text_height = 0.62 * fontsize * len(label), 1.15 * fontsize
        best = None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                left = x + dx * radius - (text_width if dx < 0 else text_width / 2 if dx == 0 else 0)
                bottom = y + dy * radius - (text_height if dy < 0 else text_height / 2 if dy == 0 else 0)
                box = np.array([left, bottom, left + text_width, bottom + text_height])
                outside = max(0, -box[0]) + max(0, box[2] - width) + max(0, -box[1]) + max(0, box[3] - height)
                cost = _overlap(box, np.array(taken)) + 50 * outside + radius / 100
                if best is None or cost < best[0]:
                    best = (cost, box, radius)
            if best[0] < 1:
                break
        _, box, radius = best
        taken.append(box)
        ax.annotate(
            label, (x / width, y / height), xycoords="axes fraction", xytext=(box[0] - x, box[1] - y),
            textcoords="offset points", fontsize=fontsize, ha="left", va="bottom",
            arrowprops={"arrowstyle": "-", "color": "0.5", "linewidth": 0.6} if radius > _RADII[0] else None,
        ).set_in_layout(False)  # fmt: skip
