"""Metrics of response models: retrieval (recall@k, MRR) and offline reply quality against a reference.

Retrieval metrics take the rank of the best-ranked correct response of each query (:func:`gold_ranks`).
Reply-quality metrics are classes in the style of ``csml.metrics``: dependencies (an embedder) injected in
the constructor, inputs validated, a pure scoring function, a :class:`ResponseScore` with value and reason,
and a ``direction`` and optional ``threshold``. All run offline: BLEU is sacrebleu's, ROUGE-L
``rouge_score``'s, embedding similarity uses whatever encoder is injected (the packaged MiniLM in runs).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from csml.response.placeholders import find_placeholders, slot_name, to_slot_tokens

# ---------------------------------------------------------------------------------------------- retrieval


def gold_ranks(scores: np.ndarray, gold: Sequence[Iterable[int]]) -> np.ndarray:
    """1-based rank of the best-scored correct candidate of each query.

    Args:
        scores: (queries, candidates) similarity matrix.
        gold: Per query, the indices of its correct candidates (a query repeated with several replies has
            several). Ties with the best gold score count in the query's favour (rank = 1 + number of
            candidates scored strictly higher).
    """
    if len(gold) != len(scores):
        raise ValueError(f"gold has {len(gold)} entries for {len(scores)} queries")
    ranks = np.zeros(len(scores), dtype=np.int64)
    for i, indices in enumerate(gold):
        indices = list(indices)
        if not indices:
            raise ValueError(f"query {i} has no correct candidate in the bank")
        best = scores[i, indices].max()
        ranks[i] = 1 + int((scores[i] > best).sum())
    return ranks


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Fraction of queries whose correct response is among the top ``k``."""
    return float((np.asarray(ranks) <= k).mean()) if len(ranks) else 0.0


def mean_reciprocal_rank(ranks: np.ndarray) -> float:
    """Mean of 1 / rank of the correct response."""
    return float((1.0 / np.asarray(ranks, dtype=np.float64)).mean()) if len(ranks) else 0.0


def retrieval_metrics(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """``recall_at_<k>`` for each k and ``mrr`` (MLflow metric names cannot hold ``@``)."""
    out = {f"recall_at_{k}": recall_at_k(ranks, k) for k in ks}
    out["mrr"] = mean_reciprocal_rank(ranks)
    return out


# -------------------------------------------------------------------------------------- reply quality

TOKEN = re.compile(r"\[[a-z0-9_]+\]|\w+")


def tokens(text: str) -> list[str]:
    """Lower-case word tokens, each placeholder one typed slot token (``{{Order Number}}`` -> ``[order_number]``)."""
    return TOKEN.findall(to_slot_tokens(text).lower())


@dataclass(frozen=True)
class PlaceholderCheck:
    """Placeholders of a reference kept or dropped by a candidate, and those the candidate invented.

    Names compare by slot (case and spacing ignored).
    """

    kept: tuple[str, ...]
    missing: tuple[str, ...]
    invented: tuple[str, ...]


def placeholder_check(candidate: str, reference: str) -> PlaceholderCheck:
    """Which of ``reference``'s placeholders ``candidate`` keeps or misses, and which it adds."""
    ref = {slot_name(name): name for name in find_placeholders(reference)}
    cand = {slot_name(name): name for name in find_placeholders(candidate)}
    return PlaceholderCheck(
        kept=tuple(name for slot, name in ref.items() if slot in cand),
        missing=tuple(name for slot, name in ref.items() if slot not in cand),
        invented=tuple(name for slot, name in cand.items() if slot not in ref),
    )


@dataclass(frozen=True)
class ResponseScore:
    """A response metric's value over a set of replies and a one-line explanation (corpus level; an audit
    metric's per-sample result is :class:`csml.schemas.MetricResult`)."""

    value: float
    reason: str = ""


class ResponseMetric(ABC):
    """A corpus-level score of candidate replies against reference replies.

    Contract for subclasses: set ``name`` and ``direction`` (``"higher"`` or ``"lower"`` is better) and
    implement :meth:`_score` over validated, equally long, non-empty lists of strings.

    Args:
        threshold: Optional pass mark, compared in the metric's direction by :meth:`passed`.
    """

    name: str = ""
    direction: str = "higher"
    needs_reference: bool = True

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold

    def score(self, candidates: Sequence[str], references: Sequence[str] | None = None) -> ResponseScore:
        """Validates the inputs and scores them.

        Raises:
            ValueError: Inputs are empty, not strings, of different lengths, or a reference is missing.
        """
        candidates = list(candidates)
        if not candidates:
            raise ValueError(f"{self.name}: no candidate replies to score")
        for i, text in enumerate(candidates):
            if not isinstance(text, str):
                raise ValueError(f"{self.name}: candidate {i} must be a string, got {type(text).__name__}")
        if self.needs_reference:
            if references is None:
                raise ValueError(f"{self.name} compares with references: pass one reference per candidate")
            references = list(references)
            if len(references) != len(candidates):
                raise ValueError(
                    f"{self.name}: {len(candidates)} candidates but {len(references)} references"
                )
            for i, text in enumerate(references):
                if not isinstance(text, str):
                    raise ValueError(
                        f"{self.name}: reference {i} must be a string, got {type(text).__name__}"
                    )
        return self._score(candidates, list(references) if references is not None else None)

    @abstractmethod
    def _score(self, candidates: list[str], references: list[str] | None) -> ResponseScore: ...

    def passed(self, result: ResponseScore) -> bool | None:
        """Whether ``result`` meets the threshold (``None`` without one)."""
        if self.threshold is None:
            return None
        return (
            result.value >= self.threshold if self.direction == "higher" else result.value <= self.threshold
        )


class Bleu(ResponseMetric):
    """Corpus BLEU (sacrebleu, 0-100, its default 13a tokenisation)."""

    name = "bleu"

    def _score(self, candidates: list[str], references: list[str] | None) -> ResponseScore:
        import sacrebleu

        bleu = sacrebleu.corpus_bleu(candidates, [references])
        return ResponseScore(float(bleu.score), str(bleu))


class RougeL(ResponseMetric):
    """Mean ROUGE-L F-measure (``rouge_score``, longest common subsequence), 0-1."""

    name = "rouge_l"

    def _score(self, candidates: list[str], references: list[str] | None) -> ResponseScore:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rougeL"])
        values = [scorer.score(r, c)["rougeL"].fmeasure for c, r in zip(candidates, references, strict=True)]
        return ResponseScore(float(np.mean(values)), f"mean of {len(values)} ROUGE-L F1")


class EmbeddingSimilarity(ResponseMetric):
    """Mean cosine similarity of candidate and reference embeddings.

    Args:
        embed: Texts -> (n, dim) embeddings (unit rows or not; they are normalised here), e.g. the ``encode``
            of a :class:`csml.models.encoder.CachedEmbedder` over the packaged MiniLM.
        threshold: Optional pass mark.
    """

    name = "embedding_similarity"

    def __init__(self, embed: Callable[[list[str]], np.ndarray], threshold: float | None = None) -> None:
        super().__init__(threshold)
        self.embed = embed

    def _score(self, candidates: list[str], references: list[str] | None) -> ResponseScore:
        a, b = np.asarray(self.embed(candidates)), np.asarray(self.embed(references))
        a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
        b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
        return ResponseScore(float((a * b).sum(1).mean()), f"mean cosine over {len(a)} pairs")


class DistinctN(ResponseMetric):
    """Distinct n-grams over all n-grams of the candidates (diversity; no reference needed), 0-1."""

    needs_reference = False

    def __init__(self, n: int = 1, threshold: float | None = None) -> None:
        super().__init__(threshold)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.name = f"distinct_{n}"

    def _score(self, candidates: list[str], references: list[str] | None) -> ResponseScore:
        grams = [
            tuple(words[i : i + self.n])
            for words in map(tokens, candidates)
            for i in range(len(words) - self.n + 1)
        ]
        if not grams:
            return ResponseScore(0.0, f"no {self.n}-grams")
        return ResponseScore(len(set(grams)) / len(grams), f"{len(set(grams))} distinct of {len(grams)}")


class Length(ResponseMetric):
    """Mean number of tokens of the candidates (the reason gives the references' mean for comparison)."""

    name = "length"
    direction = "lower"
    needs_reference = False

    def _score(self, candidates: list[str], references: list[str] | None) -> ResponseScore:
        mean = float(np.mean([len(tokens(c)) for c in candidates]))
        ref = f"; references {np.mean([len(tokens(r)) for r in references]):.1f}" if references else ""
        return ResponseScore(mean, f"candidates {mean:.1f} tokens{ref}")


class PlaceholderRecall(ResponseMetric):
    """Share of the references' placeholders the candidates keep (micro-averaged; 1.0 if there are none)."""

    name = "placeholder_recall"

    def _score(self, candidates: list[str], references: list[str] | None) -> ResponseScore:
        checks = [placeholder_check(c, r) for c, r in zip(candidates, references, strict=True)]
        kept = sum(len(c.kept) for c in checks)
        total = kept + sum(len(c.missing) for c in checks)
        return ResponseScore(kept / total if total else 1.0, f"{kept} of {total} reference placeholders kept")


class PlaceholderInvention(ResponseMetric):
    """Share of the candidates' placeholders absent from their reference (0.0 if they have none)."""

    name = "placeholder_invented"
    direction = "lower"

    def _score(self, candidates: list[str], references: list[str] | None) -> ResponseScore:
        checks = [placeholder_check(c, r) for c, r in zip(candidates, references, strict=True)]
        invented = sum(len(c.invented) for c in checks)
        total = invented + sum(len(c.kept) for c in checks)
        return ResponseScore(
            invented / total if total else 0.0, f"{invented} of {total} candidate placeholders invented"
        )


def default_response_metrics(embed: Callable[[list[str]], np.ndarray] | None = None) -> list[ResponseMetric]:
    """BLEU, ROUGE-L, distinct-1/2, length, placeholder recall/invention, and embedding similarity if
    an ``embed`` function is given."""
    metrics: list[ResponseMetric] = [
        Bleu(),
        RougeL(),
        DistinctN(1),
        DistinctN(2),
        Length(),
        PlaceholderRecall(),
        PlaceholderInvention(),
    ]
    if embed is not None:
        metrics.append(EmbeddingSimilarity(embed))
    return metrics
