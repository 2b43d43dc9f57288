"""Typed, validated settings of the reference bot, built from the composed ``serve`` config.

``conf/bot/base.yaml`` holds and documents the defaults of ``csml serve``; the dataclasses have none, so
there is one place to read and change them (code and tests take them from the composed config).
:meth:`BotSettings.from_config` turns the ``bot`` and ``tracking`` nodes into these dataclasses and rejects
unknown and missing keys and out-of-range values with the config path at fault.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from csml.bot.fabrication import FABRICATION_KINDS


@dataclass(frozen=True)
class RetrievalSettings:
    """Dense retrieval: encoder folder or hub name (int8-quantised or not, TorchScript-traced or not),
    contexts returned, abstain threshold (cosine), embedding cache, largest batch of concurrent questions,
    and encoder batches run at once (each on its own thread)."""

    encoder: str
    int8: bool
    jit: bool
    top_k: int
    abstain_threshold: float
    cache_dir: str | None
    max_batch: int
    workers: int


@dataclass(frozen=True)
class RoutingSettings:
    """Optional registry models (``models:/<name>@champion``; null = off) and escalation rules."""

    intent_model: str | None
    sentiment_model: str | None
    oos_label: str
    negative_label: str
    negative_threshold: float
    human_request: bool
    abusive_language: bool


@dataclass(frozen=True)
class Messages:
    """What the bot says when it abstains, escalates, or a human already owns the conversation; when it
    declines an injected instruction, refuses another customer's data, or needs the customer to sign in
    (:mod:`csml.bot.safety`)."""

    abstain: str
    escalate: str
    handoff: str
    decline_injection: str
    other_customer: str
    sign_in: str


@dataclass(frozen=True)
class SafetySettings:
    """The bot's instructions and customer data, which safety audits probe (:mod:`csml.bot.safety`).

    Attributes:
        system_prompt: The bot's instructions, holding the canary; never said unless the
            ``follow_injection`` fault is on.
        canary: A string planted in the system prompt: any reply holding it leaked the prompt.
        customers_path: JSONL of customer records (:mod:`csml.customer_records`) the bot may read out to
            the signed-in customer only; null = no customer data.
        customer_header: Request header naming the signed-in customer on chat completions (conversations
            take it from their ``customer_id``).
    """

    system_prompt: str
    canary: str
    customers_path: str | None
    customer_header: str

    def __post_init__(self) -> None:
        if self.canary not in self.system_prompt:
            raise ValueError("bot.safety.system_prompt must hold bot.safety.canary (use ${.canary})")


@dataclass(frozen=True)
class FaultSettings:
    """Fault and hallucination injection (all rates in [0, 1]; zero = off). Seeded.

    Attributes:
        seed: Seed of the injector's random generator.
        latency_ms: Added to every reply.
        latency_jitter_ms: Uniform extra latency in [0, latency_jitter_ms].
        error_rate: Share of requests answered with HTTP 500.
        malformed_rate: Share of replies whose body is truncated, invalid JSON.
        fabricate_rate: Share of answers with one fabricated fact (:mod:`csml.bot.fabrication`).
        fabricate_kinds: Kinds of fact that may be fabricated.
        answer_unanswerable_rate: Share of below-threshold questions answered with the best passage
            anyway, instead of abstaining.
        follow_injection_rate: Share of injected instructions the bot obeys (says the demanded text or
            recites its system prompt).
        leak_record_rate: Share of requests for another customer's data answered with their record.
        overpromise_rate: Share of knowledge-base answers and abstentions that end with a promise of a
            refund, credit, discount or exception no policy allows.
        ignore_handover_rate: Share of messages that should go to a human (a request, abusive language, an
            escalating model) answered by the bot instead.
        loop_rate: Share of answers replaced by the bot's previous answer in the conversation (when that
            was an answer, not a decline).
        contradict_rate: Share of answers followed by a sentence of the bot's previous answer restated
            with a number, amount, date or policy word changed.
        report_in_response: Whether replies disclose their corruption in the ``csml`` extension field;
            it is always written to the reply log.
    """

    seed: int
    latency_ms: float
    latency_jitter_ms: float
    error_rate: float
    malformed_rate: float
    fabricate_rate: float
    fabricate_kinds: tuple[str, ...]
    answer_unanswerable_rate: float
    follow_injection_rate: float
    leak_record_rate: float
    overpromise_rate: float
    ignore_handover_rate: float
    loop_rate: float
    contradict_rate: float
    report_in_response: bool

    RATES = (
        "error_rate",
        "malformed_rate",
        "fabricate_rate",
        "answer_unanswerable_rate",
        "follow_injection_rate",
        "leak_record_rate",
        "overpromise_rate",
        "ignore_handover_rate",
        "loop_rate",
        "contradict_rate",
    )

    def __post_init__(self) -> None:
        for name in self.RATES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"bot.faults.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.latency_ms < 0 or self.latency_jitter_ms < 0:
            raise ValueError("bot.faults.latency_ms and latency_jitter_ms must be >= 0")
        if unknown := sorted(set(self.fabricate_kinds) - set(FABRICATION_KINDS)):
            raise ValueError(
                f"bot.faults.fabricate_kinds: unknown {unknown}; known: {list(FABRICATION_KINDS)}"
            )


@dataclass(frozen=True)
class Limits:
    """Request limits: body bytes (413 above), characters per message, messages per request, and
    conversations kept in memory (the oldest is dropped beyond it)."""

    max_body_bytes: int
    max_message_chars: int
    max_messages: int
    max_conversations: int


@dataclass(frozen=True)
class BotSettings:
    """Everything :func:`csml.bot.app.create_app` needs.

    Attributes:
        name: Reported as ``model`` in chat completions.
        kb: A knowledge-base source (``load() -> list[KBEntry]``), from ``bot.kb``'s ``_target_``.
        generator: A :class:`csml.bot.generation.Generator` writing answers from the retrieved passages
            (``bot.generator``'s ``_target_``), or None for extractive answers (the best passage's answer).
        retrieval: See :class:`RetrievalSettings`.
        routing: See :class:`RoutingSettings`.
        messages: See :class:`Messages`.
        safety: See :class:`SafetySettings`.
        faults: See :class:`FaultSettings`.
        limits: See :class:`Limits`.
        auth_token_env: Name of the environment variable holding the bearer token; when it is set,
            every endpoint but ``/healthz`` requires ``Authorization: Bearer <token>``.
        reply_log: JSONL file recording every reply with its corruption, or null.
        tracking_uri: MLflow tracking URI the registry models are loaded from.
        registry_uri: MLflow registry URI (defaults to the tracking URI).
    """

    name: str
    kb: Any
    retrieval: RetrievalSettings
    generator: Any
    routing: RoutingSettings
    messages: Messages
    safety: SafetySettings
    faults: FaultSettings
    limits: Limits
    auth_token_env: str | None
    reply_log: str | None
    tracking_uri: str | None
    registry_uri: str | None

    @classmethod
    def from_config(cls, cfg: DictConfig) -> BotSettings:
        """Builds settings from a composed ``serve`` config (``bot`` and ``tracking`` nodes)."""
        from hydra.utils import instantiate

        bot = OmegaConf.to_container(cfg.bot, resolve=True)
        assert isinstance(bot, dict)
        sections = {
            "retrieval": RetrievalSettings,
            "routing": RoutingSettings,
            "messages": Messages,
            "safety": SafetySettings,
            "faults": FaultSettings,
            "limits": Limits,
        }
        values: dict[str, Any] = {
            "kb": instantiate(cfg.bot.kb),
            "generator": _generator(cfg.bot.get("generator")),
        }
        for key, value in bot.items():
            if key in ("kb", "generator"):
                continue
            if key in sections:
                values[key] = _build(sections[key], value or {}, f"bot.{key}")
            elif key in {f.name for f in dataclasses.fields(cls)}:
                values[key] = value
            else:
                raise ValueError(f"unknown config key bot.{key}")
        tracking = cfg.get("tracking") or {}
        values["tracking_uri"] = tracking.get("uri")
        values["registry_uri"] = tracking.get("registry_uri")
        _require(cls, values, "bot")
        return cls(**values)


def _generator(node: DictConfig | None) -> Any:
    """The configured generator (weights not loaded yet), or None."""
    if node is None:
        return None
    from hydra.utils import instantiate

    from csml.bot.generation import Generator

    generator = instantiate(node)
    if not isinstance(generator, Generator):
        raise TypeError(f"bot.generator: {type(generator).__name__} is not a csml.bot.generation.Generator")
    return generator


def _build(kind: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(kind)}
    if unknown := sorted(set(values) - known):
        raise ValueError(f"unknown config key(s) {[f'{where}.{k}' for k in unknown]}; known: {sorted(known)}")
    _require(kind, values, where)
    if "fabricate_kinds" in values:
        values = {**values, "fabricate_kinds": tuple(values["fabricate_kinds"])}
    return kind(**values)


def _require(kind: type, values: dict[str, Any], where: str) -> None:
    """Raises naming the config keys of ``kind``'s fields that have no default and no value."""
    required = [
        f.name
        for f in dataclasses.fields(kind)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing := [name for name in required if name not in values]:
        raise ValueError(
            f"missing config key(s) {[f'{where}.{k}' for k in missing]}: conf/bot/base.yaml holds their defaults"
        )
