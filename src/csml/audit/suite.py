"""Audit suites declared as data: ``audits/<suite>/suite.yaml`` parsed into :class:`Suite`.

A suite names its question set (JSONL of :class:`AuditSample`), the metrics it scores with their
thresholds and directions, and the phrases that count as abstaining. Schema (``audits/README.md``)::

    name: rag_abcd
    version: 1
    description: ...
    questions: questions.jsonl          # or a list of files and builders run at audit time:
    # questions: [questions.jsonl, {build: airline_complaints, params: {limit: 60}}]
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
        incorrect_answers: Known wrong answers (TruthfulQA's false beliefs), for reasons and reports.
        expected_intent: The labelled intent (``oos`` for out-of-scope), for NLU suites.
        should_escalate: Whether a human must take over (angry or out-of-scope customers), for escalation
            suites; None when the suite does not say.
        group: Paraphrase group: samples sharing it ask the same thing and should get the same answer.
        stage: Customer-journey stage (:class:`csml.records.JourneyStage` value), scores are broken down by it.
        channel: Channel (:class:`csml.records.Channel` value), scores are broken down by it.
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
    incorrect_answers: tuple[str, ...] = ()
    expected_intent: str | None = None
    should_escalate: bool | None = None
    group: str | None = None
    stage: str | None = None
    channel: str | None = None

    def messages(self) -> list[dict[str, str]]:
        """The conversation sent to the bot."""
        return [*map(dict, self.history), {"role": "user", "content": self.question}]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        out = asdict(self)
        for name in _LISTS:
            out[name] = list(getattr(self, name))
        for name in _WRITTEN_WHEN_SET:
            if out[name] in (None, []):
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditSample:
        """Inverse of :meth:`to_dict`; unknown keys, missing or mistyped fields and stage/channel values
        that are not :mod:`csml.records` members are errors naming the field, expected and found."""
        if not isinstance(data, dict):
            raise AuditConfigError(f"expected a JSON object, found {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        if unknown := sorted(set(data) - known):
            raise AuditConfigError(f"unknown fields {unknown}; allowed {sorted(known)}")
        for name in ("id", "question"):
            if not isinstance(data.get(name), str) or not data[name].strip():
                raise AuditConfigError(
                    f"field {name!r}: expected a non-empty string, found {data.get(name)!r}"
                )
        for name, kinds in _TYPES.items():
            if data.get(name) is not None and not isinstance(data[name], kinds):
                expected = " or ".join(k.__name__ for k in kinds)
                raise AuditConfigError(f"field {name!r}: expected {expected}, found {data[name]!r}")
        from csml.records import Channel, JourneyStage

        for name, kind in (("stage", JourneyStage), ("channel", Channel)):
            allowed = [member.value for member in kind]
            if data.get(name) is not None and data[name] not in allowed:
                raise AuditConfigError(f"field {name!r}: expected one of {allowed}, found {data[name]!r}")
        values = dict(data)
        for name in _LISTS:
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


_LISTS = ("history", "reference_contexts", "incorrect_answers")
_WRITTEN_WHEN_SET = ("incorrect_answers", "expected_intent", "should_escalate", "group", "stage", "channel")
"""Fields a question file only carries when the suite uses them (NLU, escalation, paraphrases, journey)."""
_TYPES: dict[str, tuple[type, ...]] = {
    "answerable": (bool,),
    "should_escalate": (bool,),
    "category": (str,),
    "history": (list,),
    "reference_contexts": (list,),
    "incorrect_answers": (list,),
    "expected_intent": (str,),
    "group": (str,),
}


@dataclass(frozen=True)
class MetricSpec:
    """A metric of a suite: registry name, gate threshold, better direction (None: the metric's own),
    constructor params."""

    name: str
    threshold: float | None = None
    direction: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


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
    """A parsed ``suite.yaml`` and its questions."""

    name: str
    version: int
    description: str
    folder: Path
    questions: tuple[QuestionSource, ...]
    metrics: tuple[MetricSpec, ...]
    abstain_patterns: tuple[str, ...] = ()

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
            from csml.audit.questions import run_builder

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
            except (AuditConfigError, TypeError) as error:
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
        questions=_question_sources(name, spec.get("questions", "questions.jsonl")),
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
    if len(chosen) < limit:  # rounded-down quotas: top up from the questions left
        left = sorted(set(range(len(samples))) - set(chosen))
        chosen += rng.sample(left, limit - len(chosen))
    rng.shuffle(chosen)
    return [samples[i] for i in sorted(chosen[:limit])]
