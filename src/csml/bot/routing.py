"""Routing: optional intent and sentiment models from the MLflow registry, and escalation rules.

The bot escalates to a human when the customer asks for one, when the message is abusive (profanity or
insults, a word list), when the intent model says the message is out of scope (label ``oos``), or when the
sentiment model is confident the message is negative.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from csml.bot.settings import RoutingSettings

_FILLER = r"(?:me|to|with|through|a|an|the|your|real|live|actual|customer|service|support|please|one|of)"
HUMAN_REQUEST = re.compile(
    rf"\b(?:talk|speak|chat|connect|transfer|put|get|want|need|reach)(?:\s+{_FILLER})*"
    r"\s+(?:human|agent|representative|operator|person|staff|someone|somebody)s?\b"
    r"|^\W*(?:human|agent|representative|operator|real person)\W*$",
    re.IGNORECASE,
)
"""A request for a human: "can I talk to a human?", "connect me with an agent", "agent"."""


ABUSIVE = re.compile(
    r"\b(?:fuck\w*|shit\w*|bullshit|crap\w*|damn\w*|bastard\w*|idiot\w*|moron\w*|stupid|useless|pathetic|"
    r"screw (?:you|this)|piss(?:ed)? off)\b",
    re.IGNORECASE,
)
"""Profanity and insults: an angry customer a human should take over."""


@dataclass(frozen=True)
class Prediction:
    """A classifier's label for one text and its confidence."""

    label: str
    confidence: float


class RegistryClassifier:
    """A csml text classifier loaded from an MLflow model URI (``models:/<name>@champion``).

    Uses the logged model's own Python object (``unwrap_python_model()``), whose ``predict`` applies the
    out-of-scope threshold the model was trained with.

    Args:
        uri: Any MLflow model URI of a model logged by ``csml train``.
    """

    def __init__(self, uri: str) -> None:
        import mlflow.pyfunc

        self.uri = uri
        self.model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
        if not hasattr(self.model, "predict_proba"):
            raise TypeError(f"{uri} is not a csml text classifier (no predict_proba)")
        if (getattr(self.model, "card", None) or {}).get("multi_label"):
            raise TypeError(
                f"{uri} is a multi-label model (a set of intents per text); the bot routes each message on "
                "one intent: use a single-label model"
            )
        self._lock = threading.Lock()

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Label and confidence of each text."""
        with self._lock:
            frame = self.model.predict(None, texts, params={"top_k": 1})
        return [
            Prediction(str(label), float(c))
            for label, c in zip(frame["label"], frame["confidence"], strict=True)
        ]


def load_classifiers(
    settings: RoutingSettings, tracking_uri: str | None, registry_uri: str | None
) -> tuple[RegistryClassifier | None, RegistryClassifier | None]:
    """The configured (intent, sentiment) models; None for each one left null in config."""
    if not (settings.intent_model or settings.sentiment_model):
        return None, None
    from csml.tracking.runs import use_store

    if tracking_uri:
        use_store(tracking_uri, registry_uri)
    return (
        RegistryClassifier(settings.intent_model) if settings.intent_model else None,
        RegistryClassifier(settings.sentiment_model) if settings.sentiment_model else None,
    )


def escalation_reason(
    text: str, intent: Prediction | None, sentiment: Prediction | None, settings: RoutingSettings
) -> str | None:
    """Why the message goes to a human (``customer_request``, ``abusive_language``, ``out_of_scope``,
    ``negative_sentiment``), or None when the bot answers it."""
    if settings.human_request and HUMAN_REQUEST.search(text):
        return "customer_request"
    if settings.abusive_language and ABUSIVE.search(text):
        return "abusive_language"
    if intent is not None and intent.label == settings.oos_label:
        return "out_of_scope"
    if (
        sentiment is not None
        and sentiment.label == settings.negative_label
        and sentiment.confidence >= settings.negative_threshold
    ):
        return "negative_sentiment"
    return None
