"""One bot answer as the HTTP layer serves it: fault plan, latency, error, answer, malformed body, log."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import secrets
from collections.abc import Callable

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from csml.bot.conversations import ConversationStore
from csml.bot.engine import Answer, Bot
from csml.bot.faults import FaultInjector, ReplyLog, malformed_body
from csml.bot.schemas import BotExtension, ErrorBody, ErrorDetail
from csml.bot.settings import BotSettings

Render = Callable[[str, BotExtension], BaseModel]
"""Builds the response body from the reply text and its details (and may record the exchange)."""


def error_response(
    status: int, message: str, kind: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An OpenAI-style JSON error response."""
    body = ErrorBody(error=ErrorDetail(message=message, type=kind, param=param))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


class RequestIds:
    """Unique request ids without a system call each: a random prefix per app and a counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._count = itertools.count(1)

    def new(self, kind: str) -> str:
        """``<kind><12 hex digits of the app><10 hex digits of the counter>``."""
        return f"{kind}{self._prefix}{next(self._count):010x}"


class BotService:
    """The bot with its fault injector, reply log and conversations: what the routes share.

    Args:
        settings: The bot's settings.
    """

    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings
        self.bot = Bot(settings)
        self.injector = FaultInjector(settings.faults)
        self.log = ReplyLog(settings.reply_log)
        self.conversations = ConversationStore(settings.limits.max_conversations)
        self.ids = RequestIds()

    async def respond(
        self,
        text: str,
        request_id: str,
        endpoint: str,
        render: Render,
        conversation_id: str | None = None,
        customer_id: str | None = None,
        earlier: tuple[str, ...] = (),
        earlier_replies: tuple[str, ...] = (),
    ) -> Response:
        """Answers ``text`` under this request's fault plan and logs the reply.

        Args:
            text: The customer's question.
            request_id: Sent back as ``X-Request-ID`` and written to the reply log.
            endpoint: Logged, to tell chat completions from conversation messages.
            render: Builds the response body.
            conversation_id: Logged for conversation messages.
            customer_id: The signed-in customer, if any (logged).
            earlier: The customer's earlier messages of the conversation, oldest first.
            earlier_replies: The bot's earlier replies of the conversation, oldest first.
        """
        plan = self.injector.draw()
        if plan.latency_ms > 0:
            await asyncio.sleep(plan.latency_ms / 1000)
        headers = {"X-Request-ID": request_id}
        record = {
            "request_id": request_id,
            "endpoint": endpoint,
            "conversation_id": conversation_id,
            "customer_id": customer_id,
            "question": text,
            "latency_injected_ms": round(plan.latency_ms, 3),
        }
        if plan.error:
            self.log.write({**record, "fault": "error", "corrupted": False, "corruptions": []})
            return error_response(500, "internal server error", "server_error", headers=headers)
        reply = await self.bot.reply(text, plan, request_id, customer_id, earlier, earlier_replies)
        details = reply.details
        if not self.settings.faults.report_in_response:
            details = details.model_copy(update={"corrupted": None, "corruptions": None})
        body = render(reply.text, details).model_dump_json().encode()
        if plan.malformed:
            body = malformed_body(body, plan.rng())
        self.log.write({**record, "fault": "malformed" if plan.malformed else None, **_summary(reply)})
        return Response(body, media_type="application/json", headers=headers)


def _summary(reply: Answer) -> dict:
    d = reply.details
    return {
        "reply": reply.text,
        "grounded_answer": reply.grounded_answer,
        "generation": None
        if reply.generation is None
        else {k: v for k, v in dataclasses.asdict(reply.generation).items() if k != "text"},
        "corrupted": d.corrupted,
        "corruptions": d.corruptions,
        "abstained": d.abstained,
        "escalated": d.escalated,
        "escalation_reason": d.escalation_reason,
        "confidence": d.confidence,
        "intent": d.intent,
        "sources": [source.id for source in d.sources],
    }
