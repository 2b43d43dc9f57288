"""The reference bot's answer pipeline: route, retrieve, answer or abstain, and corrupt when told to.

Extractive RAG: the reply is the best-matching knowledge-base answer when its similarity reaches
``bot.retrieval.abstain_threshold``; below it the bot says it does not know and offers a human. Intent and
sentiment models (optional) run concurrently with retrieval, each through its own micro-batcher.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from csml.bot.entities import extract_entities
from csml.bot.fabrication import fabricate
from csml.bot.faults import FaultPlan
from csml.bot.retrieval import MicroBatcher, Retriever, load_encoder
from csml.bot.routing import Prediction, RegistryClassifier, escalation_reason, load_classifiers
from csml.bot.schemas import BotExtension, EntityOut, SourceOut
from csml.bot.settings import BotSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotReply:
    """A reply: the text sent, the knowledge-base answer it came from (before corruption), and details."""

    text: str
    grounded_answer: str | None
    details: BotExtension


class Bot:
    """Answers customer messages from a knowledge base.

    Loads the knowledge base, its (cached) embeddings and the configured registry models at
    construction, so a misconfiguration fails before the server binds its port.

    Args:
        settings: The bot's settings.
    """

    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings
        entries = settings.kb.load()
        encoder = load_encoder(settings.retrieval.encoder, settings.retrieval.int8)
        self.retriever = Retriever(entries, encoder, settings.retrieval.cache_dir)
        self.embed = MicroBatcher(encoder.encode, settings.retrieval.max_batch)
        intent, sentiment = load_classifiers(settings.routing, settings.tracking_uri, settings.registry_uri)
        self.intent = self._batched(intent)
        self.sentiment = self._batched(sentiment)
        log.info("bot %s: %d knowledge-base entries", settings.name, len(entries))

    def _batched(self, model: RegistryClassifier | None) -> MicroBatcher | None:
        return MicroBatcher(model.predict, self.settings.retrieval.max_batch) if model else None

    @staticmethod
    async def _classify(batcher: MicroBatcher | None, text: str) -> Prediction | None:
        return await batcher(text) if batcher else None

    async def reply(self, text: str, plan: FaultPlan, request_id: str) -> BotReply:
        """Answers ``text``, applying the content faults of ``plan`` (fabrication, answering the
        unanswerable)."""
        s = self.settings
        query, intent, sentiment = await asyncio.gather(
            self.embed(text), self._classify(self.intent, text), self._classify(self.sentiment, text)
        )
        details: dict[str, Any] = {
            "request_id": request_id,
            "entities": [EntityOut(**dataclasses.asdict(e)) for e in extract_entities(text)],
            "sentiment": sentiment.label if sentiment else None,
            "sentiment_confidence": sentiment.confidence if sentiment else None,
            "corrupted": False,
            "corruptions": [],
        }
        if intent is not None:
            details.update(intent=intent.label, intent_confidence=intent.confidence, intent_source="model")
        reason = escalation_reason(text, intent, sentiment, s.routing)
        if reason is not None:
            ext = BotExtension(
                contexts=[],
                sources=[],
                confidence=0.0,
                abstained=False,
                escalated=True,
                escalation_reason=reason,
                suggested_actions=["wait_for_agent"],
                **details,
            )
            return BotReply(s.messages.escalate, None, ext)

        hits = self.retriever.search(query, s.retrieval.top_k)
        best = hits[0]
        answerable = best.score >= s.retrieval.abstain_threshold
        corruptions: list[dict[str, Any]] = []
        if not answerable and plan.answer_unanswerable:
            answerable = True
            corruptions.append(
                {
                    "kind": "answered_unanswerable",
                    "score": best.score,
                    "threshold": s.retrieval.abstain_threshold,
                }
            )
        grounded = best.entry.answer if answerable else None
        reply_text = grounded or s.messages.abstain
        if grounded and plan.fabricate:
            reply_text, edits = fabricate(grounded, plan.rng(), s.faults.fabricate_kinds)
            corruptions.extend(dataclasses.asdict(edit) for edit in edits)
        if grounded and intent is None and best.entry.intent:
            details.update(intent=best.entry.intent, intent_confidence=best.score, intent_source="kb")
        details.update(corrupted=bool(corruptions), corruptions=corruptions)
        ext = BotExtension(
            contexts=[hit.entry.passage for hit in hits],
            sources=[SourceOut(id=h.entry.id, title=h.entry.title, score=h.score) for h in hits],
            confidence=best.score,
            abstained=not answerable,
            escalated=False,
            suggested_actions=[*best.entry.actions, "mark_resolved", "talk_to_agent"]
            if answerable
            else ["rephrase", "talk_to_agent"],
            **details,
        )
        return BotReply(reply_text, grounded, ext)
