"""Binary decisions on a score: balanced accuracy, and the threshold that maximises it on validation data."""

from __future__ import annotations

import numpy as np


def balanced_accuracy(predicted: np.ndarray, positive: np.ndarray) -> float:
    """Mean of the recall of each class present in ``positive`` (0.5 for a constant prediction)."""
    predicted, positive = np.asarray(predicted, bool), np.asarray(positive, bool)
    recalls = [(predicted[positive == c] == c).mean() for c in (True, False) if (positive == c).any()]
    return float(np.mean(recalls))


def choose_decision_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """The threshold on ``scores`` (positive when ``score >= threshold``) with the best balanced accuracy.

    Ties go to the lowest such threshold. Meant for validation data; the result is then applied unchanged
    to test data.
    """
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, bool)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_positive = scores[order], positive[order]
    n_pos, n_neg = max(int(positive.sum()), 1), max(int((~positive).sum()), 1)
    # Predicting positive for the top k scores: true positives and true negatives for every k at once.
    tp = np.cumsum(sorted_positive)
    tn = n_neg - np.cumsum(~sorted_positive)
    last_of_value = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]  # cut only between distinct scores
    value = np.where(last_of_value, (tp / n_pos + tn / n_neg) / 2, -1.0)
    best = int(np.argmax(value))
    if value[best] < 0.5:  # predicting everything negative (k = 0) scores 0.5
        return float(np.nextafter(sorted_scores[0], np.inf))
    return float(sorted_scores[best])
