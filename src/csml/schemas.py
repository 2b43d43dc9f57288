"""Types of a conversation with a chatbot, below both :mod:`csml.bot` and :mod:`csml.audit`.

An audit asks a bot an :class:`AuditSample`, records what came back as a :class:`BotReply` and scores each
pair to a :class:`MetricResult`; the knowledge-base entries a bot answers from are
:class:`csml.knowledge.KBEntry`. The audit never imports the bot it audits: what both need lives here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from csml.records import Channel, JourneyStage


class SchemaError(ValueError):
    """A record that does not fit its schema (unknown field, missing or mistyped value)."""


@dataclass(frozen=True)
class AuditSample:
    """One question of a suite.

    Attributes:
        id: Unique within the suite.
        question: The customer's message (the last user turn).
        answerable: False for off-topic and false-premise questions the bot should decline.
        category: ``policy``, ``off_topic``, ``false_premise``... (scores are also broken down by it).
        history: Earlier turns, OpenAI-style messages, oldest first.
        reference_answer: What a correct answer says, when known.
        reference_contexts: Passages a correct answer is grounded in.
        reference_source: Knowledge-base entry id the answer comes from (``abcd:refund_initiate``).
        source: Where the question comes from (dataset and row, or ``csml-written``).
        incorrect_answers: Known wrong answers (TruthfulQA's false beliefs), for reasons and reports.
        expected_intent: The labelled intent (``oos`` for out-of-scope), for NLU suites.
        should_escalate: Whether a human must take over (angry or out-of-scope customers), for escalation
            suites; None when the suite does not say.
        group: Paraphrase group: samples sharing it ask the same thing and should get the same answer.
        stage: Customer-journey stage (:class:`csml.records.JourneyStage` value), scores are broken down by it.
        channel: Channel (:class:`csml.records.Channel` value), scores are broken down by it.
        metadata: Free-form JSON object of the auditor's own (ticket ids, owners, tags): not scored, carried
            into the per-sample results.
    """

    id: str
    question: str
    answerable: bool = True
    category: str = "default"
    history: tuple[dict[str, str], ...] = ()
    reference_answer: str | None = None
    reference_contexts: tuple[str, ...] = ()
    reference_source: str | None = None
    source: str = ""
    incorrect_answers: tuple[str, ...] = ()
    expected_intent: str | None = None
    should_escalate: bool | None = None
    group: str | None = None
    stage: str | None = None
    channel: str | None = None
    metadata: dict[str, Any] | None = field(default=None, hash=False)

    def messages(self) -> list[dict[str, str]]:
        """The conversation sent to the bot."""
        return [*map(dict, self.history), {"role": "user", "content": self.question}]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        out = asdict(self)
        for name in _LISTS:
            out[name] = list(getattr(self, name))
        for name in _WRITTEN_WHEN_SET:
            if out[name] in (None, []):
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditSample:
        """Inverse of :meth:`to_dict`; unknown keys, missing or mistyped fields and stage/channel values
        that are not :mod:`csml.records` members are errors naming the field, expected and found."""
        if not isinstance(data, dict):
            raise SchemaError(f"expected a JSON object, found {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        if unknown := sorted(set(data) - known):
            raise SchemaError(f"unknown fields {unknown}; allowed {sorted(known)}")
        for name in ("id", "question"):
            if not isinstance(data.get(name), str) or not data[name].strip():
                raise SchemaError(f"field {name!r}: expected a non-empty string, found {data.get(name)!r}")
        for name, kinds in _TYPES.items():
            if data.get(name) is not None and not isinstance(data[name], kinds):
                expected = " or ".join(k.__name__ for k in kinds)
                raise SchemaError(f"field {name!r}: expected {expected}, found {data[name]!r}")
        for name, kind in (("stage", JourneyStage), ("channel", Channel)):
            allowed = [member.value for member in kind]
            if data.get(name) is not None and data[name] not in allowed:
                raise SchemaError(f"field {name!r}: expected one of {allowed}, found {data[name]!r}")
        values = dict(data)
        for name in _LISTS:
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


_LISTS = ("history", "reference_contexts", "incorrect_answers")
_WRITTEN_WHEN_SET = (
    "incorrect_answers", "expected_intent", "should_escalate", "group", "stage", "channel", "metadata"
)  # fmt: skip
"""Fields a question file only carries when the suite uses them (NLU, escalation, paraphrases, journey)."""
_TYPES: dict[str, tuple[type, ...]] = {
    "answerable": (bool,),
    "should_escalate": (bool,),
    "category": (str,),
    "history": (list,),
    "reference_contexts": (list,),
    "incorrect_answers": (list,),
    "expected_intent": (str,),
    "group": (str,),
    "metadata": (dict,),
}


@dataclass
class BotReply:
    """What a bot said to one conversation, and how the exchange went.

    Attributes:
        text: The answer ("" when there is none).
        contexts: Passages the bot says it answered from, if it reports them.
        intent: The intent the bot reports, if any.
        confidence: The bot's own confidence, if reported.
        abstained: Whether the bot says it abstained (None when it does not report it).
        escalated: Whether the bot says it handed over to a human (None when not reported).
        latency_ms: Wall time of the successful attempt (or of the last failed one).
        status: HTTP status of the last attempt (None in process or on a network error).
        error: None for a usable answer, else ``timeout``, ``http_<status>``, ``malformed_json``,
            ``empty_answer``, ``connection`` or ``exception``, with details after a colon.
        attempts: Attempts made (1 + retries used).
        raw: The parsed response payload (or the raw text when it was not JSON).
    """

    text: str = ""
    contexts: list[str] = field(default_factory=list)
    intent: str | None = None
    confidence: float | None = None
    abstained: bool | None = None
    escalated: bool | None = None
    latency_ms: float = 0.0
    status: int | None = None
    error: str | None = None
    attempts: int = 1
    raw: Any = None

    @property
    def ok(self) -> bool:
        """True when the bot gave a usable answer."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BotReply:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class MetricResult:
    """A metric's value for one sample (None = not applicable), why, and any labels the aggregate needs
    (``{"expected": ..., "predicted": ...}`` for macro-F1)."""

    value: float | None
    reason: str
    data: dict[str, Any] | None = None
