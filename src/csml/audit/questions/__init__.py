"""Question sets of the audit suites, built from real data, deterministic for a seed.

Bundled sets (data csml may redistribute) are written to ``audits/<suite>/*.jsonl`` by
``python -m csml.audit.questions [suite ...]``; sets from data csml may not redistribute are built at audit
time by the builders of :data:`BUILDERS`, which a suite names in its ``questions`` list::

    questions:
      - questions.jsonl
      - {build: airline_complaints, params: {limit: 60, seed: 0}}
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from csml.audit.errors import AuditConfigError
from csml.audit.questions.abcd import build_abcd_paraphrases, build_abcd_questions
from csml.audit.questions.escalation import build_airline_complaints, build_escalation_questions
from csml.audit.questions.nlu import build_banking77, build_clinc150
from csml.audit.questions.truthfulqa import build_truthfulqa
from csml.schemas import AuditSample

BUILDERS: dict[str, Callable[..., list[AuditSample]]] = {
    "airline_complaints": build_airline_complaints,
    "truthfulqa": build_truthfulqa,
}
"""Builders a suite may run at audit time; they take ``external_data_dir``/``data_dir`` and their params."""

BUNDLED: dict[str, tuple[str, Callable[[Path], list[AuditSample]]]] = {
    "rag_abcd": ("questions.jsonl", lambda data: build_abcd_questions(data / "abcd")),
    "hallucination_abcd": ("paraphrases.jsonl", lambda data: build_abcd_paraphrases(data / "abcd")),
    "nlu_banking77": ("questions.jsonl", build_banking77),
    "nlu_clinc150": ("questions.jsonl", build_clinc150),
    "escalation": ("questions.jsonl", build_escalation_questions),
}
"""Suite -> (file in its folder, builder from the bundled data folder) for the shipped question files."""


def run_builder(name: str, params: dict[str, Any], data_dirs: dict[str, Any]) -> list[AuditSample]:
    """Runs builder ``name`` with ``params`` and whichever of ``data_dirs`` it accepts.

    Raises:
        AuditConfigError: unknown builder or params, or the builder's own data errors.
    """
    if name not in BUILDERS:
        raise AuditConfigError(f"unknown question builder {name!r}; known: {sorted(BUILDERS)}")
    builder = BUILDERS[name]
    accepted = inspect.signature(builder).parameters
    if unknown := sorted(set(params) - set(accepted)):
        raise AuditConfigError(
            f"question builder {name!r}: unknown params {unknown}; accepted {list(accepted)}"
        )
    kwargs = {k: v for k, v in data_dirs.items() if k in accepted} | dict(params)
    if missing := [
        p for p, spec in accepted.items() if spec.default is inspect.Parameter.empty and p not in kwargs
    ]:
        raise AuditConfigError(f"question builder {name!r}: no value for {missing} (set paths.{missing[0]})")
    return builder(**kwargs)


def write_questions(samples: list[AuditSample], path: str | Path) -> None:
    """Writes a question set as JSONL (one :class:`AuditSample` a line)."""
    text = "".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in samples)
    Path(path).write_text(text, encoding="utf-8")


__all__ = [
    "BUILDERS",
    "BUNDLED",
    "build_abcd_paraphrases",
    "build_abcd_questions",
    "build_airline_complaints",
    "build_banking77",
    "build_clinc150",
    "build_escalation_questions",
    "build_truthfulqa",
    "run_builder",
    "write_questions",
]
