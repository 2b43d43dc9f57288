"""HTTP request and response bodies of the reference bot (pydantic; also its OpenAPI schema at /docs).

The OpenAI-compatible chat completion carries the bot's grounding and routing in an extension field,
``csml`` (:class:`BotExtension`): retrieved contexts and their sources, intent, confidence, escalation,
and -- unless ``bot.faults.report_in_response`` is false -- whether and how the reply was corrupted.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from csml.records import Channel


class ErrorDetail(BaseModel):
    """OpenAI-style error: a readable message, a type, and the request field at fault if any."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Body of every 4xx and 5xx response."""

    error: ErrorDetail


class ContentPart(BaseModel):
    """One part of a multi-part message; text parts are read, others ignored."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """A chat message as OpenAI clients send it (extra fields such as ``name`` are accepted)."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text (text parts joined)."""
        if isinstance(self.content, list):
            return " ".join(part.text for part in self.content if part.text)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``: the last user message is the question. Sampling parameters
    (temperature, max_tokens...) are accepted and ignored: the extractive bot is deterministic."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


class EntityOut(BaseModel):
    """An entity found in the customer's message."""

    type: str
    value: str
    start: int
    end: int


class SourceOut(BaseModel):
    """A retrieved knowledge-base entry: id, title and cosine similarity to the question."""

    id: str
    title: str
    score: float


class BotExtension(BaseModel):
    """What the bot knows about its reply beyond the text (the ``csml`` field of a chat completion).

    ``contexts`` are the retrieved passages (best first) the answer is grounded in; ``confidence`` is the
    best passage's similarity, compared with the abstain threshold. ``corrupted`` and ``corruptions`` are
    null when the bot is configured not to disclose them.
    """

    request_id: str
    contexts: list[str]
    sources: list[SourceOut]
    confidence: float
    abstained: bool
    escalated: bool
    escalation_reason: str | None = None
    intent: str | None = None
    intent_confidence: float | None = None
    intent_source: Literal["model", "kb"] | None = None
    sentiment: str | None = None
    sentiment_confidence: float | None = None
    entities: list[EntityOut] = Field(default_factory=list)
    suggested_actions: list[str] = Field(default_factory=list)
    corrupted: bool | None = None
    corruptions: list[dict[str, Any]] | None = None


class AssistantMessage(BaseModel):
    """The bot's reply in a chat completion."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """The one choice of a chat completion (the extractive bot has one answer)."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    """Whitespace-token counts (the extractive bot has no tokenizer of its own)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """OpenAI chat completion object plus the ``csml`` extension."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    csml: BotExtension


class ConversationCreate(BaseModel):
    """``POST /v1/conversations`` (all fields optional)."""

    model_config = ConfigDict(extra="forbid")
    customer_id: str | None = Field(default=None, max_length=200)
    channel: Channel = Channel.CHAT
    metadata: dict[str, str] = Field(default_factory=dict, max_length=20)


class MessageIn(BaseModel):
    """``POST /v1/conversations/{id}/messages``: the customer's message."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)


class EscalateIn(BaseModel):
    """``POST /v1/conversations/{id}/escalate``: why the conversation goes to a human."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="requested", max_length=500)


class MessageReply(BotExtension):
    """The bot's reply to a message: its text and everything in :class:`BotExtension`."""

    conversation_id: str
    text: str


class Turn(BaseModel):
    """One message of a conversation; bot turns carry their reply details."""

    role: Literal["customer", "bot"]
    text: str
    time: str
    reply: MessageReply | None = None


class ConversationOut(BaseModel):
    """A conversation and its messages, oldest first."""

    id: str
    status: Literal["open", "escalated"]
    created_at: str
    customer_id: str | None
    channel: Channel
    metadata: dict[str, str]
    escalation_reason: str | None = None
    turns: list[Turn]
