"""In-memory conversations of the reference bot (bounded: the oldest is dropped beyond the limit)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

from csml.bot.schemas import ConversationCreate, ConversationOut, MessageReply, Turn


def now_iso() -> str:
    """The current UTC time, ISO-8601 with seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ConversationStore:
    """Conversations by id, kept in memory.

    Args:
        max_conversations: How many are kept; creating one more drops the oldest.
    """

    def __init__(self, max_conversations: int) -> None:
        self.max_conversations = max_conversations
        self._items: OrderedDict[str, ConversationOut] = OrderedDict()

    def create(self, request: ConversationCreate) -> ConversationOut:
        """A new open conversation."""
        conversation = ConversationOut(
            id=f"conv_{uuid.uuid4().hex}",
            status="open",
            created_at=now_iso(),
            customer_id=request.customer_id,
            channel=request.channel,
            metadata=request.metadata,
            turns=[],
        )
        self._items[conversation.id] = conversation
        while len(self._items) > self.max_conversations:
            self._items.popitem(last=False)
        return conversation

    def get(self, conversation_id: str) -> ConversationOut | None:
        """The conversation, or None if it does not exist (or was dropped)."""
        return self._items.get(conversation_id)

    @staticmethod
    def add_exchange(conversation: ConversationOut, text: str, reply: MessageReply) -> None:
        """Appends the customer's message and the bot's reply; an escalating reply escalates."""
        stamp = now_iso()
        conversation.turns.append(Turn(role="customer", text=text, time=stamp))
        conversation.turns.append(Turn(role="bot", text=reply.text, time=stamp, reply=reply))
        if reply.escalated and conversation.status == "open":
            ConversationStore.escalate(conversation, reply.escalation_reason or "bot")

    @staticmethod
    def escalate(conversation: ConversationOut, reason: str) -> None:
        """Hands the conversation to a human: the bot stops answering it."""
        conversation.status = "escalated"
        conversation.escalation_reason = reason
