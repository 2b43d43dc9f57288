"""RAG metrics: groundedness of answers in their contexts and correctness against reference answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from csml.audit.errors import AuditConfigError
from csml.audit.evidence import KBEvidence, Passage
from csml.audit.metrics.base import METRICS, Metric, _skip, abstained, sentences
from csml.models.encoder import Embedder
from csml.schemas import AuditSample, BotReply, MetricResult

if TYPE_CHECKING:
    from csml.judge.judge import GroundednessJudge, Verdict
    from csml.knowledge import KBEntry


@METRICS.register()
class Groundedness(Metric):
    """Share of the answer's claims supported by its evidence: the contexts the bot returned, else the
    sample's reference contexts (``fallback_to_reference``), else passages of the audit's knowledge base
    retrieved for each claim (``knowledge_base``, :mod:`csml.audit.evidence`: hybrid BM25 + MiniLM search,
    ``top_k`` windows per claim) -- how bots that return only text are audited.

    ``method: judge`` (the default) asks csml's offline groundedness judge (:mod:`csml.judge`, configured
    under ``groundedness_judge`` in ``conf/audit.yaml``) whether the evidence supports each claim; the sample
    keeps every claim's span, score, best evidence window and (retrieved) knowledge-base entries, so reports
    show unsupported claims beside their evidence. ``method: embedding`` needs no trained model: a sentence
    counts as supported when its cosine similarity to some context sentence reaches ``sentence_threshold``
    (blind to a changed number or a negation; no retrieval). Abstentions and hand-overs are not scored.
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
        knowledge_base: bool = True,
        top_k: int = 4,
        kb_entries: Sequence[KBEntry] = (),
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
        self.kb_entries = list(kb_entries) if knowledge_base and self.judge is not None else []
        self.top_k = top_k
        self._evidence: KBEvidence | None = None
        self._verdicts: dict[str, Verdict] = {}
        self._retrieved: dict[str, dict[str, list[Passage]]] = {}

    def _contexts(self, sample: AuditSample, reply: BotReply) -> list[str]:
        return list(reply.contexts) or (list(sample.reference_contexts) if self.fallback else [])

    def _skip_reason(self, sample: AuditSample, reply: BotReply) -> str | None:
        if (why := _skip(sample, reply, answerable_only=False)) is not None:
            return why
        if abstained(reply, self.abstain_patterns):
            return "the bot declined or handed over: nothing to ground"
        return None

    def _kb_evidence(self) -> KBEvidence:
        if self._evidence is None:
            assert self.judge is not None
            self._evidence = KBEvidence(self.kb_entries, self.embedder, self.judge.window_words, self.top_k)
        return self._evidence

    def prepare(self, pairs: Sequence[tuple[AuditSample, BotReply]]) -> None:
        """With the judge, scores every answer's claims in shared batches before per-sample scoring: against
        their contexts, or against knowledge-base passages retrieved for each claim."""
        if self.judge is None:
            return
        todo = [(s, r) for s, r in pairs if self._skip_reason(s, r) is None]
        with_contexts = [(s, r) for s, r in todo if self._contexts(s, r)]
        verdicts = self.judge.judge_many(
            [r.text for _, r in with_contexts], [self._contexts(s, r) for s, r in with_contexts]
        )
        self._verdicts = {s.id: v for (s, _), v in zip(with_contexts, verdicts, strict=True)}
        retrieving = [(s, r) for s, r in todo if not self._contexts(s, r)] if self.kb_entries else []
        if not retrieving:
            return
        evidence = self._kb_evidence()
        found: dict[tuple[int, str], list[Passage]] = {}

        def retrieve(claims: list[tuple[int, str]]) -> list[list[str]]:
            queries = [f"{retrieving[a][0].question} {claim}" for a, claim in claims]
            passages = evidence.retrieve(queries)
            found.update(zip(claims, passages, strict=True))
            return [[p.text for p in hits] for hits in passages]

        verdicts = self.judge.judge_retrieving([r.text for _, r in retrieving], retrieve)
        for a, ((sample, _), verdict) in enumerate(zip(retrieving, verdicts, strict=True)):
            self._verdicts[sample.id] = verdict
            self._retrieved[sample.id] = {
                c.claim.text: found.get((a, c.claim.text), []) for c in verdict.claims
            }

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := self._skip_reason(sample, reply)) is not None:
            return MetricResult(None, why)
        contexts = self._contexts(sample, reply)
        if self.judge is not None:
            if sample.id not in self._verdicts:
                if not contexts:
                    return MetricResult(0.0, "no contexts to ground the answer in and no knowledge base")
                self._verdicts[sample.id] = self.judge.judge(reply.text, contexts)
            verdict = self._verdicts[sample.id]
            if not verdict.claims:
                return MetricResult(None, "no claims in the answer")
            return self._judged(verdict, self._retrieved.get(sample.id))
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

    def _judged(self, verdict: Verdict, retrieved: dict[str, list[Passage]] | None) -> MetricResult:
        assert self.judge is not None
        n, weak = len(verdict.claims), verdict.unsupported
        where = "knowledge-base passages" if retrieved is not None else "the contexts"
        reason = (
            f"{n - len(weak)}/{n} claims supported by {where} (judge threshold {self.judge.threshold:.2f})"
        )
        if weak:
            worst = min(weak, key=lambda c: c.score)
            reason += f"; least supported ({worst.score:.2f}): {worst.claim.text[:120]!r}"
        spans = []
        for c in verdict.claims:
            span = {
                "start": c.claim.start,
                "end": c.claim.end,
                "score": round(c.score, 4),
                "supported": c.supported,
                "evidence": c.evidence,
            }
            if retrieved is not None:
                span["sources"] = [p.entry_id for p in retrieved.get(c.claim.text, [])]
            spans.append(span)
        data: dict[str, Any] = {
            "claims": spans,
            "evidence": "knowledge_base" if retrieved is not None else "contexts",
        }
        return MetricResult(1 - len(weak) / n, reason, data=data)


@METRICS.register()
class AnswerCorrectness(Metric):
    """Agreement with the reference answer: ``weight`` x cosine similarity + (1 - weight) x token F1.
    Abstentions and hand-overs are not scored (``false_abstention`` counts declined answerable questions)."""

    name = "answer_correctness"
    needs_embedder = True

    def __init__(
        self, embedder: Embedder, weight: float = 0.5, abstain_patterns: Sequence[str] = (), **base: Any
    ) -> None:
        super().__init__(**base)
        self.embedder = embedder
        self.weight = weight
        self.abstain_patterns = tuple(abstain_patterns)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := _skip(sample, reply)) is not None:
            return MetricResult(None, why)
        if abstained(reply, self.abstain_patterns):
            return MetricResult(None, "the bot declined or handed over: no answer to compare")
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
