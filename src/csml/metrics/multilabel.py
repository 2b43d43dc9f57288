"""Multi-label classification: per-label thresholds, label-set decisions and their metrics.

A multi-label model gives each label its own (sigmoid) probability. :func:`choose_label_thresholds` picks
each label's threshold on validation data, :func:`predict_label_sets` turns probabilities into label sets
(as 0/1 indicator rows), and :func:`compute_multilabel_metrics` scores them as flat, namespaced metrics sliced
by journey stage and channel, like :func:`~csml.metrics.classification.compute_classification_metrics` does
for one label per text. Scores whose denominator is 0 are 0.0, as with scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from csml.metrics._core import as_group_names, as_labels, safe_divide
from csml.metrics.classification import report_rows, slice_order
from csml.records import Channel, JourneyStage

DEFAULT_THRESHOLD = 0.5
"""The threshold of a label without validation positives, and of every label when none are chosen."""

SUMMARY = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "count")
"""The metrics of a split and of each of its stage and channel slices."""


def as_label_probs(probs: Any, *, n_labels: int | None = None) -> np.ndarray:
    """Returns ``probs`` as a float64 ``(n_samples, n_labels)`` array of per-label probabilities.

    Raises:
        ValueError: If the array is not 2-D and non-empty, or holds values outside [0, 1] (logits, say).
    """
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"probs must be a non-empty 2-D array (n_samples, n_labels); found shape {arr.shape}"
        )
    if n_labels is not None and arr.shape[1] != n_labels:
        raise ValueError(f"probs has {arr.shape[1]} columns for {n_labels} labels")
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
        raise ValueError("probs must hold probabilities in [0, 1] (sigmoid outputs, not logits)")
    return arr


def as_indicators(values: Any, *, name: str, n_labels: int, n_samples: int | None = None) -> np.ndarray:
    """Returns label sets given as 0/1 indicator rows ``(n_samples, n_labels)`` as an int64 array.

    Raises:
        ValueError: On a wrong shape or a value other than 0 and 1.
    """
    arr = np.asarray(values)
    shaped = arr.ndim == 2 and arr.shape[0] > 0 and arr.shape[1] == n_labels
    if not shaped or (n_samples is not None and arr.shape[0] != n_samples):
        raise ValueError(
            f"{name} must be 0/1 label indicators of shape (n_samples, {n_labels}); found shape {arr.shape}"
        )
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold 0 and 1 only (label absent / present)")
    return arr.astype(np.int64)


def choose_label_thresholds(probs: Any, y_true: Any) -> np.ndarray:
    """Each label's threshold (predicted when its probability reaches it) with the best F1 on validation data.

    The candidates are the label's validation probabilities; ties go to the highest threshold (the fewest
    positive predictions). A label without validation positives gets :data:`DEFAULT_THRESHOLD`.

    Args:
        probs: Validation probabilities, shape (n_samples, n_labels).
        y_true: Their 0/1 label indicators, same shape.

    Returns:
        One threshold per label, shape (n_labels,).
    """
    probs = as_label_probs(probs)
    y_true = as_indicators(y_true, name="y_true", n_labels=probs.shape[1], n_samples=probs.shape[0])
    thresholds = np.full(probs.shape[1], DEFAULT_THRESHOLD)
    for j in range(probs.shape[1]):
        positive = y_true[:, j].astype(bool)
        if not positive.any():
            continue
        order = np.argsort(-probs[:, j], kind="stable")
        scores, hits = probs[order, j], positive[order]
        # Predicting the top k rows: F1 = 2 tp / (k + positives), for every k at once.
        tp = np.cumsum(hits)
        f1 = 2 * tp / (np.arange(1, len(scores) + 1) + positive.sum())
        last_of_value = np.r_[scores[1:] != scores[:-1], True]  # cut only between distinct scores
        thresholds[j] = scores[int(np.argmax(np.where(last_of_value, f1, -1.0)))]
    return thresholds


def predict_label_sets(probs: Any, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """The label set of each row as 0/1 indicators: every label whose probability reaches its threshold, and
    for a row where none does, the single most probable label (a text always gets a label, as with one
    label per text).

    Args:
        probs: Per-label probabilities, shape (n_samples, n_labels).
        thresholds: One threshold per label.
    """
    probs = as_label_probs(probs)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (probs.shape[1],):
        raise ValueError(
            f"thresholds must hold one value per label ({probs.shape[1]}); found {thresholds.shape}"
        )
    predicted = (probs >= thresholds).astype(np.int64)
    none = predicted.sum(axis=1) == 0
    predicted[np.flatnonzero(none), probs[none].argmax(axis=1)] = 1
    return predicted


def _summary(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Micro-F1, macro-F1 over the labels with support, subset accuracy, Hamming loss and count."""
    true_positives = (y_true & y_pred).sum(axis=0)
    predicted, support = y_pred.sum(axis=0), y_true.sum(axis=0)
    f1 = safe_divide(2 * true_positives, predicted + support)
    return {
        "micro_f1": float(safe_divide(2 * true_positives.sum(), predicted.sum() + support.sum())),
        "macro_f1": float(f1[support > 0].mean()) if (support > 0).any() else 0.0,
        "subset_accuracy": float((y_true == y_pred).all(axis=1).mean()),
        "hamming_loss": float((y_true != y_pred).mean()),
        "count": float(y_true.shape[0]),
    }


def compute_multilabel_metrics(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[str],
    *,
    prefix: str,
    stages: Sequence[str | JourneyStage] | None = None,
    channels: Sequence[str | Channel] | None = None,
) -> dict[str, float]:
    """Scores predicted label sets against the true ones as flat, namespaced metrics ready to log.

    Returns ``{prefix}/micro_f1`` (F1 over every (text, label) decision), ``macro_f1`` (mean F1 of the
    labels with support in the split), ``subset_accuracy`` (exact set match), ``hamming_loss`` (share of
    wrong (text, label) decisions) and ``count``; with ``stages`` or ``channels``, the same under
    ``{prefix}/stage/<stage>/...`` and ``{prefix}/channel/<channel>/...`` (macro-F1 over the labels with
    support in the slice).

    Args:
        y_true: True label sets as 0/1 indicators, shape (n_samples, n_labels).
        y_pred: Predicted label sets, same shape (:func:`predict_label_sets`).
        labels: Label names in column order.
        prefix: Metric namespace, ``"val"`` or ``"test"``.
        stages: Journey stage of each sample.
        channels: Channel of each sample.
    """
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(
            f"prefix must be a non-empty namespace without leading/trailing '/', like 'val'; found {prefix!r}"
        )
    labels = as_labels(labels)
    y_true = as_indicators(y_true, name="y_true", n_labels=len(labels))
    y_pred = as_indicators(y_pred, name="y_pred", n_labels=len(labels), n_samples=y_true.shape[0])
    metrics = {f"{prefix}/{name}": value for name, value in _summary(y_true, y_pred).items()}
    members = {"stage": JourneyStage, "channel": Channel}
    for group, values in (("stage", stages), ("channel", channels)):
        if values is None:
            continue
        names = as_group_names(values, name=f"{group}s", n_samples=y_true.shape[0])
        for value in slice_order(names, members[group]):
            mask = names == value
            for name, score in _summary(y_true[mask], y_pred[mask]).items():
                metrics[f"{prefix}/{group}/{value}/{name}"] = score
    return metrics


def multilabel_per_class_report(
    y_true: Any, y_pred: Any, labels: Sequence[str], thresholds: Sequence[float] | None = None
) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support for every label, as
    :func:`~csml.metrics.classification.per_class_report` gives them for one label per text, plus each
    label's ``threshold`` when given."""
    labels = as_labels(labels)
    y_true = as_indicators(y_true, name="y_true", n_labels=len(labels))
    y_pred = as_indicators(y_pred, name="y_pred", n_labels=len(labels), n_samples=y_true.shape[0])
    true_positives = (y_true & y_pred).sum(axis=0)
    predicted, support = y_pred.sum(axis=0), y_true.sum(axis=0)
    precision = safe_divide(true_positives, predicted)
    recall = safe_divide(true_positives, support)
    f1 = safe_divide(2 * true_positives, predicted + support)
    rows = report_rows(labels, precision, recall, f1, support)
    if thresholds is not None:
        for row, threshold in zip(rows, thresholds, strict=True):
            row["threshold"] = float(threshold)
    return rows
