"""Hallucination metrics: fabricated facts, sentences the contexts do not support, declining unanswerable
questions, and consistency across paraphrases of one question."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from csml.audit.facts import FactMention, KnownFacts, extract_facts
from csml.audit.metrics.base import METRICS, Metric, _skip, abstained, sentences
from csml.judge.nonclaims import is_checkable
from csml.models.encoder import Embedder
from csml.schemas import AuditSample, BotReply, MetricResult


@METRICS.register()
class FabricatedEntities(Metric):
    """Share of answers stating a fact the sources do not state (:mod:`csml.audit.facts`: amounts,
    percentages, dates, times, durations, phone numbers, e-mails, URLs, ids, names, numbers).

    The sources are the contexts the bot returned with the answer, the sample's reference contexts and
    the question; when the bot returns no contexts, the whole knowledge base (``kb_texts``) as well
    (``kb="always"`` always adds it: a fact from an unrelated section then passes). Per sample: 1.0
    when the answer holds a fabricated fact (the reason lists them), 0.0 when every fact is found, None
    for a failed request. Lower is better.

    Args:
        kb_texts: Texts of the knowledge base the bot answers from.
        kb: ``"no_contexts"`` or ``"always"``: when the knowledge base counts as a source.
    """

    name = "fabricated_entities"
    better = "lower"

    def __init__(self, kb_texts: Sequence[str] = (), kb: str = "no_contexts", **base: Any) -> None:
        super().__init__(**base)
        if kb not in ("no_contexts", "always"):
            raise ValueError(f"kb must be 'no_contexts' or 'always', got {kb!r}")
        self.knowledge_base = KnownFacts(kb_texts)
        self.kb = kb

    def fabricated(self, answer: str, sources: Sequence[str], use_kb: bool = True) -> list[FactMention]:
        """Facts of ``answer`` found neither in ``sources`` nor (``use_kb``) in the knowledge base."""
        known = KnownFacts(sources)
        return [
            fact
            for fact in extract_facts(answer)
            if not known.supports(fact) and not (use_kb and self.knowledge_base.supports(fact))
        ]

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := _skip(sample, reply, answerable_only=False)) is not None:
            return MetricResult(None, why)
        sources = [*reply.contexts, *sample.reference_contexts, sample.question]
        use_kb = self.kb == "always" or not reply.contexts
        found = self.fabricated(reply.text, sources, use_kb)
        if not found:
            return MetricResult(0.0, f"all {len(extract_facts(reply.text))} facts found in the sources")
        where = "contexts or KB" if use_kb else "returned contexts"
        return MetricResult(1.0, f"not in {where}: " + ", ".join(f"{f.kind} {f.text!r}" for f in found))


_TOKEN = re.compile(r"[$€£₹]?\w+(?:[-'.,]\w+)*")


def _grams(text: str) -> list[tuple[str, ...]]:
    """Lower-cased words then word pairs, in text order: a pair catches a word added next to known ones
    (``will not``)."""
    words = [t.lower() for t in _TOKEN.findall(text)]
    return list(dict.fromkeys([(w,) for w in words] + list(itertools.pairwise(words))))


@METRICS.register()
class UnsupportedSentences(Metric):
    """Share of answer sentences that add words to the context sentence they quote or paraphrase.

    Each answer sentence is aligned with the returned-context sentence sharing the most words and word
    pairs; words or adjacent word pairs absent from that sentence (``cannot`` for ``can``, ``will not``
    for ``will``, ``June`` for ``March``, a swapped name, an appended claim) make it unsupported when
    there are more than ``max_new_tokens``.
    A lexical check: exact for bots that quote their sources (extractive RAG), strict for bots that
    paraphrase, where a judge model (issue 6) is the better tool. An abstention is not scored, nor are
    sentences with no checkable fact (greetings, thanks, offers of help, questions:
    :func:`csml.judge.nonclaims.is_checkable`).
    """

    name = "unsupported_sentences"
    better = "lower"

    def __init__(self, max_new_tokens: int = 0, abstain_patterns: Sequence[str] = (), **base: Any) -> None:
        super().__init__(**base)
        self.max_new_tokens = int(max_new_tokens)
        self.abstain_patterns = tuple(abstain_patterns)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := _skip(sample, reply, answerable_only=False)) is not None:
            return MetricResult(None, why)
        if abstained(reply, self.abstain_patterns):
            return MetricResult(None, "the bot abstained: nothing to support")
        claims = [s for s in sentences(reply.text) if is_checkable(s)]
        contexts = list(reply.contexts) or list(sample.reference_contexts)
        if not claims:
            return MetricResult(None, "no sentence with a checkable fact")
        if not contexts:
            return MetricResult(1.0, "no contexts: no sentence is supported")
        support = [set(_grams(s)) for c in contexts for s in sentences(c)] or [
            set(_grams(" ".join(contexts)))
        ]
        unsupported = []
        for claim in claims:
            grams = _grams(claim)
            best = max(support, key=lambda ctx: sum(g in ctx for g in grams))
            new = [" ".join(g) for g in grams if g not in best]
            if len(new) > self.max_new_tokens:
                unsupported.append((claim, new))
        value = len(unsupported) / len(claims)
        if not unsupported:
            return MetricResult(value, f"all {len(claims)} sentences found in the contexts")
        claim, new = unsupported[0]
        return MetricResult(
            value, f"{len(unsupported)}/{len(claims)} sentences add words, e.g. {new[:5]} in {claim[:100]!r}"
        )


@METRICS.register()
class Abstention(Metric):
    """On unanswerable (off-topic, false-premise) questions: 1.0 when the bot declines or hands over."""

    name = "abstention"

    def __init__(self, abstain_patterns: Sequence[str] = (), **base: Any) -> None:
        super().__init__(**base)
        self.patterns = tuple(abstain_patterns)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if sample.answerable:
            return MetricResult(None, "answerable question")
        if not reply.ok:
            return MetricResult(None, f"no answer to score ({reply.error})")
        if abstained(reply, self.patterns):
            return MetricResult(1.0, "declined or escalated")
        return MetricResult(0.0, f"answered an unanswerable {sample.category} question: {reply.text[:120]!r}")


@METRICS.register()
class FalseAbstention(Metric):
    """On answerable questions: 1.0 when the bot declined a question its knowledge base answers."""

    name = "false_abstention"
    better = "lower"

    def __init__(self, abstain_patterns: Sequence[str] = (), **base: Any) -> None:
        super().__init__(**base)
        self.patterns = tuple(abstain_patterns)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := _skip(sample, reply)) is not None:
            return MetricResult(None, why)
        declined = abstained(reply, self.patterns)
        return MetricResult(float(declined), "declined an answerable question" if declined else "answered")


def _written_facts(text: str) -> dict[str, str]:
    """The facts of ``text``: canonical key -> the fact as written."""
    return {fact.key: fact.text for fact in extract_facts(text)}


@METRICS.register()
class ParaphraseConsistency(Metric):
    """Agreement of the answers to paraphrases of one question (samples sharing a ``group``).

    Two answers agree when both decline, or neither declines, their embeddings reach
    ``similarity_threshold`` cosine, and they state the same checkable facts (:mod:`csml.audit.facts`).
    Per sample: the share of the other answers of its group it agrees with; samples without a group or
    whose request failed are not scored.
    """

    name = "paraphrase_consistency"
    needs_embedder = True

    def __init__(
        self,
        embedder: Embedder,
        similarity_threshold: float = 0.8,
        abstain_patterns: Sequence[str] = (),
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.embedder = embedder
        self.similarity_threshold = similarity_threshold
        self.patterns = tuple(abstain_patterns)
        self.groups: dict[str, list[tuple[str, BotReply]]] = {}

    def prepare(self, pairs: Sequence[tuple[AuditSample, BotReply]]) -> None:
        self.groups = {}
        for sample, reply in pairs:
            if sample.group is not None and reply.ok:
                self.groups.setdefault(sample.group, []).append((sample.id, reply))
        texts = [reply.text for members in self.groups.values() for _, reply in members]
        if texts:
            self.embedder.encode(texts)  # one batch; a CachedEmbedder keeps the vectors for score()

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if sample.group is None:
            return MetricResult(None, "no paraphrase group")
        if not reply.ok:
            return MetricResult(None, f"no answer to score ({reply.error})")
        others = [r for sid, r in self.groups.get(sample.group, []) if sid != sample.id]
        if not others:
            return MetricResult(None, "no other answer in the group")
        declined = abstained(reply, self.patterns)
        vectors = self.embedder.encode([reply.text] + [r.text for r in others])
        cosines = vectors[1:] @ vectors[0]
        facts = _written_facts(reply.text)
        disagreements = []
        for other, cosine in zip(others, cosines, strict=True):
            other_facts = _written_facts(other.text)
            if abstained(other, self.patterns) != declined:
                disagreements.append("one declines, the other answers")
            elif declined:
                continue
            elif other_facts.keys() != facts.keys():
                written = {**facts, **other_facts}
                differing = sorted(written[key] for key in facts.keys() ^ other_facts.keys())
                disagreements.append(f"different facts {differing[:4]}")
            elif cosine < self.similarity_threshold:
                disagreements.append(f"cosine {cosine:.2f}")
        value = 1 - len(disagreements) / len(others)
        reason = f"agrees with {len(others) - len(disagreements)}/{len(others)} paraphrase answers"
        reason += f" (mean cosine {float(cosines.mean()):.2f})"
        if disagreements:
            reason += "; " + "; ".join(disagreements[:3])
        return MetricResult(value, reason)
