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
        direction: ``higher`` or ``lower`` is better (None: the metric's own, :attr:`better`).
        gate_on: ``value`` (the point value meets the threshold) or ``interval`` (the 95% bootstrap interval's
            conservative bound does: lower bound when higher is better, upper bound when lower is).

    Class attributes:
        name: Registry name.
        better: The direction that is better unless a suite says otherwise (``higher`` or ``lower``).
        needs_embedder: Whether the constructor takes an ``embedder``.
    """

    name: str = ""
    needs_embedder: bool = False
    better: str = "higher"

    def __init__(
        self, threshold: float | None = None, direction: str | None = None, gate_on: str = "value"
    ) -> None:
        self.threshold = threshold
        self.direction = direction or self.better
        self.gate_on = gate_on

    @classmethod
    def averages_values(cls) -> bool:
        """Whether the aggregate is the plain mean of the applicable per-sample values (not a percentile or
        a macro-F1): bootstrap draws and paired tests then work on the values directly."""
        return cls.aggregate is Metric.aggregate and cls.aggregate_results is Metric.aggregate_results

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

    def passed(self, value: float | None, interval: tuple[float, float] | None = None) -> bool | None:
        """Whether an aggregate meets the threshold (None: no threshold, or no value to judge); with
        ``gate_on: interval``, whether the interval's conservative bound does."""
        if self.threshold is None or value is None:
            return None
        if self.gate_on == "interval":
            if interval is None:
                return None
            value = interval[0] if self.direction == "higher" else interval[1]
        return value >= self.threshold if self.direction == "higher" else value <= self.threshold

    def interval(
        self, results: Sequence[MetricResult], resamples: int = 1000, seed: int = 0
    ) -> tuple[float, float] | None:
        """95% percentile-bootstrap interval of the aggregate: the samples are drawn with replacement
        ``resamples`` times (samples without a value included, as in the audit) and aggregated as the audit
        is. None with fewer than two applicable values."""
        values = [r.value for r in results]
        if sum(v is not None for v in values) < 2:
            return None
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, len(results), size=(resamples, len(results)))
        if self.averages_values():  # the mean of the applicable values, for all draws at once
            known = np.array([v is not None for v in values])
            filled = np.array([0.0 if v is None else float(v) for v in values])
            counts = known[draws].sum(axis=1)
            stats = filled[draws].sum(axis=1)[counts > 0] / counts[counts > 0]
        else:
            stats = np.array(
                [a for row in draws if (a := self.aggregate_results([results[i] for i in row])) is not None]
            )
        if not len(stats):
            return None
        low, high = np.percentile(stats, [2.5, 97.5])
        return float(low), float(high)


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
    kwargs["gate_on"] = spec.gate_on
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
