"""Binary decisions on a score: balanced accuracy, and the threshold that maximises it on validation data."""

from __future__ import annotations

from collections.abc import Sequence

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


def answer_level(
    scores: np.ndarray, positive: np.ndarray, answers: Sequence[str | None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sharing an answer id merged into one decision, as a judge decides an answer of several claims:
    its score the weakest claim's, positive only when every claim is. Returns ``(scores, positive, first
    row of each decision)``; rows with answer ``None`` stay decisions of their own."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, bool)
    index: dict[str, int] = {}
    first, merged_scores, merged_positive = [], [], []
    for row, answer in enumerate(answers):
        if answer is not None and answer in index:
            at = index[answer]
            merged_scores[at] = min(merged_scores[at], scores[row])
            merged_positive[at] = merged_positive[at] and positive[row]
            continue
        if answer is not None:
            index[answer] = len(first)
        first.append(row)
        merged_scores.append(scores[row])
        merged_positive.append(bool(positive[row]))
    return np.array(merged_scores), np.array(merged_positive, bool), np.array(first, dtype=np.int64)


def choose_domain_balanced_threshold(
    scores: np.ndarray,
    positive: np.ndarray,
    domains: Sequence[str],
    answers: Sequence[str | None] | None = None,
) -> float:
    """The threshold with the best *mean over domains* of the balanced accuracy, so that no one domain's
    size or score scale decides it (a threshold meant to transfer to domains not seen).

    Args:
        scores: Validation scores (positive when ``score >= threshold``).
        positive: Their true classes.
        domains: Each row's domain (its source); every domain counts the same.
        answers: Optional answer id per row: rows of one answer are one decision (:func:`answer_level`).

    Ties go to the lowest such threshold. A domain with one class only counts its one recall.
    """
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, bool)
    domains = np.asarray(domains, dtype=object)
    if answers is not None:
        scores, positive, first = answer_level(scores, positive, answers)
        domains = domains[first]
    candidates = np.r_[np.unique(scores), np.nextafter(scores.max(), np.inf)]
    total = np.zeros(len(candidates))
    names = sorted(set(domains.tolist()))
    for name in names:
        mine = domains == name
        recalls = []
        for cls in (True, False):
            values = np.sort(scores[mine & (positive == cls)])
            if len(values):
                below = np.searchsorted(values, candidates, side="left") / len(values)  # share < threshold
                recalls.append(1.0 - below if cls else below)
        total += np.mean(recalls, axis=0)
    return float(candidates[int(np.argmax(total))])
