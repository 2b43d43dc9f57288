"""PNG figures for run reports: confusion matrix, reliability diagram and per-slice bar charts.

Figures are drawn on matplotlib's Agg canvas through the object-oriented API, without pyplot, so they
need no display, leave pyplot's global state (and any notebook backend) alone, and are freed when they
go out of scope. matplotlib is imported inside the functions, so importing :mod:`csml.metrics` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from csml.metrics._core import as_class_indices, as_labels, confusion_matrix, safe_divide
from csml.metrics.calibration import expected_calibration_error, reliability_bins

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ANNOTATE_MAX_CLASSES = 30
"""Largest label count for which confusion-matrix cells are annotated with their values."""

DPI = 120


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png_path(path: str | Path) -> Path:
    """Checks the output path before any drawing, so a typo fails fast."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ValueError(f"plots are saved as PNG, so path must end in .png; found {str(out)!r}")
    return out


def _save(figure: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png", dpi=DPI)
    return out


def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[str],
    path: str | Path,
    normalize: bool = True,
    title: str | None = None,
) -> Path:
    """Draws a confusion matrix (true labels as rows) that stays legible for 77 to 151 intents.

    The figure grows with the number of labels, tick labels shrink, and cells are annotated with their
    values only up to :data:`ANNOTATE_MAX_CLASSES` labels.

    Args:
        y_true: True class indices, shape ``(n_samples,)``.
        y_pred: Predicted class indices, shape ``(n_samples,)``.
        labels: Label names in index order.
        path: Where to write the PNG (``.png``); parent folders are created.
        normalize: Show each row as fractions of that true label's samples (recall on the diagonal)
            instead of counts.
        title: Figure title; defaults to one saying whether values are normalised.

    Returns:
        The path written.
    """
    out = _png_path(path)
    labels = as_labels(labels)
    n_classes = len(labels)
    y_true = as_class_indices(y_true, name="y_true", n_classes=n_classes)
    y_pred = as_class_indices(
        y_pred, name="y_pred", n_classes=n_classes, n_samples=y_true.shape[0], reference="y_true"
    )
    counts = confusion_matrix(y_true, y_pred, n_classes)
    values = safe_divide(counts, counts.sum(axis=1, keepdims=True)) if normalize else counts

    side = max(6.0, 0.15 * n_classes + 3.0)  # about 0.15 inch per cell plus room for tick labels
    tick_size = 8.0 if n_classes <= ANNOTATE_MAX_CLASSES else 6.0
    figure = _new_figure(side + 1.0, side)
    axes = figure.add_subplot()
    image = axes.imshow(
        values, cmap="Blues", interpolation="nearest", vmin=0.0, vmax=1.0 if normalize else None
    )
    figure.colorbar(image, ax=axes, shrink=0.6, label="fraction of true label" if normalize else "count")
    ticks = np.arange(n_classes)
    axes.set_xticks(ticks, labels, rotation=90, fontsize=tick_size)
    axes.set_yticks(ticks, labels, fontsize=tick_size)
    axes.set_xlabel("Predicted label")
    axes.set_ylabel("True label")
    axes.set_title(
        title or ("Confusion matrix (rows normalised)" if normalize else "Confusion matrix (counts)")
    )
    if n_classes <= ANNOTATE_MAX_CLASSES:
        threshold = values.max() / 2
        for (row, col), value in np.ndenumerate(values):
            text = f"{value:.2f}" if normalize else str(int(value))
            colour = "white" if value > threshold else "black"
            axes.text(col, row, text, ha="center", va="center", fontsize=tick_size - 1, color=colour)
    return _save(figure, out)


def plot_reliability_diagram(probs: Any, y_true: Any, path: str | Path, n_bins: int = 15) -> Path:
    """Draws accuracy against confidence per bin, with the ECE in the title and bin sizes below.

    Bars under the diagonal mean over-confidence, bars above it under-confidence; empty bins are left out.

    Args:
        probs: Predicted probabilities, shape ``(n_samples, n_classes)``, rows summing to 1.
        y_true: True class indices, shape ``(n_samples,)``.
        path: Where to write the PNG (``.png``); parent folders are created.
        n_bins: Number of equal-width confidence bins.

    Returns:
        The path written.
    """
    out = _png_path(path)
    bins = reliability_bins(probs, y_true, n_bins)
    ece = expected_calibration_error(probs, y_true, n_bins)
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    width = bins.edges[1] - bins.edges[0]
    filled = bins.count > 0

    figure = _new_figure(6.0, 7.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    top.bar(
        centres[filled], bins.accuracy[filled], width=width, edgecolor="black", alpha=0.8, label="accuracy"
    )
    top.scatter(
        centres[filled], bins.confidence[filled], color="tab:red", zorder=3, s=12, label="mean confidence"
    )
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("Accuracy")
    figure.suptitle(f"Reliability diagram (ECE = {ece:.3f}, {n_bins} bins)")
    top.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, fontsize=8, frameon=False)
    bottom.bar(centres, bins.count, width=width, edgecolor="black", color="tab:grey")
    bottom.set_xlabel("Confidence (max probability)")
    bottom.set_ylabel("Samples")
    return _save(figure, out)


def plot_slice_bars(
    metrics: dict[str, float], prefix: str, group: str, metric: str, path: str | Path
) -> Path:
    """Draws one metric across the slices of a group, e.g. ``test/stage/<stage>/accuracy`` per stage.

    Slices appear in the order of ``metrics`` (journey-stage order for
    :func:`~csml.metrics.classification.compute_classification_metrics` output). Each bar is labelled with
    its value and, when ``{prefix}/{group}/<slice>/count`` is present, its sample count.

    Args:
        metrics: Flat metric dict as returned by ``compute_classification_metrics``.
        prefix: Metric namespace (``"test"``).
        group: Slice group (``"stage"`` or ``"channel"``).
        metric: Per-slice metric name (``"accuracy"``, ``"macro_f1"``).
        path: Where to write the PNG (``.png``); parent folders are created.

    Returns:
        The path written.

    Raises:
        ValueError: If ``metrics`` holds no ``{prefix}/{group}/<slice>/{metric}`` entry.
    """
    out = _png_path(path)
    head = f"{prefix}/{group}/"
    slices: list[str] = []
    for key in metrics:
        if not key.startswith(head):
            continue
        name, _, tail = key[len(head) :].rpartition("/")
        if name and "/" not in name and tail == metric:
            slices.append(name)
    if not slices:
        available = sorted({key.rsplit("/", 1)[-1] for key in metrics if key.startswith(head)})
        raise ValueError(
            f"metrics has no '{head}<slice>/{metric}' entries; metrics under {head!r}: {available or 'none'}"
        )
    values = [metrics[f"{head}{name}/{metric}"] for name in slices]
    bar_labels = []
    for name, value in zip(slices, values, strict=True):
        count = metrics.get(f"{head}{name}/count")
        bar_labels.append(f"{value:.3f}" if count is None else f"{value:.3f}\nn={int(count)}")

    figure = _new_figure(max(6.0, 0.9 * len(slices) + 2.0), 4.5)
    axes = figure.add_subplot()
    bars = axes.bar(slices, values, color="tab:blue", edgecolor="black")
    axes.bar_label(bars, labels=bar_labels, fontsize=8, padding=2)
    axes.margins(y=0.2)
    axes.set_ylabel(metric)
    axes.set_xlabel(group)
    axes.set_title(f"{prefix} {metric} by {group}")
    axes.tick_params(axis="x", labelrotation=30)
    return _save(figure, out)
