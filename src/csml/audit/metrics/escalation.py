"""Escalation metrics: customers who must reach a human do, and calm in-scope ones are not handed over.

A reply counts as a hand-over when the bot reports ``escalated`` or says one of ``escalate_patterns`` (for
bots that report no flag; the suite's ``escalate_patterns`` unless a metric's params name its own). Only
samples with ``should_escalate`` set are scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csml.audit.metrics.base import METRICS, Metric, says_any
from csml.schemas import AuditSample, BotReply, MetricResult


def escalated(reply: BotReply, patterns: Sequence[str]) -> bool:
    """Whether the reply hands the customer to a human (:func:`~csml.audit.metrics.base.says_any`)."""
    return bool(reply.escalated) or says_any(reply.text, patterns)


class EscalationMetric(Metric):
    """Base: ``escalate_patterns`` are reply phrases that mean a hand-over."""

    def __init__(self, escalate_patterns: Sequence[str] = (), **base: Any) -> None:
        super().__init__(**base)
        self.patterns = tuple(escalate_patterns)

    def handed_over(self, sample: AuditSample, reply: BotReply, wanted: bool) -> bool | str:
        if sample.should_escalate is not wanted:
            return "not scored here" if sample.should_escalate is not None else "escalation not labelled"
        if not reply.ok:
            return f"no answer to score ({reply.error})"
        return escalated(reply, self.patterns)


@METRICS.register()
class EscalationRecall(EscalationMetric):
    """On customers who must reach a human (angry, out of scope, asking for one): 1.0 when handed over."""

    name = "escalation_recall"

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        result = self.handed_over(sample, reply, wanted=True)
        if isinstance(result, str):
            return MetricResult(None, result)
        if result:
            return MetricResult(1.0, "handed over to a human")
        return MetricResult(0.0, f"{sample.category} customer kept by the bot: {reply.text[:120]!r}")


@METRICS.register()
class FalseEscalationRate(EscalationMetric):
    """On calm in-scope customers: 1.0 when the bot hands them over anyway (lower is better)."""

    name = "false_escalation_rate"
    better = "lower"

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        result = self.handed_over(sample, reply, wanted=False)
        if isinstance(result, str):
            return MetricResult(None, result)
        return MetricResult(float(result), "escalated a calm in-scope request" if result else "kept")
