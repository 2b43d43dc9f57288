"""Judge-free groundedness baselines -- lexical overlap and embedding similarity of answer and knowledge --
and the figures every groundedness method is compared by in the benchmarks."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "for", "from", "has", "have", "i",
     "if", "in", "is", "it", "its", "of", "on", "or", "so", "that", "the", "their", "then", "there", "they",
     "this", "to", "was", "we", "were", "will", "with", "you", "your")
)  # fmt: skip


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def lexical_overlap(answers: Sequence[str], knowledge: Sequence[str]) -> np.ndarray:
    """Share of each answer's content words found in its knowledge (1.0: every word is in the knowledge)."""
    scores = []
    for answer, source in zip(answers, knowledge, strict=True):
        words, known = content_words(answer), set(content_words(source))
        scores.append(sum(w in known for w in words) / len(words) if words else 0.0)
    return np.array(scores, dtype=np.float32)


def embedding_similarity(answers: Sequence[str], knowledge: Sequence[str], encoder: object) -> np.ndarray:
    """Cosine similarity of answer and knowledge embeddings (``encoder.encode`` returns unit vectors)."""
    a = np.asarray(encoder.encode(list(answers), normalize_embeddings=True))
    k = np.asarray(encoder.encode(list(knowledge), normalize_embeddings=True))
    return (a * k).sum(axis=1)


def figures(scores: np.ndarray, supported: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold, balanced accuracy, AUROC and each class's F1 of calling ``scores >= threshold`` supported."""
    from sklearn.metrics import f1_score, roc_auc_score

    from csml.metrics.binary import balanced_accuracy

    predicted = scores >= threshold
    return {
        "threshold": round(float(threshold), 4),
        "balanced_accuracy": round(balanced_accuracy(predicted, supported), 4),
        "auroc": round(float(roc_auc_score(supported, scores)), 4),
        "f1_unsupported": round(float(f1_score(~supported, ~predicted)), 4),
        "f1_supported": round(float(f1_score(supported, predicted)), 4),
    }
