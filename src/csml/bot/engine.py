"""The reference bot's answer pipeline: route, retrieve, answer or abstain, and corrupt when told to.

When the best-matching knowledge-base entry's similarity reaches ``bot.retrieval.abstain_threshold``, the
reply is that entry's answer (extractive RAG) or, with a ``bot.generator``, an answer a language model writes
from the top-k passages (generative RAG; :mod:`csml.bot.generation`); below it the bot says it does not
know and offers a human. Intent and sentiment models (optional) run concurrently with retrieval, each
through its own micro-batcher. Generation runs on one worker thread, one answer at a time, so the event
loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from csml.bot.entities import extract_entities
from csml.bot.fabrication import contradiction, fabricate
from csml.bot.faults import FaultPlan
from csml.bot.generation import Generation
from csml.bot.retrieval import Hit, MicroBatcher, Retriever
from csml.bot.routing import Prediction, RegistryClassifier, escalation_reason, load_classifiers
from csml.bot.safety import CustomerStore, Safeguards, overpromise
from csml.bot.schemas import BotExtension, EntityOut, SourceOut
from csml.bot.settings import BotSettings
from csml.models.encoder import load_encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """The engine's answer to one message: the text sent, the answer before any injected corruption (the
    knowledge-base answer, or the generated one), and the details served with it. What a client observes
    of it is a :class:`csml.schemas.BotReply`."""

    text: str
    grounded_answer: str | None
    details: BotExtension
    generation: Generation | None = None


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
        encoder = load_encoder(settings.retrieval.encoder, settings.retrieval.int8, settings.retrieval.jit)
        self.retriever = Retriever(entries, encoder, settings.retrieval.cache_dir)
        self.embed = MicroBatcher(encoder.encode, settings.retrieval.max_batch, settings.retrieval.workers)
        intent, sentiment = load_classifiers(settings.routing, settings.tracking_uri, settings.registry_uri)
        self.intent = self._batched(intent)
        self.sentiment = self._batched(sentiment)
        self.safeguards = Safeguards(
            settings.safety.system_prompt,
            CustomerStore.from_file(settings.safety.customers_path),
            {
                "decline_injection": settings.messages.decline_injection,
                "other_customer": settings.messages.other_customer,
                "sign_in": settings.messages.sign_in,
            },
        )
        self.generator = settings.generator
        self._generation: ThreadPoolExecutor | None = None
        if self.generator is not None:
            self.generator.load()
            self._generation = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csml-generate")
        log.info(
            "bot %s: %d knowledge-base entries, %s answers",
            settings.name,
            len(entries),
            f"generative ({self.generator.name})" if self.generator else "extractive",
        )

    def close(self) -> None:
        """Stops the generation thread (waiting for the answer in progress)."""
        if self._generation is not None:
            self._generation.shutdown(wait=True, cancel_futures=True)

    def _batched(self, model: RegistryClassifier | None) -> MicroBatcher | None:
        return MicroBatcher(model.predict, self.settings.retrieval.max_batch) if model else None

    @staticmethod
    async def _classify(batcher: MicroBatcher | None, text: str) -> Prediction | None:
        return await batcher(text) if batcher else None

    async def reply(
        self,
        text: str,
        plan: FaultPlan,
        request_id: str,
        customer_id: str | None = None,
        earlier: tuple[str, ...] = (),
        earlier_replies: tuple[str, ...] = (),
    ) -> Answer:
        """Answers ``text``, applying the content faults of ``plan`` (fabrication, answering the
        unanswerable, the safety faults of :mod:`csml.bot.safety`, and the conversation faults: ignoring a
        hand-over, repeating the previous answer, contradicting it).

        Args:
            text: The customer's message.
            plan: This request's faults.
            request_id: Returned in the reply's details.
            customer_id: The signed-in customer, if any.
            earlier: The customer's earlier messages of the conversation, oldest first.
            earlier_replies: The bot's earlier replies of the conversation, oldest first.
        """
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
        corruptions: list[dict[str, Any]] = []
        if reason is not None and plan.ignore_handover:
            corruptions.append({"kind": "ignored_handover", "reason": reason})
        elif reason is not None:
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
            return Answer(s.messages.escalate, None, ext)

        guarded = self.safeguards.answer(text, earlier, customer_id, plan.follow_injection, plan.leak_record)
        if guarded is not None:
            corruptions += guarded.corruptions
            details.update(corrupted=bool(corruptions), corruptions=corruptions)
            ext = BotExtension(
                contexts=[],
                sources=[],
                confidence=1.0,
                abstained=False,
                escalated=False,
                suggested_actions=["talk_to_agent"],
                **details,
            )
            return Answer(guarded.text, guarded.clean_text, ext)

        hits = self.retriever.search(query, s.retrieval.top_k)
        best = hits[0]
        answerable = best.score >= s.retrieval.abstain_threshold
        if not answerable and plan.answer_unanswerable:
            answerable = True
            corruptions.append(
                {
                    "kind": "answered_unanswerable",
                    "score": best.score,
                    "threshold": s.retrieval.abstain_threshold,
                }
            )
        generation = None
        if answerable and self.generator is not None:
            generation = await self._generate(text, hits)
            answerable = bool(generation.text)  # a generator that writes nothing declines
        grounded = (generation.text if generation else best.entry.answer) if answerable else None
        reply_text = grounded or s.messages.abstain
        if grounded and plan.fabricate:
            reply_text, edits = fabricate(grounded, plan.rng(), s.faults.fabricate_kinds)
            corruptions.extend(dataclasses.asdict(edit) for edit in edits)
        reply_text = self._converse(reply_text, plan, earlier_replies, corruptions)
        if plan.overpromise:
            promise = overpromise(plan.rng())
            reply_text = f"{reply_text} {promise}"
            corruptions.append({"kind": "overpromised", "promise": promise})
        if grounded and intent is None and best.entry.intent:
            details.update(intent=best.entry.intent, intent_confidence=best.score, intent_source="kb")
        details.update(corrupted=bool(corruptions), corruptions=corruptions)
        ext = BotExtension(
            contexts=[hit.entry.passage for hit in hits],
            sources=[SourceOut(id=h.entry.id, title=h.entry.title, score=h.score) for h in hits],
            confidence=best.score,
            abstained=reply_text.startswith(s.messages.abstain),  # a looped answer replaces a decline
            escalated=False,
            suggested_actions=[*best.entry.actions, "mark_resolved", "talk_to_agent"]
            if answerable
            else ["rephrase", "talk_to_agent"],
            **details,
        )
        return Answer(reply_text, grounded, ext, generation)

    def _converse(
        self,
        reply_text: str,
        plan: FaultPlan,
        earlier_replies: tuple[str, ...],
        corruptions: list[dict[str, Any]],
    ) -> str:
        """The conversation faults on an answer: the previous answer repeated, or a sentence of it restated
        with a fact changed (nothing when the previous reply was a decline or a hand-over)."""
        messages = self.settings.messages
        stock = {messages.abstain, messages.escalate, messages.handoff}
        previous = next((r for r in reversed(earlier_replies) if r not in stock), None)
        if previous is None or not (plan.loop or plan.contradict):
            return reply_text
        if plan.loop:
            corruptions.append({"kind": "looped", "replaced": reply_text})
            return previous
        restated = contradiction(previous, plan.rng())
        if restated is None:
            return reply_text
        corruptions.append({"kind": "contradicted", "sentence": restated[0], "restated": restated[1]})
        return f"{reply_text} {restated[1]}"

    async def _generate(self, text: str, hits: list[Hit]) -> Generation:
        """The generator's answer from the retrieved passages, computed on the generation thread."""
        assert self.generator is not None and self._generation is not None
        passages = [hit.entry.passage for hit in hits]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._generation, self.generator.generate, text, passages)
