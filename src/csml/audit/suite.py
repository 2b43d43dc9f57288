"""Audit suites declared as data: ``audits/<suite>/suite.yaml`` parsed into :class:`Suite`.

A suite names its question set (JSONL of :class:`AuditSample`), the metrics it scores with their
thresholds and directions, and the phrases that count as abstaining. Schema (``audits/README.md``)::

    name: rag_abcd
    version: 1
    description: ...
    questions: questions.jsonl
    abstain_patterns: ["don't know", ...]
    metrics:
      groundedness: {threshold: 0.9, direction: higher, params: {sentence_threshold: 0.55}}
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

DIRECTIONS = ("higher", "lower")


class AuditConfigError(ValueError):
    """An audit that cannot run as configured (unknown suite or metric, bad thresholds, no target)."""


@dataclass(frozen=True)
class AuditSample:
    """One question of a suite.

    Attributes:
        id: Unique within the suite.
        question: The customer's message (the last user turn).
        answerable: False for off-topic and false-premise questions the bot should decline.
        category: ``policy``, ``off_topic``, ``false_premise``... (scores are also broken down by it).
        history: Earlier turns, OpenAI-style messages, oldest first.
        reference_answer: What a correct answer says, when known.
        reference_contexts: Passages a correct answer is grounded in.
        reference_source: Knowledge-base entry id the answer comes from (``abcd:refund_initiate``).
        source: Where the question comes from (dataset and row, or ``csml-written``).
    """

    id: str
    question: str
    answerable: bool = True
    category: str = "default"
    history: tuple[dict[str, str], ...] = ()
    reference_answer: str | None = None
    reference_contexts: tuple[str, ...] = ()
    reference_source: str | None = None
    source: str = ""

    def messages(self) -> list[dict[str, str]]:
        """The conversation sent to the bot."""
        return [*map(dict, self.history), {"role": "user", "content": self.question}]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        out = asdict(self)
        out["history"] = list(self.history)
        out["reference_contexts"] = list(self.reference_contexts)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditSample:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = set(cls.__dataclass_fields__)
        if unknown := sorted(set(data) - known):
            raise AuditConfigError(
                f"question {data.get('id')!r}: unknown fields {unknown}; allowed {sorted(known)}"
            )
        values = dict(data)
        values["history"] = tuple(values.get("history") or ())
        values["reference_contexts"] = tuple(values.get("reference_contexts") or ())
        return cls(**values)


@dataclass(frozen=True)
class MetricSpec:
    """A metric of a suite: registry name, gate threshold, better direction (None: the metric's own),
    constructor params."""

    name: str
    threshold: float | None = None
    direction: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A parsed ``suite.yaml`` and its questions."""

    name: str
    version: int
    description: str
    folder: Path
    questions_file: str
    metrics: tuple[MetricSpec, ...]
    abstain_patterns: tuple[str, ...] = ()

    def samples(self) -> list[AuditSample]:
        """Every question of the suite, in file order; ids must be unique."""
        path = self.folder / self.questions_file
        if not path.is_file():
            raise AuditConfigError(f"suite {self.name!r}: question set {path} does not exist")
        samples, seen = [], set()
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                sample = AuditSample.from_dict(json.loads(line))
            except json.JSONDecodeError as error:
                raise AuditConfigError(f"{path}, line {line_no}: not JSON ({error})") from None
            if sample.id in seen:
                raise AuditConfigError(f"{path}, line {line_no}: duplicate id {sample.id!r}")
            seen.add(sample.id)
            samples.append(sample)
        return samples

    def sha256(self) -> str:
        """Hash of the suite definition and its question set (logged with every scorecard)."""
        digest = hashlib.sha256((self.folder / "suite.yaml").read_bytes())
        digest.update((self.folder / self.questions_file).read_bytes())
        return digest.hexdigest()


def load_suite(name: str, suites_dir: str | Path, overrides: dict[str, Any] | None = None) -> Suite:
    """Reads ``<suites_dir>/<name>/suite.yaml``; ``overrides`` (``{metric: {threshold: ...}}``) win.

    Raises:
        AuditConfigError: unknown suite (with the ones that exist), bad metric entries.
    """
    folder = Path(suites_dir) / name
    path = folder / "suite.yaml"
    if not path.is_file():
        import difflib

        known = sorted(p.parent.name for p in Path(suites_dir).glob("*/suite.yaml"))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise AuditConfigError(f"unknown suite {name!r} (no {path}).{hint} Suites: {known}")
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    metrics_spec = dict(spec.get("metrics") or {})
    for metric, extra in (overrides or {}).items():
        if metric not in metrics_spec:
            raise AuditConfigError(
                f"metrics.{metric}: suite {name!r} has no such metric; it has {sorted(metrics_spec)}"
            )
        metrics_spec[metric] = {**(metrics_spec[metric] or {}), **(extra or {})}
    metrics = []
    for metric, entry in metrics_spec.items():
        entry = dict(entry or {})
        direction = entry.get("direction")
        if direction is not None and direction not in DIRECTIONS:
            raise AuditConfigError(
                f"suite {name!r}, metric {metric!r}: direction must be one of {DIRECTIONS}"
            )
        threshold = entry.get("threshold")
        try:
            threshold = None if threshold is None else float(threshold)
        except (TypeError, ValueError):
            raise AuditConfigError(
                f"suite {name!r}, metric {metric!r}: threshold {threshold!r} is not a number"
            ) from None
        metrics.append(MetricSpec(metric, threshold, direction, dict(entry.get("params") or {})))
    if not metrics:
        raise AuditConfigError(f"suite {name!r} declares no metrics")
    return Suite(
        name=str(spec.get("name", name)),
        version=int(spec.get("version", 1)),
        description=str(spec.get("description", "")),
        folder=folder,
        questions_file=str(spec.get("questions", "questions.jsonl")),
        metrics=tuple(metrics),
        abstain_patterns=tuple(spec.get("abstain_patterns") or ()),
    )


def select(samples: list[AuditSample], limit: int | None, seed: int) -> list[AuditSample]:
    """A deterministic sample of ``limit`` questions (all when None), stratified so every category
    keeps its share, in suite order."""
    if limit is None or limit >= len(samples):
        return list(samples)
    rng = random.Random(seed)
    by_category: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        by_category.setdefault(sample.category, []).append(index)
    chosen: list[int] = []
    quotas = {c: max(1, round(limit * len(ix) / len(samples))) for c, ix in by_category.items()}
    for category, indices in sorted(by_category.items()):
        chosen += rng.sample(indices, min(quotas[category], len(indices)))
    rng.shuffle(chosen)
    return [samples[i] for i in sorted(chosen[:limit])]
