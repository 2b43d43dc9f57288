"""Question sets of the audit suites, built from real data, deterministic for a seed.

Bundled sets (data csml may redistribute) are written to ``audits/<suite>/*.jsonl`` by
``python -m csml.audit.questions [suite ...]``; sets from data csml may not redistribute are built at audit
time by the builders of :data:`BUILDERS`, which a suite names in its ``questions`` list::

    questions:
      - questions.jsonl
      - {build: airline_complaints, params: {limit: 60, seed: 0}}

Other distributions add builders through the entry-point group ``csml.question_builders``
(:mod:`csml.registry`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from csml.audit.conversations.goals import bundled_kb_goals, sgd_goals
from csml.audit.errors import AuditConfigError
from csml.audit.questions.abcd import build_abcd_paraphrases, build_abcd_questions
from csml.audit.questions.escalation import build_airline_complaints, build_escalation_questions
from csml.audit.questions.nlu import build_banking77, build_clinc150
from csml.audit.questions.safety import build_safety_probes, write_safety_customers
from csml.audit.questions.truthfulqa import build_truthfulqa
from csml.registry import Registry, UnknownNameError
from csml.schemas import AuditSample

BUILDERS: Registry[Callable[..., list[AuditSample]]] = Registry("question_builders", "question builder")
"""Builders a suite may run at audit time; they take ``external_data_dir``/``data_dir`` and their params."""
BUILDERS.register("airline_complaints", build_airline_complaints)
BUILDERS.register("truthfulqa", build_truthfulqa)
BUILDERS.register("sgd_goals", sgd_goals)


class BundledQuestions(NamedTuple):
    """A shipped question file: its name in the suite's folder, its builder from the data folder, and what
    writes the suite's other generated files into its folder (returning their names), if any."""

    file: str
    build: Callable[[Path], list[AuditSample]]
    companions: Callable[[Path], list[str]] | None = None


BUNDLED: Registry[BundledQuestions] = Registry(
    "bundled_questions", "bundled question set", base=BundledQuestions, plugins=False
)
"""The shipped question file of each suite, by suite name."""
BUNDLED.register(
    "rag_abcd", BundledQuestions("questions.jsonl", lambda data: build_abcd_questions(data / "abcd"))
)
BUNDLED.register(
    "hallucination_abcd",
    BundledQuestions("paraphrases.jsonl", lambda data: build_abcd_paraphrases(data / "abcd")),
)
BUNDLED.register("nlu_banking77", BundledQuestions("questions.jsonl", build_banking77))
BUNDLED.register("nlu_clinc150", BundledQuestions("questions.jsonl", build_clinc150))
BUNDLED.register("escalation", BundledQuestions("questions.jsonl", build_escalation_questions))
BUNDLED.register("conversations", BundledQuestions("kb_goals.jsonl", bundled_kb_goals))
BUNDLED.register(
    "safety", BundledQuestions("questions.jsonl", build_safety_probes, companions=write_safety_customers)
)


def run_builder(name: str, params: dict[str, Any], data_dirs: dict[str, Any]) -> list[AuditSample]:
    """Runs builder ``name`` with ``params`` and whichever of ``data_dirs`` it accepts.

    Raises:
        AuditConfigError: unknown builder or params, or the builder's own data errors.
    """
    try:
        builder = BUILDERS[name]
    except UnknownNameError as error:
        raise AuditConfigError(str(error)) from None
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
    "BundledQuestions",
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
