"""Calibration metrics: how far a classifier's confidence can be trusted as a probability of being right.

Confidence is the maximum softmax probability and a prediction is its argmax, as in Guo et al. (2017),
"On Calibration of Modern Neural Networks".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from csml.metrics._core import as_class_indices, as_probs, safe_divide

NLL_EPSILON = 1e-15
"""Floor on the true-class probability in :func:`negative_log_likelihood`, so a zero gives a finite loss."""


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics behind a reliability diagram and the expected calibration error.

    Bin ``m`` covers confidences in ``(edges[m], edges[m + 1]]``; the first bin also takes confidence 0.

    Attributes:
        edges: Bin edges, shape ``(n_bins + 1,)``, equally spaced over [0, 1].
        confidence: Mean confidence of the samples in each bin; 0.0 for empty bins.
        accuracy: Fraction of the samples in each bin whose argmax is the true class; 0.0 for empty bins.
        count: Number of samples in each bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def reliability_bins(probs: Any, y_true: Any, n_bins: int = 15) -> ReliabilityBins:
    """Groups predictions into equal-width confidence bins and measures accuracy in each.

    Args:
        probs: Predicted probabilities, shape ``(n_samples, n_classes)``, rows summing to 1.
        y_true: True class indices, shape ``(n_samples,)``.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        The bin edges and each bin's mean confidence, accuracy and sample count.

    Raises:
        ValueError: On malformed inputs or ``n_bins < 1``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; found {n_bins!r}")
    probs = as_probs(probs)
    y_true = as_class_indices(y_true, name="y_true", n_classes=probs.shape[1], n_samples=probs.shape[0])
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left" makes bins right-closed, (lo, hi], as in Guo et al.; confidence 0 joins the first bin.
    bin_index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(bin_index, minlength=n_bins)
    return ReliabilityBins(
        edges=edges,
        confidence=safe_divide(np.bincount(bin_index, weights=confidence, minlength=n_bins), count),
        accuracy=safe_divide(np.bincount(bin_index, weights=correct, minlength=n_bins), count),
        count=count,
    )


def expected_calibration_error(probs: Any, y_true: Any, n_bins: int = 15) -> float:
    """Expected calibration error: the sample-weighted mean gap between accuracy and confidence per bin.

    ``ECE = sum_m |B_m| / n * |acc(B_m) - conf(B_m)|`` over ``n_bins`` equal-width confidence bins
    (Guo et al., 2017). 0.0 means confidence matches accuracy in every bin.

    Args:
        probs: Predicted probabilities, shape ``(n_samples, n_classes)``, rows summing to 1.
        y_true: True class indices, shape ``(n_samples,)``.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        The ECE, in [0, 1].
    """
    bins = reliability_bins(probs, y_true, n_bins)
    gaps = np.abs(bins.accuracy - bins.confidence)
    return float((bins.count * gaps).sum() / bins.count.sum())


def negative_log_likelihood(probs: Any, y_true: Any) -> float:
    """Mean negative log probability of the true class (cross-entropy), a proper scoring rule.

    The true-class probability is floored at :data:`NLL_EPSILON` so one confident mistake gives a large
    but finite value.

    Args:
        probs: Predicted probabilities, shape ``(n_samples, n_classes)``, rows summing to 1.
        y_true: True class indices, shape ``(n_samples,)``.

    Returns:
        The mean NLL in nats.
    """
    probs = as_probs(probs)
    y_true = as_class_indices(y_true, name="y_true", n_classes=probs.shape[1], n_samples=probs.shape[0])
    true_class = probs[np.arange(probs.shape[0]), y_true]
    return float(-np.log(np.clip(true_class, NLL_EPSILON, 1.0)).mean())
