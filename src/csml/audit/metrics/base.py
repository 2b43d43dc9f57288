"""The metric interface and registry: classes with injected dependencies, a pure per-sample score, a
threshold and direction.

Each metric scores one (sample, reply) pair to a :class:`csml.schemas.MetricResult` (a value and the
reason for it, or ``value=None`` when the metric does not apply: an unanswerable question for correctness,
a failed request for groundedness) and aggregates the per-sample results to the suite-level figure gated
on.
Register a metric class with ``@METRICS.register()`` (under its ``name``); suites name metrics by it, and
other distributions add metrics through the entry-point group ``csml.audit_metrics`` (:mod:`csml.registry`).
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from csml.audit.errors import AuditConfigError
from csml.audit.suite import MetricSpec
from csml.models.encoder import Embedder
from csml.registry import Registry, UnknownNameError
from csml.schemas import AuditSample, BotReply, MetricResult


class Metric(ABC):
    """Base of audit metrics.

    Args:
        threshold: The gate on the aggregate (None: reported, not gated).
        direction: ``higher`` or ``lower`` is better.

    Class attributes:
        name: Registry name.
        needs_embedder: Whether the constructor takes an ``embedder``.
    """

    name: str = ""
    needs_embedder: bool = False

    def __init__(self, threshold: float | None = None, direction: str = "higher") -> None:
        self.threshold = threshold
        self.direction = direction

    def prepare(self, pairs: Sequence[tuple[AuditSample, BotReply]]) -> None:
        """Sees every (sample, reply) of the audit before scoring (metrics comparing samples use it)."""
        return None

    @abstractmethod
    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        """Scores one sample; must not raise for a bad reply (return None with the reason)."""

    def aggregate(self, values: list[float]) -> float | None:
        """The suite-level value from the applicable per-sample values (mean by default)."""
        return float(np.mean(values)) if values else None

    def aggregate_results(self, results: Sequence[MetricResult]) -> float | None:
        """The suite-level value from per-sample results; :meth:`aggregate` of the applicable values unless
        a metric needs more than the values (macro-F1 needs the labels)."""
        return self.aggregate([r.value for r in results if r.value is not None])

    def passed(self, value: float | None) -> bool | None:
        """Whether an aggregate meets the threshold (None: no threshold, or no value to judge)."""
        if self.threshold is None or value is None:
            return None
        return value >= self.threshold if self.direction == "higher" else value <= self.threshold


METRICS: Registry[type[Metric]] = Registry("audit_metrics", "audit metric", base=Metric)
"""Metric classes by name (entry-point group ``csml.audit_metrics``)."""


def build_metric(spec: MetricSpec, embedder: Callable[[], Embedder], **context: Any) -> Metric:
    """Instantiates ``spec``; ``embedder`` is called only for metrics that need one.

    Raises:
        AuditConfigError: unknown metric (with the closest name) or bad params.
    """
    try:
        cls = METRICS[spec.name]
    except UnknownNameError as error:
        raise AuditConfigError(str(error)) from None
    kwargs: dict[str, Any] = dict(spec.params)
    if cls.needs_embedder:
        kwargs["embedder"] = embedder()
    accepted = inspect.signature(cls.__init__).parameters
    for key, value in context.items():
        if key in accepted:
            kwargs.setdefault(key, value)
    if spec.direction is not None:
        kwargs["direction"] = spec.direction
    try:
        return cls(threshold=spec.threshold, **kwargs)
    except TypeError as error:
        raise AuditConfigError(f"metric {spec.name!r}: bad params {sorted(spec.params)} ({error})") from None


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """Sentences of ``text`` with at least one word of 3+ letters."""
    return [s.strip() for s in _SENTENCE.split(text) if re.search(r"[A-Za-z]{3}", s)]


def _skip(sample: AuditSample, reply: BotReply, answerable_only: bool = True) -> str | None:
    if not reply.ok:
        return f"no answer to score ({reply.error})"
    if answerable_only and not sample.answerable:
        return "unanswerable question"
    return None


_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def says_any(text: str, patterns: Sequence[str]) -> bool:
    """Whether ``text`` says one of ``patterns``: phrases matched as whole words, case-insensitive, with
    typographic quotes read as plain ones ("don’t" is "don't"); a pattern starting ``re:`` is a
    regular expression (searched case-insensitively), for phrases that need more ("^connecting you")."""
    text = text.translate(_QUOTES)
    for pattern in patterns:
        if pattern.startswith("re:"):
            found = re.search(pattern[3:], text, flags=re.IGNORECASE)
        else:
            phrase = re.escape(pattern.translate(_QUOTES).strip())
            found = re.search(rf"(?<!\w){phrase}(?!\w)", text, flags=re.IGNORECASE)
        if found:
            return True
    return False


def abstained(reply: BotReply, patterns: Sequence[str]) -> bool:
    """Whether the reply declines to answer: the bot says so, escalates, or says an abstain phrase."""
    return bool(reply.abstained or reply.escalated) or says_any(reply.text, patterns)
