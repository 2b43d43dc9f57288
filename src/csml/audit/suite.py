"""Audit suites declared as data: ``audits/<suite>/suite.yaml`` parsed into :class:`Suite`.

A suite names its question set (JSONL of :class:`csml.schemas.AuditSample`), the metrics it scores with
their thresholds and directions, and the phrases that count as abstaining. Schema (``audits/README.md``)::

    name: rag_abcd
    version: 1
    description: ...
    questions: questions.jsonl          # or a list of files and builders run at audit time:
    # questions: [questions.jsonl, {build: airline_complaints, params: {limit: 60}}]
    abstain_patterns: ["don't know", ...]   # phrases of declining, for every metric that asks
    escalate_patterns: ["connecting you to a human", ...]   # phrases of a hand-over (bots with no flag)
    knowledge_base: {paths: [kb/*.md, faq.csv]}   # what the bot answers from, relative to the suite folder
    conversations: {personas: [calm, impatient], personas_per_goal: 2, max_turns: 8}   # simulated customers
    metrics:
      groundedness: {threshold: 0.9, direction: higher, params: {sentence_threshold: 0.55}}
      error_rate: {threshold: 0.02, gate_on: interval}   # the 95% interval's upper bound must be <= 0.02
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from csml.audit.errors import AuditConfigError
from csml.schemas import AuditSample, SchemaError

DIRECTIONS = ("higher", "lower")
GATES = ("value", "interval")


@dataclass(frozen=True)
class MetricSpec:
    """A metric of a suite: registry name, gate threshold, better direction (None: the metric's own),
    constructor params, and what the gate compares with the threshold: the point ``value``, or the
    ``interval``'s conservative bound (the 95% bootstrap interval's lower bound when higher is better, its
    upper bound when lower is) so that a gate passes only when the sample shows it."""

    name: str
    threshold: float | None = None
    direction: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    gate_on: str = "value"


@dataclass(frozen=True)
class QuestionSource:
    """One entry of a suite's ``questions``: a JSONL file of the suite folder, or a builder of
    :data:`csml.audit.questions.BUILDERS` run at audit time (for data csml may not redistribute, read
    from ``paths.external_data_dir``) with its params."""

    file: str | None = None
    build: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A parsed ``suite.yaml`` and its questions; with ``conversations`` set, its questions are goals that
    simulated customers pursue over several turns (:mod:`csml.audit.conversations`)."""

    name: str
    version: int
    description: str
    folder: Path
    questions: tuple[QuestionSource, ...]
    metrics: tuple[MetricSpec, ...]
    abstain_patterns: tuple[str, ...] = ()
    escalate_patterns: tuple[str, ...] = ()
    knowledge_base: dict[str, Any] | None = None
    conversations: dict[str, Any] | None = None

    def samples(self, data_dirs: dict[str, Any] | None = None) -> list[AuditSample]:
        """Every question of the suite, sources in order; ids must be unique across sources.

        Args:
            data_dirs: Keyword arguments for builders (``data_dir``, ``external_data_dir``).
        """
        samples, seen = [], {}
        for source in self.questions:
            for where, sample in self._read(source, data_dirs or {}):
                if sample.id in seen:
                    raise AuditConfigError(
                        f"{where}: duplicate id {sample.id!r} (first in {seen[sample.id]})"
                    )
                seen[sample.id] = where
                samples.append(sample)
        return samples

    def _read(self, source: QuestionSource, data_dirs: dict[str, Any]) -> list[tuple[str, AuditSample]]:
        if source.build is not None:
            from csml.audit.questions import run_builder  # builders import dataset readers: load on use

            built = run_builder(source.build, source.params, data_dirs)
            return [(f"suite {self.name!r}, builder {source.build!r}", s) for s in built]
        path = self.folder / str(source.file)
        if not path.is_file():
            raise AuditConfigError(f"suite {self.name!r}: question set {path} does not exist")
        out = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append((f"{path}, line {line_no}", AuditSample.from_dict(json.loads(line))))
            except json.JSONDecodeError as error:
                raise AuditConfigError(f"{path}, line {line_no}: not JSON ({error})") from None
            except (SchemaError, TypeError) as error:
                raise AuditConfigError(f"{path}, line {line_no}: {error}") from None
        return out

    def sha256(self, samples: list[AuditSample] | None = None) -> str:
        """Hash of the suite definition and its question files, plus the questions builders made (logged
        with every scorecard)."""
        digest = hashlib.sha256((self.folder / "suite.yaml").read_bytes())
        for source in self.questions:
            if source.file is not None:
                digest.update((self.folder / source.file).read_bytes())
        if any(source.build for source in self.questions):
            digest.update(json.dumps([s.to_dict() for s in samples or []], sort_keys=True).encode())
        return digest.hexdigest()


def _question_sources(name: str, spec: Any) -> tuple[QuestionSource, ...]:
    entries = spec if isinstance(spec, list) else [spec]
    sources = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            sources.append(QuestionSource(file=entry))
        elif (
            isinstance(entry, dict)
            and isinstance(entry.get("build"), str)
            and set(entry) <= {"build", "params"}
        ):
            sources.append(QuestionSource(build=entry["build"], params=dict(entry.get("params") or {})))
        else:
            raise AuditConfigError(
                f"suite {name!r}, questions[{index}]: expected a file name or {{build: <builder>, params: {{..}}}}, "
                f"found {entry!r}"
            )
    return tuple(sources)


def load_suite(name: str, suites_dir: str | Path, overrides: dict[str, Any] | None = None) -> Suite:
    """Reads ``<suites_dir>/<name>/suite.yaml``, or the suite file ``name`` names when it is a path to a
    ``.yaml`` file or to a folder holding ``suite.yaml`` (a suite of one's own, outside ``suites_dir``);
    ``overrides`` (``{metric: {threshold: ...}}``) win.

    Raises:
        AuditConfigError: unknown suite (with the ones that exist), bad metric entries.
    """
    given = Path(name)
    if given.suffix in (".yaml", ".yml"):
        if not given.is_file():
            raise AuditConfigError(f"suite file {given} does not exist")
        folder, path, name = given.parent, given, given.parent.name
    elif given.is_dir() and (given / "suite.yaml").is_file():
        folder, path, name = given, given / "suite.yaml", given.name
    else:
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
        gate_on = entry.get("gate_on", "value")
        if gate_on not in GATES:
            raise AuditConfigError(f"suite {name!r}, metric {metric!r}: gate_on must be one of {GATES}")
        metrics.append(MetricSpec(metric, threshold, direction, dict(entry.get("params") or {}), gate_on))
    if not metrics:
        raise AuditConfigError(f"suite {name!r} declares no metrics")
    return Suite(
        knowledge_base=suite_knowledge_base(name, folder, spec.get("knowledge_base")),
        name=str(spec.get("name", name)),
        version=int(spec.get("version", 1)),
        description=str(spec.get("description", "")),
        folder=folder,
        questions=_question_sources(name, spec.get("questions", "questions.jsonl")),
        metrics=tuple(metrics),
        abstain_patterns=tuple(spec.get("abstain_patterns") or ()),
        escalate_patterns=tuple(spec.get("escalate_patterns") or ()),
        conversations=_conversations(name, spec.get("conversations")),
    )


def _conversations(name: str, spec: Any) -> dict[str, Any] | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise AuditConfigError(
            f"suite {name!r}, conversations: expected a mapping ({{personas: [..], ...}}), found {spec!r}"
        )
    return dict(spec)


def suite_knowledge_base(name: str, folder: Path, spec: Any) -> dict[str, Any] | None:
    """A suite's own knowledge base as a config to instantiate: files read by
    :class:`csml.knowledge.documents.DocumentFiles` relative to the suite folder, or any ``_target_``."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or not ("paths" in spec or "_target_" in spec):
        raise AuditConfigError(
            f"suite {name!r}, knowledge_base: expected {{paths: [files or patterns], ...}} or {{_target_: ..}}, "
            f"found {spec!r}"
        )
    if "_target_" in spec:
        return dict(spec)
    return {
        "_target_": "csml.knowledge.documents.DocumentFiles",
        "name": name,
        "base_dir": str(folder),
        **spec,
    }


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
    if len(chosen) < limit:  # rounded-down quotas: top up from the questions left
        left = sorted(set(range(len(samples))) - set(chosen))
        chosen += rng.sample(left, limit - len(chosen))
    rng.shuffle(chosen)
    return [samples[i] for i in sorted(chosen[:limit])]
