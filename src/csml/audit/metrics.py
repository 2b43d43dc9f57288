"""Audit metrics: classes with injected dependencies, a pure per-sample score, a threshold and direction.

Each metric scores one (sample, reply) pair to a :class:`MetricResult` (a value and the reason for it,
or ``value=None`` when the metric does not apply: an unanswerable question for correctness, a failed
request for groundedness) and aggregates the per-sample values to the suite-level figure gated on.
Register a metric with :func:`register`; suites name metrics by their registry name.

Offline by default: semantic similarity comes from an :class:`Embedder` (MiniLM,
:func:`csml.config.minilm_path`). A stronger judge (issue 6) plugs in as another embedder or metric.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from csml.audit.suite import AuditConfigError, AuditSample, MetricSpec

if TYPE_CHECKING:
    from csml.audit.adapters import BotReply


class Embedder(Protocol):
    """Anything that maps texts to unit-norm vectors (``csml.bot.retrieval.Encoder`` is one)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class CachedEmbedder:
    """Wraps an :class:`Embedder` so each distinct text is encoded once per audit (contexts repeat)."""

    def __init__(self, embedder: Embedder, batch_size: int = 64) -> None:
        self.embedder = embedder
        self.batch_size = batch_size
        self.vectors: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings of ``texts`` (rows in order)."""
        new = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if new:
            for text, vector in zip(new, self.embedder.encode(new), strict=True):
                self.vectors[text] = vector
        return np.stack([self.vectors[t] for t in texts])


@dataclass(frozen=True)
class MetricResult:
    """A metric's value for one sample (None = not applicable) and why."""

    value: float | None
    reason: str


class Metric(ABC):
    """Base of audit metrics.

    Args:
        threshold: The gate on the aggregate (None: reported, not gated).
        direction: ``higher`` or ``lower`` is better.

    Class attributes:
        name: Registry name.
        needs_embedder: Whether the constructor takes an ``embedder``.
    """

    name: str = ""
    needs_embedder: bool = False

    def __init__(self, threshold: float | None = None, direction: str = "higher") -> None:
        self.threshold = threshold
        self.direction = direction

    @abstractmethod
    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        """Scores one sample; must not raise for a bad reply (return None with the reason)."""

    def aggregate(self, values: list[float]) -> float | None:
        """The suite-level value from the applicable per-sample values (mean by default)."""
        return float(np.mean(values)) if values else None

    def passed(self, value: float | None) -> bool | None:
        """Whether an aggregate meets the threshold (None: no threshold, or no value to judge)."""
        if self.threshold is None or value is None:
            return None
        return value >= self.threshold if self.direction == "higher" else value <= self.threshold


METRICS: dict[str, type[Metric]] = {}


def register(cls: type[Metric]) -> type[Metric]:
    """Class decorator adding a metric to :data:`METRICS` under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise TypeError(f"{cls!r} is not a Metric subclass")
    if cls.name in METRICS:
        raise ValueError(f"metric name {cls.name!r} is already registered by {METRICS[cls.name].__name__}")
    METRICS[cls.name] = cls
    return cls


def build_metric(spec: MetricSpec, embedder: Callable[[], Embedder], **context: Any) -> Metric:
    """Instantiates ``spec``; ``embedder`` is called only for metrics that need one.

    Raises:
        AuditConfigError: unknown metric (with the closest name) or bad params.
    """
    if spec.name not in METRICS:
        close = difflib.get_close_matches(spec.name, METRICS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise AuditConfigError(f"unknown metric {spec.name!r}.{hint} Known: {sorted(METRICS)}")
    cls = METRICS[spec.name]
    kwargs: dict[str, Any] = dict(spec.params)
    if cls.needs_embedder:
        kwargs["embedder"] = embedder()
    accepted = inspect.signature(cls.__init__).parameters
    for key, value in context.items():
        if key in accepted:
            kwargs.setdefault(key, value)
    if spec.direction is not None:
        kwargs["direction"] = spec.direction
    try:
        return cls(threshold=spec.threshold, **kwargs)
    except TypeError as error:
        raise AuditConfigError(f"metric {spec.name!r}: bad params {sorted(spec.params)} ({error})") from None


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """Sentences of ``text`` with at least one word of 3+ letters."""
    return [s.strip() for s in _SENTENCE.split(text) if re.search(r"[A-Za-z]{3}", s)]


def _skip(sample: AuditSample, reply: BotReply, answerable_only: bool = True) -> str | None:
    if not reply.ok:
        return f"no answer to score ({reply.error})"
    if answerable_only and not sample.answerable:
        return "unanswerable question"
    return None


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


URL = re.compile(
    r"\bhttps?://[^\s)\]>]+|\bwww\.[^\s)\]>]+|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io)\b", re.IGNORECASE
)


def extract_facts(text: str) -> list[tuple[str, str]]:
    """Checkable facts of a text as ``(kind, value)``: emails, URLs, amounts, dates, order ids, phone
    numbers, then remaining bare numbers (the patterns of :mod:`csml.bot.entities`)."""
    from csml.bot.entities import NUMBER, extract_entities

    facts = [(e.type, e.value) for e in extract_entities(text)]
    spans = [(e.start, e.end) for e in extract_entities(text)]
    for match in URL.finditer(text):
        if not any(s < match.end() and match.start() < e for s, e in spans):
            facts.append(("url", match.group().rstrip(".,")))
            spans.append(match.span())
    for match in NUMBER.finditer(text):
        if not any(s < match.end() and match.start() < e for s, e in spans):
            facts.append(("number", match.group()))
    return facts


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


@register
class FabricatedEntities(Metric):
    """Share of answers stating a fact (number, amount, date, email, URL, phone, order id) that the
    sources do not state.

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

    def __init__(self, kb_texts: Sequence[str] = (), kb: str = "no_contexts", **base: Any) -> None:
        base.setdefault("direction", "lower")
        super().__init__(**base)
        if kb not in ("no_contexts", "always"):
            raise ValueError(f"kb must be 'no_contexts' or 'always', got {kb!r}")
        self.kb_text = _norm(" \n ".join(kb_texts))
        self.kb = kb

    def fabricated(self, answer: str, sources: Sequence[str], use_kb: bool = True) -> list[tuple[str, str]]:
        """Facts of ``answer`` found neither in ``sources`` nor (``use_kb``) in the knowledge base."""
        known = _norm(" \n ".join(sources)) + (" \n " + self.kb_text if use_kb else "")
        out = []
        for kind, value in extract_facts(answer):
            if not re.search(r"(?<![\w$€£₹])" + re.escape(_norm(value)) + r"(?!\w)", known):
                out.append((kind, value))
        return out

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := _skip(sample, reply, answerable_only=False)) is not None:
            return MetricResult(None, why)
        sources = [*reply.contexts, *sample.reference_contexts, sample.question]
        use_kb = self.kb == "always" or not reply.contexts
        found = self.fabricated(reply.text, sources, use_kb)
        if not found:
            return MetricResult(0.0, f"all {len(extract_facts(reply.text))} facts found in the sources")
        where = "contexts or KB" if use_kb else "returned contexts"
        return MetricResult(1.0, f"not in {where}: " + ", ".join(f"{k} {v!r}" for k, v in found))


_TOKEN = re.compile(r"[$€£₹]?\w+(?:[-'.,]\w+)*")


def _grams(text: str) -> list[tuple[str, ...]]:
    """Lower-cased words then word pairs, in text order: a pair catches a word added next to known ones
    (``will not``)."""
    words = [t.lower() for t in _TOKEN.findall(text)]
    return list(dict.fromkeys([(w,) for w in words] + list(itertools.pairwise(words))))


@register
class UnsupportedSentences(Metric):
    """Share of answer sentences that add words to the context sentence they quote or paraphrase.

    Each answer sentence is aligned with the returned-context sentence sharing the most words and word
    pairs; words or adjacent word pairs absent from that sentence (``cannot`` for ``can``, ``will not``
    for ``will``, ``June`` for ``March``, a swapped name, an appended claim) make it unsupported when
    there are more than ``max_new_tokens``.
    A lexical check: exact for bots that quote their sources (extractive RAG), strict for bots that
    paraphrase, where a judge model (issue 6) is the better tool. An abstention is not scored.
    """

    name = "unsupported_sentences"

    def __init__(self, max_new_tokens: int = 0, abstain_patterns: Sequence[str] = (), **base: Any) -> None:
        base.setdefault("direction", "lower")
        super().__init__(**base)
        self.max_new_tokens = int(max_new_tokens)
        self.abstain_patterns = tuple(abstain_patterns)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := _skip(sample, reply, answerable_only=False)) is not None:
            return MetricResult(None, why)
        if abstained(reply, self.abstain_patterns):
            return MetricResult(None, "the bot abstained: nothing to support")
        claims = sentences(reply.text)
        contexts = list(reply.contexts) or list(sample.reference_contexts)
        if not claims:
            return MetricResult(None, "no sentences")
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


def abstained(reply: BotReply, patterns: Sequence[str]) -> bool:
    """Whether the reply declines to answer: the bot says so, escalates, or says an abstain phrase."""
    if reply.abstained or reply.escalated:
        return True
    text = reply.text.lower()
    return any(p.lower() in text for p in patterns)


@register
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


@register
class FalseAbstention(Metric):
    """On answerable questions: 1.0 when the bot declined a question its knowledge base answers."""

    name = "false_abstention"

    def __init__(self, abstain_patterns: Sequence[str] = (), **base: Any) -> None:
        base.setdefault("direction", "lower")
        super().__init__(**base)
        self.patterns = tuple(abstain_patterns)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if (why := _skip(sample, reply)) is not None:
            return MetricResult(None, why)
        declined = abstained(reply, self.patterns)
        return MetricResult(float(declined), "declined an answerable question" if declined else "answered")


@register
class LatencyPercentile(Metric):
    """A latency percentile in milliseconds over the requests that got an HTTP answer (lower is better)."""

    name = "latency_p95_ms"
    percentile = 95.0

    def __init__(self, percentile: float | None = None, **base: Any) -> None:
        base.setdefault("direction", "lower")
        super().__init__(**base)
        if percentile is not None:
            self.percentile = float(percentile)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if reply.error and reply.error.startswith(("timeout", "connection")):
            return MetricResult(None, reply.error)
        return MetricResult(reply.latency_ms, f"{reply.latency_ms:.1f} ms")

    def aggregate(self, values: list[float]) -> float | None:
        return float(np.percentile(values, self.percentile)) if values else None


@register
class LatencyP50(LatencyPercentile):
    """The median latency in milliseconds."""

    name = "latency_p50_ms"
    percentile = 50.0


@register
class ErrorRate(Metric):
    """Share of samples with no usable answer (timeouts, HTTP errors, malformed JSON, empty answers)."""

    name = "error_rate"

    def __init__(self, **base: Any) -> None:
        base.setdefault("direction", "lower")
        super().__init__(**base)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        return MetricResult(0.0 if reply.ok else 1.0, "ok" if reply.ok else str(reply.error))


@register
class TimeoutRate(Metric):
    """Share of samples whose every attempt timed out."""

    name = "timeout_rate"

    def __init__(self, **base: Any) -> None:
        base.setdefault("direction", "lower")
        super().__init__(**base)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        timed_out = bool(reply.error and reply.error.startswith("timeout"))
        return MetricResult(float(timed_out), str(reply.error) if timed_out else "answered in time")
