"""Operational metrics: latency percentiles, error and timeout rates."""

from __future__ import annotations

from typing import Any

import numpy as np

from csml.audit.metrics.base import METRICS, Metric
from csml.schemas import AuditSample, BotReply, MetricResult


@METRICS.register()
class LatencyPercentile(Metric):
    """A latency percentile in milliseconds over the requests that got an HTTP answer (lower is better)."""

    name = "latency_p95_ms"
    better = "lower"
    percentile = 95.0

    def __init__(self, percentile: float | None = None, **base: Any) -> None:
        super().__init__(**base)
        if percentile is not None:
            self.percentile = float(percentile)

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if reply.error and reply.error.startswith(("timeout", "connection")):
            return MetricResult(None, reply.error)
        return MetricResult(reply.latency_ms, f"{reply.latency_ms:.1f} ms")

    def aggregate(self, values: list[float]) -> float | None:
        return float(np.percentile(values, self.percentile)) if values else None


@METRICS.register()
class LatencyP50(LatencyPercentile):
    """The median latency in milliseconds."""

    name = "latency_p50_ms"
    percentile = 50.0


@METRICS.register()
class ErrorRate(Metric):
    """Share of samples with no usable answer (timeouts, HTTP errors, malformed JSON, empty answers)."""

    name = "error_rate"
    better = "lower"

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        return MetricResult(0.0 if reply.ok else 1.0, "ok" if reply.ok else str(reply.error))


@METRICS.register()
class TimeoutRate(Metric):
    """Share of samples whose every attempt timed out."""

    name = "timeout_rate"
    better = "lower"

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        timed_out = bool(reply.error and reply.error.startswith("timeout"))
        return MetricResult(float(timed_out), str(reply.error) if timed_out else "answered in time")
