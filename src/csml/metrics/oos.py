"""Out-of-scope (OOS) detection: rejecting utterances that match none of the intents a bot handles.

CLINC150 labels such utterances ``"oos"``. A classifier can predict the OOS class itself, and a
confidence threshold catches more: an utterance is predicted OOS when the classifier's argmax is the OOS
class, or when its highest raw softmax probability over the in-scope classes is below the threshold.
Probabilities are not renormalised over the in-scope classes, so probability mass the model gives to OOS
counts against confidence. Threshold 0 therefore reproduces the plain argmax, and a threshold chosen on
validation data over a grid containing 0 is never worse there than the argmax.

Any other in-scope score (higher = more in scope, e.g. a Mahalanobis distance from
:mod:`csml.models.components.oos_scorers`) replaces the probability when passed as ``scores``; its
threshold is then any real number, chosen among the validation scores themselves.
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


def _decompose(
    probs: np.ndarray, oos_index: int, scores: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Threshold-independent parts of the decision: in-scope argmax, its score, model says OOS.

    The score is ``scores`` when given, else the in-scope argmax's probability.
    """
    in_scope = probs.copy()
    in_scope[:, oos_index] = -np.inf
    in_scope_pred = in_scope.argmax(axis=1)
    if scores is None:
        in_scope_conf = in_scope[np.arange(probs.shape[0]), in_scope_pred]
    else:
        in_scope_conf = np.asarray(scores, dtype=np.float64)
        if in_scope_conf.shape != (probs.shape[0],) or not np.isfinite(in_scope_conf).all():
            raise ValueError(
                f"scores must be {probs.shape[0]} finite values, one per row of probs; "
                f"found shape {in_scope_conf.shape}"
            )
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
    probs: Any, labels: Sequence[str], oos_label: str, threshold: float | None = None, scores: Any = None
) -> np.ndarray:
    """Predicts class indices, sending low-confidence utterances to the OOS class.

    Args:
        probs: Predicted probabilities, shape ``(n_samples, n_classes)``, rows summing to 1.
        labels: Label names in column order; must contain ``oos_label``.
        oos_label: Name of the out-of-scope label (``"oos"``).
        threshold: Minimum in-scope score to accept an in-scope prediction: without ``scores``, the raw
            in-scope max probability, in [0, 1]. None (or 0 without ``scores``) gives the plain argmax
            over all classes.
        scores: In-scope score of each sample, shape ``(n_samples,)``, higher = more in scope; None for
            the in-scope max probability.

    Returns:
        Predicted class indices, shape ``(n_samples,)``: the OOS index where the argmax over all classes
        is OOS or the in-scope score is below ``threshold``, the in-scope argmax elsewhere.
    """
    probs = as_probs(probs)
    oos_index = _oos_index(as_labels(labels, n_classes=probs.shape[1]), oos_label)
    if threshold is None:
        return probs.argmax(axis=1)
    threshold = float(threshold) if scores is not None else _check_threshold(threshold)
    return _apply_threshold(_decompose(probs, oos_index, scores), oos_index, threshold)


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
    *,
    scores: Any = None,
    min_in_scope_acceptance: float | None = None,
) -> float:
    """Picks the OOS threshold on validation data, by one of three policies.

    - Balanced (the default): the mean of in-scope accuracy and OOS recall, so neither rejecting everything
      (OOS recall 1, in-scope accuracy 0) nor accepting everything wins by default.
    - ``min_oos_recall``: a product requirement ("catch at least this share of out-of-scope requests"):
      the smallest threshold whose validation OOS recall reaches it, which keeps in-scope accuracy as high
      as that requirement allows. If no threshold reaches it, the one with the highest OOS recall.
    - ``min_in_scope_acceptance``: a budget of escalated in-scope requests ("answer at least this share of
      in-scope requests"): the largest threshold that still accepts (does not predict OOS) that share of the
      validation in-scope utterances, so it rejects as much as the budget allows. It rests on the in-scope
      utterances only (3,000 in CLINC150's validation split, against 100 OOS), so it transfers to test data
      better than a recall target estimated on few OOS utterances. If none reaches it, the smallest.

    Ties go to the smaller threshold, the one that rejects fewer utterances.

    Args:
        probs: Validation probabilities, shape ``(n_samples, n_classes)``, rows summing to 1.
        y_true: Validation class indices, shape ``(n_samples,)``; must include in-scope samples, and OOS
            samples unless the policy is ``min_in_scope_acceptance``.
        labels: Label names in column order; must contain ``oos_label``.
        oos_label: Name of the out-of-scope label.
        grid: Thresholds to try; defaults to :data:`DEFAULT_THRESHOLD_GRID` for probabilities (each value
            must then lie in [0, 1]) and to every distinct value of ``scores`` when they are given.
        min_oos_recall: Validation OOS recall the threshold must reach, in [0, 1].
        scores: In-scope score of each sample (higher = more in scope); None for the in-scope max
            probability (see :func:`predict_with_oos`).
        min_in_scope_acceptance: Share of validation in-scope utterances to accept, in [0, 1].

    Returns:
        The chosen threshold, for :func:`predict_with_oos` on test data (with scores of the same kind).

    Raises:
        ValueError: On malformed inputs, an empty grid, both policies at once, or validation data lacking
            the samples the policy needs.
    """
    if min_oos_recall is not None and min_in_scope_acceptance is not None:
        raise ValueError("pass at most one of min_oos_recall and min_in_scope_acceptance")
    probs = as_probs(probs)
    labels = as_labels(labels, n_classes=probs.shape[1])
    oos_index = _oos_index(labels, oos_label)
    y_true = as_class_indices(y_true, name="y_true", n_classes=probs.shape[1], n_samples=probs.shape[0])
    n_oos = int((y_true == oos_index).sum())
    if n_oos == y_true.shape[0] or (n_oos == 0 and min_in_scope_acceptance is None):
        kind = "out-of-scope" if n_oos == 0 else "in-scope"
        raise ValueError(
            f"y_true has no {kind} samples, so no threshold can be tuned; use validation data "
            "with both in-scope and out-of-scope utterances"
        )
    parts = _decompose(probs, oos_index, scores)
    if grid is not None:
        thresholds = np.asarray(grid, dtype=np.float64)
    else:
        thresholds = DEFAULT_THRESHOLD_GRID if scores is None else parts[1]
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(
            f"grid must be a non-empty 1-D sequence of thresholds; found shape {thresholds.shape}"
        )
    if scores is None:
        for value in (thresholds.min(), thresholds.max()):
            _check_threshold(value, name="grid value")
    thresholds = np.unique(thresholds)  # sorted ascending, so argmax's first maximum is the smallest
    in_scope_accuracy = np.empty(thresholds.size)
    oos_recall = np.empty(thresholds.size)
    acceptance = np.empty(thresholds.size)
    true_in_scope = y_true != oos_index
    for i, threshold in enumerate(thresholds):
        y_pred = _apply_threshold(parts, oos_index, threshold)
        scores_i = _scores(y_true, y_pred, oos_index)
        in_scope_accuracy[i], oos_recall[i] = scores_i["in_scope_accuracy"], scores_i["oos_recall"]
        acceptance[i] = (y_pred[true_in_scope] != oos_index).mean()
    if min_in_scope_acceptance is not None:
        _check_threshold(min_in_scope_acceptance, name="min_in_scope_acceptance")
        reaching = np.flatnonzero(acceptance >= min_in_scope_acceptance)
        return float(thresholds[reaching[-1] if reaching.size else 0])
    if min_oos_recall is None:
        return float(thresholds[int(((in_scope_accuracy + oos_recall) / 2).argmax())])
    _check_threshold(min_oos_recall, name="min_oos_recall")
    reaching = np.flatnonzero(oos_recall >= min_oos_recall)
    return float(thresholds[reaching[0] if reaching.size else int(oos_recall.argmax())])
