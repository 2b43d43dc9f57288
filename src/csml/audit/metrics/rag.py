"""RAG metrics: groundedness of answers in their contexts and correctness against reference answers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from csml.audit.metrics.base import Embedder, Metric, MetricResult, _skip, abstained, register, sentences
from csml.audit.suite import AuditSample

if TYPE_CHECKING:
    from csml.audit.adapters import BotReply


@register
class Groundedness(Metric):
    """Share of the answer's sentences supported by the contexts the bot returned.

    A sentence is supported when its cosine similarity to some context sentence reaches
    ``sentence_threshold``. Without returned contexts the sample's reference contexts are used when
    ``fallback_to_reference``; an abstention is not scored.
    """

    name = "groundedness"
    needs_embedder = True

    def __init__(
        self,
        embedder: Embedder,
        sentence_threshold: float = 0.6,
        fallback_to_reference: bool = True,
        abstain_patterns: Sequence[str] = (),
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.embedder = embedder
        self.sentence_threshold = sentence_threshold
        self.fallback = fallback_to_reference
        self.abstain_patterns = tuple(abstain_patterns)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := _skip(sample, reply, answerable_only=False)) is not None:
            return MetricResult(None, why)
        if abstained(reply, self.abstain_patterns):
            return MetricResult(None, "the bot abstained: nothing to ground")
        contexts = list(reply.contexts) or (list(sample.reference_contexts) if self.fallback else [])
        claims = sentences(reply.text)
        if not contexts or not claims:
            return MetricResult(
                0.0 if claims else None, "no contexts to ground the answer in" if claims else "no sentences"
            )
        support = [s for c in contexts for s in sentences(c)] or contexts
        vectors = self.embedder.encode(claims + support)
        sims = vectors[: len(claims)] @ vectors[len(claims) :].T
        best = sims.max(axis=1)
        weak = [(c, float(b)) for c, b in zip(claims, best, strict=True) if b < self.sentence_threshold]
        value = 1 - len(weak) / len(claims)
        reason = f"{len(claims) - len(weak)}/{len(claims)} sentences supported (cosine >= {self.sentence_threshold})"
        if weak:
            worst = min(weak, key=lambda w: w[1])
            reason += f"; least supported ({worst[1]:.2f}): {worst[0][:120]!r}"
        return MetricResult(value, reason)


@register
class AnswerCorrectness(Metric):
    """Agreement with the reference answer: ``weight`` x cosine similarity + (1 - weight) x token F1."""

    name = "answer_correctness"
    needs_embedder = True

    def __init__(self, embedder: Embedder, weight: float = 0.5, **base: Any) -> None:
        super().__init__(**base)
        self.embedder = embedder
        self.weight = weight

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := _skip(sample, reply)) is not None:
            return MetricResult(None, why)
        if not sample.reference_answer:
            return MetricResult(None, "no reference answer")
        vectors = self.embedder.encode([reply.text, sample.reference_answer])
        cosine = float(np.clip(vectors[0] @ vectors[1], 0.0, 1.0))
        f1 = token_f1(reply.text, sample.reference_answer)
        value = self.weight * cosine + (1 - self.weight) * f1
        return MetricResult(value, f"cosine {cosine:.2f}, token F1 {f1:.2f}")


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 over lower-cased alphanumeric tokens."""
    pred, ref = re.findall(r"\w+", prediction.lower()), re.findall(r"\w+", reference.lower())
    if not pred or not ref:
        return float(pred == ref)
    from collections import Counter

    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)
