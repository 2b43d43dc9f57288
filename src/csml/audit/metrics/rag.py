"""RAG metrics: groundedness of answers in their contexts and correctness against reference answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from csml.audit.errors import AuditConfigError
from csml.audit.metrics.base import METRICS, Metric, _skip, abstained, sentences
from csml.models.encoder import Embedder
from csml.schemas import AuditSample, BotReply, MetricResult

if TYPE_CHECKING:
    from csml.judge.judge import GroundednessJudge, Verdict


@METRICS.register()
class Groundedness(Metric):
    """Share of the answer's claims supported by the contexts the bot returned.

    ``method: judge`` (the default) asks csml's offline groundedness judge (:mod:`csml.judge`, configured
    under ``groundedness_judge`` in ``conf/audit.yaml``) whether the contexts support each claim; the sample
    keeps every claim's span and score, so reports highlight the unsupported ones. ``method: embedding``
    needs no trained model: a sentence counts as supported when its cosine similarity to some context
    sentence reaches ``sentence_threshold`` (blind to a changed number or a negation). Without returned
    contexts the sample's reference contexts are used when ``fallback_to_reference``; an abstention is not
    scored.
    """

    name = "groundedness"
    needs_embedder = True
    methods = ("judge", "embedding")

    def __init__(
        self,
        embedder: Embedder,
        method: str = "judge",
        groundedness_judge: Callable[[], GroundednessJudge] | None = None,
        sentence_threshold: float = 0.6,
        fallback_to_reference: bool = True,
        abstain_patterns: Sequence[str] = (),
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if method not in self.methods:
            raise AuditConfigError(f"groundedness: method must be one of {self.methods}, got {method!r}")
        if method == "judge" and groundedness_judge is None:
            raise AuditConfigError(
                "groundedness: method 'judge' needs groundedness_judge in the audit config"
            )
        self.embedder = embedder
        self.judge = groundedness_judge() if method == "judge" and groundedness_judge else None
        self.sentence_threshold = sentence_threshold
        self.fallback = fallback_to_reference
        self.abstain_patterns = tuple(abstain_patterns)
        self._verdicts: dict[str, Verdict] = {}

    def _contexts(self, sample: AuditSample, reply: BotReply) -> list[str]:
        return list(reply.contexts) or (list(sample.reference_contexts) if self.fallback else [])

    def _skip_reason(self, sample: AuditSample, reply: BotReply) -> str | None:
        if (why := _skip(sample, reply, answerable_only=False)) is not None:
            return why
        if abstained(reply, self.abstain_patterns):
            return "the bot abstained: nothing to ground"
        return None

    def prepare(self, pairs: Sequence[tuple[AuditSample, BotReply]]) -> None:
        """With the judge, scores every answer's claims in shared batches before per-sample scoring."""
        if self.judge is None:
            return
        todo = [(s, r) for s, r in pairs if self._skip_reason(s, r) is None and self._contexts(s, r)]
        verdicts = self.judge.judge_many([r.text for _, r in todo], [self._contexts(s, r) for s, r in todo])
        self._verdicts = {s.id: v for (s, _), v in zip(todo, verdicts, strict=True)}

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := self._skip_reason(sample, reply)) is not None:
            return MetricResult(None, why)
        contexts = self._contexts(sample, reply)
        if self.judge is not None:
            if not contexts:
                return MetricResult(0.0, "no contexts to ground the answer in")
            verdict = self._verdicts.get(sample.id) or self.judge.judge(reply.text, contexts)
            return self._judged(verdict) if verdict.claims else MetricResult(None, "no claims in the answer")
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

    def _judged(self, verdict: Verdict) -> MetricResult:
        n, weak = len(verdict.claims), verdict.unsupported
        reason = f"{n - len(weak)}/{n} claims supported by the judge (threshold {self.judge.threshold:.2f})"
        if weak:
            worst = min(weak, key=lambda c: c.score)
            reason += f"; least supported ({worst.score:.2f}): {worst.claim.text[:120]!r}"
        spans = [
            {"start": c.claim.start, "end": c.claim.end, "score": round(c.score, 4), "supported": c.supported}
            for c in verdict.claims
        ]
        return MetricResult(1 - len(weak) / n, reason, data={"claims": spans})


@METRICS.register()
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
