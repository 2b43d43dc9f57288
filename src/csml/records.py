"""The one typed record schema shared by csml's training data, evaluation and audits.

Every utterance csml sees -- a Banking77 query, a tweet to an airline, an audit question -- is a
:class:`Record`. Records always carry the customer-journey stage and the channel they come from, so every
metric can be sliced by both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class JourneyStage(str, Enum):
    """Where the customer is in their journey when the utterance is made."""

    AWARENESS = "awareness"
    INTEREST = "interest"
    CONSIDERATION = "consideration"
    DECISION = "decision"
    UPSELL = "upsell"
    SUPPORT = "support"
    RETENTION = "retention"
    ADVOCACY = "advocacy"


class Channel(str, Enum):
    """The medium through which the utterance reached the business."""

    EMAIL = "email"
    REVIEW = "review"
    SURVEY = "survey"
    CHAT = "chat"
    CALL = "call"
    TICKET = "ticket"
    FAQ = "faq"
    SOCIAL = "social"


LABEL_FIELDS = ("intent", "sentiment", "grounded")
"""Record fields a classifier can be trained to predict (``data.label_field`` in config)."""


@dataclass(frozen=True)
class Record:
    """One customer utterance with its labels and journey context.

    Attributes:
        id: Identifier unique within its dataset (``"<source>:<split>:<row>"`` for file-based sources).
        text: The customer's utterance; never empty.
        source: Name of the dataset the record comes from (``"banking77"``).
        stage: Journey stage, from the dataset's nature and the versioned intent-to-stage mapping.
        channel: Channel the utterance came through.
        intent: Intent label, if the dataset has one (``"oos"`` marks out-of-scope in CLINC150).
        sentiment: Sentiment label (``"negative"``, ``"neutral"``, ``"positive"``), if the dataset has one.
        grounded: ``"supported"`` or ``"unsupported"`` for groundedness pairs (``text`` holds the claim and its
            knowledge; see :mod:`csml.judge.data`).
        customer_id: Optional id of the customer.
        conversation_id: Optional id of the conversation the utterance belongs to.
        timestamp: Optional ISO-8601 timestamp.
        context: Earlier turns of the conversation, oldest first.
        response: The agent's reply to this utterance, if known.
        meta: Free-form extra fields kept from the source (never used as features).
    """

    id: str
    text: str
    source: str
    stage: JourneyStage
    channel: Channel
    intent: str | None = None
    sentiment: str | None = None
    grounded: str | None = None
    customer_id: str | None = None
    conversation_id: str | None = None
    timestamp: str | None = None
    context: tuple[str, ...] = ()
    response: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def label(self, label_field: str) -> str | None:
        """Returns the value of the label field a model is trained on (one of ``LABEL_FIELDS``)."""
        if label_field not in LABEL_FIELDS:
            raise ValueError(f"label_field must be one of {LABEL_FIELDS}, got {label_field!r}")
        return getattr(self, label_field)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (enums as their string values)."""
        out = dataclasses.asdict(self)
        out["stage"] = self.stage.value
        out["channel"] = self.channel.value
        out["context"] = list(self.context)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["stage"] = JourneyStage(values["stage"])
        values["channel"] = Channel(values["channel"])
        values["context"] = tuple(values.get("context") or ())
        return cls(**values)
