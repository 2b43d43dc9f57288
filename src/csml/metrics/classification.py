"""Classification metrics for intent and sentiment models, namespaced and sliced by journey stage and channel.

:func:`compute_classification_metrics` turns a model's softmax outputs into the flat ``{prefix}/...``
dict that training logs to MLflow; :func:`per_class_report` gives the per-label table behind it.
Scores whose denominator is 0 are 0.0, as with scikit-learn's ``zero_division=0``, so no metric is NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

import numpy as np

from csml.metrics._core import (
    as_class_indices,
    as_group_names,
    as_labels,
    as_probs,
    confusion_matrix,
    per_class_scores,
)
from csml.metrics.calibration import expected_calibration_error, negative_log_likelihood
from csml.metrics.oos import oos_scores, predict_with_oos
from csml.records import Channel, JourneyStage


def _summary(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, slice_of_labels: bool = False
) -> dict[str, float]:
    """Accuracy, macro/weighted F1, macro recall and count of one (non-empty) set of predictions.

    Macro F1 averages over the labels that occur in ``y_true`` or ``y_pred`` (scikit-learn's default). For a
    slice (``slice_of_labels``: a stage or channel holding a few of the intents) it averages over the labels
    that occur in the slice's ``y_true`` only: a wrong prediction already lowers the true label's recall, and
    counting the wrongly predicted label (which has no support in the slice) as a zero-F1 class would drag
    the slice's score down by how many labels the slice lacks. Macro recall averages over the labels that
    occur in ``y_true`` (SemEval-2017 Task 4A's measure; scikit-learn's balanced accuracy).
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    _, recall, f1, support = per_class_scores(cm)
    seen = support > 0 if slice_of_labels else (support + cm.sum(axis=0)) > 0
    return {
        "accuracy": float(np.trace(cm) / y_true.shape[0]),
        "macro_f1": float(f1[seen].mean()),
        "macro_recall": float(recall[support > 0].mean()),
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "count": float(y_true.shape[0]),
    }


def slice_order(names: np.ndarray, members: type[Enum]) -> list[str]:
    """Slice values present in ``names``: known enum values in declaration order, then the rest sorted."""
    present = set(names.tolist())
    known = [member.value for member in members if member.value in present]
    return known + sorted(present - set(known))


def compute_classification_metrics(
    y_true: Any,
    probs: Any,
    labels: Sequence[str],
    *,
    prefix: str,
    stages: Sequence[str | JourneyStage] | None = None,
    channels: Sequence[str | Channel] | None = None,
    oos_label: str | None = None,
    oos_threshold: float | None = None,
    in_scope_scores: Any = None,
    y_pred: Any = None,
    n_bins: int = 15,
) -> dict[str, float]:
    """Scores a classifier's probabilities as flat, namespaced metrics ready to log.

    Always returns ``{prefix}/accuracy``, ``macro_f1``, ``macro_recall`` (the official SemEval-2017 Task 4A
    measure), ``weighted_f1``, ``ece`` and ``nll`` (of the raw probabilities) and ``count``. With
    ``stages`` or ``channels``, adds ``{prefix}/stage/<stage>/{accuracy,macro_f1,macro_recall,count}`` and
    ``{prefix}/channel/<channel>/...`` for every value present. With ``oos_label``, predictions come from
    :func:`~csml.metrics.oos.predict_with_oos` and ``in_scope_accuracy``, ``oos_recall``, ``oos_precision``,
    ``oos_f1`` (and ``oos_threshold`` when one is given) are added.

    Args:
        y_true: True class indices, shape ``(n_samples,)``.
        probs: Predicted probabilities, shape ``(n_samples, n_classes)``, rows summing to 1.
        labels: Label names in column order.
        prefix: Metric namespace, ``"val"`` or ``"test"``.
        stages: Journey stage of each sample, as strings or :class:`~csml.records.JourneyStage`.
        channels: Channel of each sample, as strings or :class:`~csml.records.Channel`.
        oos_label: Name of the out-of-scope label, if the label set has one.
        oos_threshold: Confidence threshold for OOS rejection (see
            :func:`~csml.metrics.oos.predict_with_oos`), typically from
            :func:`~csml.metrics.oos.choose_oos_threshold` on validation data.
        in_scope_scores: In-scope score of each sample compared with ``oos_threshold`` (higher = more in
            scope); None for the in-scope max probability.
        y_pred: Predicted class indices to score (a binary decision threshold's); None for the argmax, or
            the OOS rule when ``oos_label`` is given.
        n_bins: Number of confidence bins for the ECE.

    Returns:
        Metric name to value; counts are floats too.

    Raises:
        ValueError: On malformed or mismatched inputs, or ``oos_threshold`` without ``oos_label``.
    """
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(
            f"prefix must be a non-empty namespace without leading/trailing '/', like 'val'; found {prefix!r}"
        )
    if oos_threshold is not None and oos_label is None:
        raise ValueError("oos_threshold was given without oos_label; pass the name of the out-of-scope label")
    probs = as_probs(probs)
    n_samples, n_classes = probs.shape
    labels = as_labels(labels, n_classes=n_classes)
    y_true = as_class_indices(y_true, name="y_true", n_classes=n_classes, n_samples=n_samples)
    groups = {
        group: as_group_names(values, name=f"{group}s", n_samples=n_samples)
        for group, values in (("stage", stages), ("channel", channels))
        if values is not None
    }

    if y_pred is not None:
        y_pred = as_class_indices(y_pred, name="y_pred", n_classes=n_classes, n_samples=n_samples)
    elif oos_label is None:
        y_pred = probs.argmax(axis=1)
    else:
        y_pred = predict_with_oos(probs, labels, oos_label, oos_threshold, scores=in_scope_scores)

    summary = _summary(y_true, y_pred, n_classes)
    count = summary.pop("count")
    metrics = {f"{prefix}/{name}": value for name, value in summary.items()}
    metrics[f"{prefix}/ece"] = expected_calibration_error(probs, y_true, n_bins)
    metrics[f"{prefix}/nll"] = negative_log_likelihood(probs, y_true)
    metrics[f"{prefix}/count"] = count
    if oos_label is not None:
        for name, value in oos_scores(y_true, y_pred, labels, oos_label).items():
            metrics[f"{prefix}/{name}"] = value
        if oos_threshold is not None:
            metrics[f"{prefix}/oos_threshold"] = float(oos_threshold)

    members: dict[str, type[Enum]] = {"stage": JourneyStage, "channel": Channel}
    for group, names in groups.items():
        for value in slice_order(names, members[group]):
            mask = names == value
            scores = _summary(y_true[mask], y_pred[mask], n_classes, slice_of_labels=True)
            for name in ("accuracy", "macro_f1", "macro_recall", "count"):
                metrics[f"{prefix}/{group}/{value}/{name}"] = scores[name]
    return metrics


def per_class_report(y_true: Any, y_pred: Any, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support for every label, for error analysis and report tables.

    Args:
        y_true: True class indices, shape ``(n_samples,)``.
        y_pred: Predicted class indices, shape ``(n_samples,)``.
        labels: Label names in index order; every label gets a row, even with support 0.

    Returns:
        One dict per label, in label order: ``label`` (str), ``precision``, ``recall``, ``f1`` (floats, 0.0
        where undefined), ``support`` (int, the number of true samples) and ``absent`` (True when the split
        has no sample of the label, as when a user's test file lacks a label train has).
    """
    labels = as_labels(labels)
    n_classes = len(labels)
    y_true = as_class_indices(y_true, name="y_true", n_classes=n_classes)
    y_pred = as_class_indices(
        y_pred, name="y_pred", n_classes=n_classes, n_samples=y_true.shape[0], reference="y_true"
    )
    return report_rows(labels, *per_class_scores(confusion_matrix(y_true, y_pred, n_classes)))


def report_rows(
    labels: Sequence[str], precision: Any, recall: Any, f1: Any, support: Any
) -> list[dict[str, Any]]:
    """One per-class report row per label from per-label arrays; ``absent`` marks labels with no support."""
    return [
        {
            "label": label,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "absent": bool(support[i] == 0),
        }
        for i, label in enumerate(labels)
    ]
