"""Out-of-scope (OOS) detection: rejecting utterances that match none of the intents a bot handles.

CLINC150 labels such utterances ``"oos"``. A classifier can predict the OOS class itself, and a
confidence threshold catches more: an utterance is predicted OOS when the classifier's argmax is the OOS
class, or when its highest raw softmax probability over the in-scope classes is below the threshold.
Probabilities are not renormalised over the in-scope classes, so probability mass the model gives to OOS
counts against confidence. Threshold 0 therefore reproduces the plain argmax, and a threshold chosen on
validation data over a grid containing 0 is never worse there than the argmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from csml.metrics._core import as_class_indices, as_labels, as_probs, safe_divide

DEFAULT_THRESHOLD_GRID = np.linspace(0.0, 1.0, 201)
"""Thresholds :func:`choose_oos_threshold` tries when no grid is given (steps of 0.005)."""


def _oos_index(labels: list[str], oos_label: str) -> int:
    if oos_label not in labels:
        raise ValueError(
            f"oos_label {oos_label!r} is not one of the {len(labels)} labels; pass the OOS label name"
        )
    if len(labels) < 2:
        raise ValueError("labels must hold at least one in-scope label besides oos_label")
    return labels.index(oos_label)


def _check_threshold(threshold: float, name: str = "threshold") -> float:
    value = float(threshold)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} is compared with a probability and must lie in [0, 1]; found {threshold!r}")
    return value


def _decompose(probs: np.ndarray, oos_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Threshold-independent parts of the decision: in-scope argmax, its probability, model says OOS."""
    in_scope = probs.copy()
    in_scope[:, oos_index] = -np.inf
    in_scope_pred = in_scope.argmax(axis=1)
    in_scope_conf = in_scope[np.arange(probs.shape[0]), in_scope_pred]
    model_says_oos = probs.argmax(axis=1) == oos_index
    return in_scope_pred, in_scope_conf, model_says_oos


def _apply_threshold(
    parts: tuple[np.ndarray, np.ndarray, np.ndarray], oos_index: int, threshold: float
) -> np.ndarray:
    in_scope_pred, in_scope_conf, model_says_oos = parts
    return np.where(model_says_oos | (in_scope_conf < threshold), oos_index, in_scope_pred)


def _scores(y_true: np.ndarray, y_pred: np.ndarray, oos_index: int) -> dict[str, float]:
    true_oos = y_true == oos_index
    pred_oos = y_pred == oos_index
    both = int((true_oos & pred_oos).sum())
    in_scope = ~true_oos
    return {
        "in_scope_accuracy": float(safe_divide((y_pred[in_scope] == y_true[in_scope]).sum(), in_scope.sum())),
        "oos_recall": float(safe_divide(both, true_oos.sum())),
        "oos_precision": float(safe_divide(both, pred_oos.sum())),
        "oos_f1": float(safe_divide(2 * both, true_oos.sum() + pred_oos.sum())),
    }


def predict_with_oos(
    probs: Any, labels: Sequence[str], oos_label: str, threshold: float | None = None
) -> np.ndarray:
    """Predicts class indices, sending low-confidence utterances to the OOS class.

    Args:
        probs: Predicted probabilities, shape ``(n_samples, n_classes)``, rows summing to 1.
        labels: Label names in column order; must contain ``oos_label``.
        oos_label: Name of the out-of-scope label (``"oos"``).
        threshold: Minimum raw in-scope max probability to accept an in-scope prediction, in [0, 1].
            None (or 0) gives the plain argmax over all classes.

    Returns:
        Predicted class indices, shape ``(n_samples,)``: the OOS index where the argmax over all classes
        is OOS or the in-scope max probability is below ``threshold``, the in-scope argmax elsewhere.
    """
    probs = as_probs(probs)
    oos_index = _oos_index(as_labels(labels, n_classes=probs.shape[1]), oos_label)
    if threshold is None:
        return probs.argmax(axis=1)
    return _apply_threshold(_decompose(probs, oos_index), oos_index, _check_threshold(threshold))


def oos_scores(y_true: Any, y_pred: Any, labels: Sequence[str], oos_label: str) -> dict[str, float]:
    """Scores predictions as in-scope classification plus binary OOS detection.

    Args:
        y_true: True class indices, shape ``(n_samples,)``.
        y_pred: Predicted class indices, shape ``(n_samples,)``.
        labels: Label names in index order; must contain ``oos_label``.
        oos_label: Name of the out-of-scope label.

    Returns:
        ``in_scope_accuracy`` (accuracy over samples whose true label is in scope), and ``oos_recall``,
        ``oos_precision`` and ``oos_f1`` with OOS as the positive class. A score whose denominator is 0
        (no in-scope samples, no true or no predicted OOS) is 0.0.
    """
    labels = as_labels(labels)
    oos_index = _oos_index(labels, oos_label)
    y_true = as_class_indices(y_true, name="y_true", n_classes=len(labels))
    y_pred = as_class_indices(
        y_pred, name="y_pred", n_classes=len(labels), n_samples=y_true.shape[0], reference="y_true"
    )
    return _scores(y_true, y_pred, oos_index)


def choose_oos_threshold(
    probs: Any,
    y_true: Any,
    labels: Sequence[str],
    oos_label: str,
    grid: Any = None,
    min_oos_recall: float | None = None,
) -> float:
    """Picks the OOS threshold on validation data.

    Without ``min_oos_recall`` the objective is the mean of in-scope accuracy and OOS recall, so neither
    rejecting everything (OOS recall 1, in-scope accuracy 0) nor accepting everything wins by default.
    With it, the operating point is a product requirement ("catch at least this share of out-of-scope
    requests"): the smallest threshold whose validation OOS recall reaches it, which keeps in-scope accuracy
    as high as that requirement allows (in-scope accuracy only falls as the threshold rises). If no
    threshold reaches it, the one with the highest OOS recall. Ties go to the smaller threshold, the one that
    rejects fewer utterances.

    Args:
        probs: Validation probabilities, shape ``(n_samples, n_classes)``, rows summing to 1.
        y_true: Validation class indices, shape ``(n_samples,)``; must include in-scope and OOS samples.
        labels: Label names in column order; must contain ``oos_label``.
        oos_label: Name of the out-of-scope label.
        grid: Thresholds to try, each in [0, 1]; defaults to :data:`DEFAULT_THRESHOLD_GRID`.
        min_oos_recall: Validation OOS recall the threshold must reach, in [0, 1]; None for the balanced
            objective.

    Returns:
        The chosen threshold, for :func:`predict_with_oos` on test data.

    Raises:
        ValueError: On malformed inputs, an empty grid, or validation data lacking OOS or in-scope samples.
    """
    probs = as_probs(probs)
    labels = as_labels(labels, n_classes=probs.shape[1])
    oos_index = _oos_index(labels, oos_label)
    y_true = as_class_indices(y_true, name="y_true", n_classes=probs.shape[1], n_samples=probs.shape[0])
    n_oos = int((y_true == oos_index).sum())
    if n_oos == 0 or n_oos == y_true.shape[0]:
        kind = "out-of-scope" if n_oos == 0 else "in-scope"
        raise ValueError(
            f"y_true has no {kind} samples, so no threshold can be tuned; use validation data "
            "with both in-scope and out-of-scope utterances"
        )
    thresholds = DEFAULT_THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(
            f"grid must be a non-empty 1-D sequence of thresholds; found shape {thresholds.shape}"
        )
    for value in (thresholds.min(), thresholds.max()):
        _check_threshold(value, name="grid value")
    thresholds = np.unique(thresholds)  # sorted ascending, so argmax's first maximum is the smallest
    parts = _decompose(probs, oos_index)
    in_scope_accuracy = np.empty(thresholds.size)
    oos_recall = np.empty(thresholds.size)
    for i, threshold in enumerate(thresholds):
        scores = _scores(y_true, _apply_threshold(parts, oos_index, threshold), oos_index)
        in_scope_accuracy[i], oos_recall[i] = scores["in_scope_accuracy"], scores["oos_recall"]
    if min_oos_recall is None:
        return float(thresholds[int(((in_scope_accuracy + oos_recall) / 2).argmax())])
    _check_threshold(min_oos_recall, name="min_oos_recall")
    reaching = np.flatnonzero(oos_recall >= min_oos_recall)
    return float(thresholds[reaching[0] if reaching.size else int(oos_recall.argmax())])
