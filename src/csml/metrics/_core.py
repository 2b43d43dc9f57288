"""Input validation and confusion-matrix arithmetic shared by the metric and plot modules.

Metrics are computed from one confusion matrix with numpy rather than through ``sklearn.metrics``, whose
import alone takes over a second; the results equal scikit-learn's with ``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

import numpy as np

ROW_SUM_TOLERANCE = 1e-3
"""How far a row of ``probs`` may sum from 1 (float16/bfloat16 softmax outputs drift by ~1e-4)."""


def as_probs(probs: Any, *, name: str = "probs") -> np.ndarray:
    """Returns ``probs`` as a float64 ``(n_samples, n_classes)`` array after checking it holds probabilities.

    Raises:
        ValueError: If the array is not 2-D and non-empty, holds non-finite or negative values, or a row
            does not sum to 1 (for example because logits were passed instead of softmax outputs).
    """
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D array of shape (n_samples, n_classes); found shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values; found {int((~np.isfinite(arr)).sum())}")
    if (arr < 0).any():
        raise ValueError(f"{name} holds negative values (min {arr.min():.6g}); pass softmax probabilities")
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
    if bad.size:
        raise ValueError(
            f"{name} rows must sum to 1 (softmax probabilities, not logits); row {int(bad[0])} sums to "
            f"{sums[bad[0]]:.6g}; {bad.size} of {arr.shape[0]} rows are off by more than {ROW_SUM_TOLERANCE}"
        )
    return arr


def as_class_indices(
    values: Any, *, name: str, n_classes: int, n_samples: int | None = None, reference: str = "probs"
) -> np.ndarray:
    """Returns ``values`` as a 1-D int64 array of class indices in ``[0, n_classes)``.

    Args:
        values: Class indices, one per sample.
        name: Argument name used in error messages (``"y_true"``).
        n_classes: Number of classes the indices refer to.
        n_samples: Required length, or None for any non-zero length.
        reference: Name of the argument ``n_samples`` comes from, for error messages.

    Raises:
        ValueError: On a wrong shape or length, or an index out of range.
        TypeError: If the values are not integers.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices; found shape {arr.shape}")
    if n_samples is None and arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; at least one sample is needed")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} samples but {reference} has {n_samples}; they must describe the same "
            "samples in the same order"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class indices; found dtype {arr.dtype} (use .astype(int))")
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high >= n_classes:
        bad = low if low < 0 else high
        raise ValueError(f"{name} holds class indices in [0, {n_classes}) (one per label); found {bad}")
    return arr.astype(np.int64, copy=False)


def as_labels(labels: Sequence[str], *, n_classes: int | None = None) -> list[str]:
    """Returns ``labels`` as a list of unique names, one per class.

    Raises:
        ValueError: If the count differs from ``n_classes`` or a name repeats.
    """
    names = [str(label) for label in labels]
    if n_classes is not None and len(names) != n_classes:
        raise ValueError(
            f"labels has {len(names)} names but probs has {n_classes} columns; pass one label per class, "
            "in column order"
        )
    if not names:
        raise ValueError("labels is empty; pass one label name per class")
    seen: set[str] = set()
    for label in names:
        if label in seen:
            raise ValueError(f"labels must be unique; {label!r} appears more than once")
        seen.add(label)
    return names


def as_group_names(values: Sequence[Any], *, name: str, n_samples: int) -> np.ndarray:
    """Returns slice values (journey stages, channels) as a string array usable in metric names.

    Enum members (:class:`~csml.records.JourneyStage`, :class:`~csml.records.Channel`) become their values.

    Raises:
        ValueError: If the length differs from ``n_samples`` or a value is empty or contains ``/``.
    """
    names = [value.value if isinstance(value, Enum) else str(value) for value in values]
    if len(names) != n_samples:
        raise ValueError(
            f"{name} has {len(names)} values but probs has {n_samples} samples; pass one value per sample"
        )
    for value in set(names):
        if not value or "/" in value:
            raise ValueError(
                f"{name} values become metric-name parts and must be non-empty without '/'; found {value!r}"
            )
    return np.asarray(names, dtype=str)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns, for validated indices."""
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise division giving 0.0 where the denominator is 0 (scikit-learn's ``zero_division=0``)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)


def per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix (0.0 where undefined)."""
    true_positives = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = safe_divide(true_positives, predicted)
    recall = safe_divide(true_positives, support)
    f1 = safe_divide(2 * true_positives, predicted + support)
    return precision, recall, f1, support
