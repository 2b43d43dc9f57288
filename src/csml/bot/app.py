"""The reference bot's HTTP API (FastAPI), built by :func:`create_app`.

Endpoints: ``POST /v1/chat/completions`` (OpenAI-compatible, with the ``csml`` extension field),
``POST /v1/conversations``, ``POST /v1/conversations/{id}/messages``, ``GET /v1/conversations/{id}``,
``POST /v1/conversations/{id}/escalate`` and ``GET /healthz``. Errors are JSON
(``{"error": {"message", "type", "param"}}``): 400 unreadable JSON or a bad request, 401 missing or wrong
bearer token, 404 unknown conversation or path, 413 body over ``bot.limits.max_body_bytes``, 422 a body
that does not match the schema, 500 a server fault (real or injected).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from omegaconf import DictConfig
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from csml import __version__
from csml.bot.conversations import ConversationStore
from csml.bot.schemas import (
    AssistantMessage,
    BotExtension,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ConversationCreate,
    ConversationOut,
    ErrorBody,
    EscalateIn,
    MessageIn,
    MessageReply,
    Usage,
)
from csml.bot.service import BotService, error_response
from csml.bot.settings import BotSettings

log = logging.getLogger(__name__)

ERROR_TYPES = {
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    500: "server_error",
}
ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 413, 422, 500)}


class BadRequest(HTTPException):
    """A 400 naming the request field at fault."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(status_code=400, detail=message)
        self.param = param


class BodySizeLimit:
    """Limits request bodies to ``max_bytes``: 413 with a JSON error.

    A declared ``Content-Length`` over the limit is refused before the body is read; a body sent without
    one (chunked) is counted as it arrives, and the route's body reading fails with the same 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"request body over the {self.max_bytes}-byte limit")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            error = self._too_large()
            await error_response(413, error.detail, ERROR_TYPES[413])(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self._too_large()
            return message

        await self.app(scope, counted, send)


def create_app(config: DictConfig | BotSettings) -> FastAPI:
    """Builds the bot's FastAPI app from a composed ``serve`` config or :class:`BotSettings`.

    The knowledge base, its embeddings and any registry models load here, before a server starts.
    """
    settings = config if isinstance(config, BotSettings) else BotSettings.from_config(config)
    service = BotService(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.bot.close()
        service.log.close()

    app = FastAPI(
        title="csml reference bot",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(BodySizeLimit, max_bytes=settings.limits.max_body_bytes)
    _add_error_handlers(app)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {
            "status": "ok",
            "bot": settings.name,
            "kb_entries": len(service.bot.retriever.entries),
            "answer_mode": "generative" if service.bot.generator else "extractive",
            "generator": service.bot.generator.name if service.bot.generator else None,
            "intent_model": settings.routing.intent_model,
            "sentiment_model": settings.routing.sentiment_model,
        }

    app.include_router(_routes(service), dependencies=[Depends(_bearer_auth(settings.auth_token_env))])
    return app


def _routes(service: BotService) -> APIRouter:
    settings, store = service.settings, service.conversations
    router = APIRouter(prefix="/v1", responses=ERRORS)

    @router.post("/chat/completions", response_model=ChatCompletion)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        """Answers the last user message; the ``csml`` field holds contexts, intent and escalation. The
        header ``bot.safety.customer_header`` names the signed-in customer."""
        if body.stream:
            raise BadRequest("stream=true is not supported by this bot", "stream")
        if len(body.messages) > settings.limits.max_messages:
            raise BadRequest(f"at most {settings.limits.max_messages} messages per request", "messages")
        questions = [m.text().strip() for m in body.messages if m.role == "user"]
        if not questions or not questions[-1]:
            raise BadRequest("messages must end with a user message that has text", "messages")
        question = _checked(questions[-1], settings.limits.max_message_chars, "messages")
        request_id = service.ids.new("chatcmpl-")

        def render(text: str, details: BotExtension) -> ChatCompletion:
            prompt_tokens = sum(len(m.text().split()) for m in body.messages)
            return ChatCompletion(
                id=request_id,
                created=int(time.time()),
                model=body.model or settings.name,
                choices=[Choice(message=AssistantMessage(content=text))],
                usage=Usage(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=len(text.split()),
                    total_tokens=prompt_tokens + len(text.split()),
                ),
                csml=details,
            )

        customer_id = request.headers.get(settings.safety.customer_header)
        replies = tuple(m.text() for m in body.messages if m.role == "assistant")
        return await service.respond(
            question,
            request_id,
            "chat.completions",
            render,
            customer_id=customer_id,
            earlier=tuple(questions[:-1]),
            earlier_replies=replies,
        )

    @router.post("/conversations", status_code=201, response_model=ConversationOut)
    async def create_conversation(body: ConversationCreate | None = None) -> ConversationOut:
        """Opens a conversation."""
        return store.create(body or ConversationCreate())

    @router.get("/conversations/{conversation_id}", response_model=ConversationOut)
    async def get_conversation(conversation_id: str) -> ConversationOut:
        """The conversation with all its messages."""
        return _find(store, conversation_id)

    @router.post("/conversations/{conversation_id}/messages", response_model=MessageReply)
    async def send_message(conversation_id: str, body: MessageIn) -> Response | MessageReply:
        """Sends the customer's message; the bot's reply has text, intent, entities, suggested actions
        and contexts. Once escalated, the bot only acknowledges that a human has the conversation."""
        conversation = _find(store, conversation_id)
        text = _checked(body.text.strip(), settings.limits.max_message_chars, "text")
        request_id = service.ids.new("msg_")
        if conversation.status == "escalated":
            reply = MessageReply(
                request_id=request_id,
                conversation_id=conversation.id,
                text=settings.messages.handoff,
                contexts=[],
                sources=[],
                confidence=0.0,
                abstained=False,
                escalated=True,
                escalation_reason=conversation.escalation_reason,
                suggested_actions=["wait_for_agent"],
            )
            store.add_exchange(conversation, text, reply)
            return reply

        def render(reply_text: str, details: BotExtension) -> MessageReply:
            reply = MessageReply(conversation_id=conversation.id, text=reply_text, **details.model_dump())
            store.add_exchange(conversation, text, reply)
            return reply

        return await service.respond(
            text,
            request_id,
            "conversations.messages",
            render,
            conversation.id,
            customer_id=conversation.customer_id,
            earlier=tuple(turn.text for turn in conversation.turns if turn.role == "customer"),
            earlier_replies=tuple(turn.text for turn in conversation.turns if turn.role == "bot"),
        )

    @router.post("/conversations/{conversation_id}/escalate", response_model=ConversationOut)
    async def escalate(conversation_id: str, body: EscalateIn | None = None) -> ConversationOut:
        """Hands the conversation to a human agent."""
        conversation = _find(store, conversation_id)
        store.escalate(conversation, (body or EscalateIn()).reason)
        return conversation

    return router


def _find(store: ConversationStore, conversation_id: str) -> ConversationOut:
    conversation = store.get(conversation_id)
    if conversation is None:
        raise HTTPException(404, f"conversation {conversation_id!r} not found")
    return conversation


def _checked(text: str, max_chars: int, param: str) -> str:
    if not text:
        raise BadRequest("the message is empty", param)
    if len(text) > max_chars:
        raise BadRequest(f"the message has {len(text)} characters; the limit is {max_chars}", param)
    return text


def _bearer_auth(env_name: str | None) -> Callable[..., Awaitable[None]]:
    """A dependency requiring ``Authorization: Bearer $<env_name>`` when that variable is set."""
    token = os.environ.get(env_name) if env_name else None
    if env_name and not token:
        log.warning("auth is off: $%s is not set", env_name)

    async def check(authorization: str | None = Header(default=None)) -> None:
        if token is None:
            return
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPException(
                401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    return check


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(p["type"] == "json_invalid" for p in problems):
            reason = problems[0].get("ctx", {}).get("error", "")
            return error_response(400, f"request body is not valid JSON: {reason}", "invalid_request_error")
        where = [".".join(str(part) for part in p["loc"] if part != "body") or "body" for p in problems]
        message = "; ".join(f"{w}: {p['msg']}" for w, p in zip(where, problems, strict=True))
        return error_response(422, message, "invalid_request_error", param=where[0])

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        kind = ERROR_TYPES.get(error.status_code, "invalid_request_error")
        return error_response(
            error.status_code, str(error.detail), kind, getattr(error, "param", None), error.headers
        )

    @app.exception_handler(Exception)
    async def crashed(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=error)
        return error_response(500, "internal server error", "server_error")
