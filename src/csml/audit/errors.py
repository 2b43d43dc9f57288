"""The audit's configuration error, below every audit module that raises it (suites, question builders,
metrics, the runner)."""

from __future__ import annotations


class AuditConfigError(ValueError):
    """An audit that cannot run as configured (unknown suite or metric, bad thresholds, no target)."""
