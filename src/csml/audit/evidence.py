"""Evidence for answers of bots that return no contexts: passages of the audit's knowledge base retrieved
for each claim.

The knowledge base's passages are cut into the groundedness judge's windows (overlapping windows of whole
sentences, :class:`csml.judge.evidence.Knowledge`), so a retrieved passage is what the judge reads. A claim's
evidence is the ``top_k`` windows of a hybrid search: BM25 over words (exact names, numbers and terms) and
cosine similarity of MiniLM embeddings (paraphrases), merged by reciprocal-rank fusion (each list's rank r
adds 1 / (60 + r)). The question is searched with the claim (``question + claim``): a short claim such as
"Yes, within 30 days." needs it to find its section.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from csml.judge.baselines import content_words
from csml.judge.evidence import Knowledge
from csml.knowledge import KBEntry
from csml.models.encoder import Embedder

RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al. 2009)


@dataclass(frozen=True)
class Passage:
    """A window of a knowledge-base entry: the entry's id and title, and the text the judge reads."""

    entry_id: str
    title: str
    text: str


class BM25:
    """Okapi BM25 (k1 = 1.2, b = 0.75) over the content words of ``texts``."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        docs = [Counter(content_words(text)) for text in texts]
        lengths = np.array([sum(d.values()) for d in docs], dtype=np.float64)
        average = float(lengths.mean()) if len(docs) and lengths.mean() > 0 else 1.0
        postings: dict[str, list[tuple[int, int]]] = {}
        for index, doc in enumerate(docs):
            for word, count in doc.items():
                postings.setdefault(word, []).append((index, count))
        self.size = len(docs)
        self.index: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for word, hits in postings.items():
            rows = np.array([i for i, _ in hits])
            counts = np.array([c for _, c in hits], dtype=np.float64)
            idf = math.log(1 + (len(docs) - len(hits) + 0.5) / (len(hits) + 0.5))
            norm = counts + k1 * (1 - b + b * lengths[rows] / average)
            self.index[word] = (rows, idf * counts * (k1 + 1) / norm)

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(self.size)
        for word in set(content_words(query)):
            if word in self.index:
                rows, weights = self.index[word]
                out[rows] += weights
        return out


class KBEvidence:
    """Hybrid retrieval of knowledge-base windows for claims.

    Args:
        entries: The knowledge base (:mod:`csml.knowledge`).
        embedder: Embeds windows and queries (MiniLM).
        window_words: Window size: the judge's (:attr:`csml.judge.judge.GroundednessJudge.window_words`).
        top_k: Windows returned per claim.
    """

    def __init__(
        self, entries: Sequence[KBEntry], embedder: Embedder, window_words: int, top_k: int = 4
    ) -> None:
        if not entries:
            raise ValueError("the knowledge base is empty")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.passages = [
            Passage(entry.id, entry.title, window)
            for entry in entries
            for window in Knowledge([entry.passage], window_words).windows
        ]
        self.top_k = min(top_k, len(self.passages))
        self.embedder = embedder
        texts = [p.text for p in self.passages]
        self.bm25 = BM25(texts)
        self.vectors = embedder.encode(texts)

    def retrieve(self, queries: Sequence[str]) -> list[list[Passage]]:
        """The ``top_k`` passages for each query, best first."""
        if not queries:
            return []
        dense = self.vectors @ self.embedder.encode(list(queries)).T  # (passages, queries)
        depth = min(len(self.passages), 10 * self.top_k)
        found = []
        for q, query in enumerate(queries):
            fused: dict[int, float] = {}
            for ranking in (_top(dense[:, q], depth), _top(self.bm25.scores(query), depth, positive=True)):
                for rank, index in enumerate(ranking):
                    fused[index] = fused.get(index, 0.0) + 1.0 / (RRF_K + rank + 1)
            best = sorted(fused, key=lambda i: -fused[i])[: self.top_k]
            found.append([self.passages[i] for i in best])
        return found


def _top(scores: np.ndarray, depth: int, positive: bool = False) -> list[int]:
    """Indices of the ``depth`` highest scores, best first (only scores > 0 with ``positive``)."""
    top = np.argpartition(-scores, depth - 1)[:depth]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [int(i) for i in top if not positive or scores[i] > 0]
