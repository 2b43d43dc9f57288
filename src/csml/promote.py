"""``csml promote``: move a registered model's ``champion`` alias to a candidate that passes the gates.

The candidate (an alias such as ``challenger``, a version number, or ``run:<run_id>``) and the version the
champion alias points to are scored on the same evaluation data, each in an evaluation run nested in one
promotion run. The gates of ``cfg.gates`` then decide: absolute ``min``/``max`` bounds on the candidate's
metrics and a ``min_gain`` over the champion (the absolute bounds alone while there is no champion), and,
with ``audit_run_id``, an audit scorecard run tagged ``csml.audit.passed=true``. Every decision goes to the
promotion run (``promotion/decision.json``) and, unless ``dry_run``, to the candidate version's tags; only
a candidate that passes gets the alias, with its lineage as tags.
"""

from __future__ import annotations

import difflib
import logging
import sys
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from csml.config import apply_offline_env

if TYPE_CHECKING:
    from csml.data.splits import DatasetSplits

log = logging.getLogger(__name__)

DIRECTIONS = ("higher", "lower")
TAG = "csml.promotion."
LINEAGE_TAG = "csml.lineage."
LOG_ARTIFACT = "promotion/decision.json"
SCHEMA_VERSION = 1
MAX_TAG_CHARS = 4000
# Metrics are floats computed twice from the same predictions; a gain this small is no regression.
TOLERANCE = 1e-9


class PromotionConfigError(ValueError):
    """A promotion that cannot be decided as configured: no or bad gates, an unknown metric, wrong data."""


@dataclass(frozen=True)
class Gate:
    """Requirements on one metric of the candidate, from one entry of ``cfg.gates``.

    Attributes:
        name: The entry's key (``gates.<name>``).
        metric: An evaluation metric name, e.g. ``test/macro_f1`` or ``test/stage/purchase/accuracy``.
        direction: ``higher`` when bigger is better (accuracy, F1), ``lower`` otherwise (ECE, NLL).
        min: The least value the candidate may have.
        max: The largest value the candidate may have.
        min_gain: The least improvement over the champion in the better direction (``higher``:
            candidate - champion; ``lower``: champion - candidate). Negative tolerates that much regression.
    """

    name: str
    metric: str
    direction: str = "higher"
    min: float | None = None
    max: float | None = None
    min_gain: float | None = None

    @classmethod
    def from_config(cls, name: str, spec: Any) -> Gate:
        """Validates one ``gates.<name>`` mapping; errors say which key to fix and how."""
        allowed = [f.name for f in fields(cls) if f.name != "name"]
        if not isinstance(spec, dict) or not spec.get("metric"):
            raise PromotionConfigError(
                f"gate '{name}' needs a metric: gates.{name}.metric=<metric such as test/accuracy>"
            )
        unknown = sorted(set(spec) - set(allowed))
        if unknown:
            raise PromotionConfigError(f"gate '{name}' has unknown keys {unknown}; allowed: {allowed}")
        if spec.get("direction", "higher") not in DIRECTIONS:
            raise PromotionConfigError(
                f"gate '{name}': direction must be one of {list(DIRECTIONS)}, got {spec['direction']!r}"
            )
        if all(spec.get(key) is None for key in ("min", "max", "min_gain")):
            raise PromotionConfigError(f"gate '{name}' checks nothing: set min, max and/or min_gain")
        try:
            bounds = {k: float(spec[k]) for k in ("min", "max", "min_gain") if spec.get(k) is not None}
        except (TypeError, ValueError) as error:
            raise PromotionConfigError(
                f"gate '{name}': min, max and min_gain must be numbers ({error})"
            ) from None
        return cls(name, str(spec["metric"]), spec.get("direction", "higher"), **bounds)

    def check(self, candidate: dict[str, float], champion: dict[str, float] | None) -> list[Check]:
        """Checks the candidate's metrics (and the champion's, for ``min_gain``) against this gate."""
        value = candidate[self.metric]
        old = None if champion is None else champion[self.metric]
        delta = None if old is None else value - old
        checks = []
        for kind, bound, ok in (
            ("min", self.min, self.min is not None and value >= self.min),
            ("max", self.max, self.max is not None and value <= self.max),
        ):
            if bound is not None:
                relation = (">=" if ok else "<") if kind == "min" else ("<=" if ok else ">")
                note = f"{value:.4f} {relation} {kind} {bound:.4f}"
                checks.append(Check(self.name, self.metric, kind, bound, value, old, delta, ok, note))
        if self.min_gain is not None:
            if delta is None:
                ok, note = True, "no champion yet: gain not required"
            else:
                gain = delta if self.direction == "higher" else -delta
                ok = gain >= self.min_gain - TOLERANCE
                note = f"gain {gain:+.4f} {'>=' if ok else '<'} min_gain {self.min_gain:+.4f} ({self.direction} is better)"
            checks.append(
                Check(self.name, self.metric, "min_gain", self.min_gain, value, old, delta, ok, note)
            )
        return checks


@dataclass(frozen=True)
class Check:
    """One requirement of a gate and its outcome (``delta`` is candidate - champion, whatever the direction)."""

    gate: str
    metric: str
    kind: str
    required: float
    candidate: float
    champion: float | None
    delta: float | None
    passed: bool
    note: str

    @property
    def result(self) -> str:
        """``pass``, ``FAIL``, or ``skip`` (a gain with no champion to compare with)."""
        if self.kind == "min_gain" and self.champion is None:
            return "skip"
        return "pass" if self.passed else "FAIL"


@dataclass
class Decision:
    """The outcome of one promotion and what it was based on; :meth:`to_dict` is the log's schema.

    Attributes:
        model_name: The registered model.
        alias: The alias that moves on promotion (``champion``).
        candidate: The candidate as requested (alias, version number or ``run:<id>``).
        candidate_version: The version it resolved to.
        champion_version: The version ``alias`` pointed to (``None``: no champion yet).
        checks: Every gate requirement, passed or not.
        audit_run_id: The audit scorecard run required to pass, if any.
        audit_tag: That run's ``csml.audit.passed`` tag (``None`` when absent).
        dry_run: Decided and logged only; the alias and the version tags were left alone.
        data: The evaluation data: name, SHA-256, scored splits and their rows.
        lineage: Where the candidate came from (commit, config, training data and run, evaluation and
            audit runs).
        run_id: The promotion run.
        evaluation_run_ids: ``candidate``/``champion`` -> the nested evaluation run of each.
        timestamp: When the decision was made (UTC, ISO 8601).
    """

    model_name: str
    alias: str
    candidate: str
    candidate_version: str
    champion_version: str | None
    checks: list[Check]
    audit_run_id: str | None
    audit_tag: str | None
    dry_run: bool
    data: dict[str, Any]
    lineage: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    evaluation_run_ids: dict[str, str] = field(default_factory=dict)
    timestamp: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def audit_passed(self) -> bool | None:
        """Whether the audit run passed; ``None`` when no audit was required."""
        if self.audit_run_id is None:
            return None
        return str(self.audit_tag).lower() == "true"

    @property
    def passed(self) -> bool:
        """Every check passed and the audit (if required) passed."""
        return all(c.passed for c in self.checks) and self.audit_passed is not False

    @property
    def promoted(self) -> bool:
        """The alias was moved to the candidate."""
        return self.passed and not self.dry_run

    @property
    def outcome(self) -> str:
        """``promoted``, ``refused``, or ``dry_run_passed`` (would have been promoted)."""
        if not self.passed:
            return "refused"
        return "dry_run_passed" if self.dry_run else "promoted"

    @property
    def reason(self) -> str:
        """Why: the failed requirements, or a summary of what passed."""
        failed = [f"{c.metric}: {c.note}" for c in self.checks if not c.passed]
        if self.audit_passed is False:
            failed.append(f"audit run {self.audit_run_id}: csml.audit.passed={self.audit_tag or 'missing'}")
        if failed:
            return "; ".join(failed)
        against = (
            f"against champion v{self.champion_version}"
            if self.champion_version
            else "with no champion yet (absolute gates only)"
        )
        audit = f", audit run {self.audit_run_id} passed" if self.audit_run_id else ""
        return f"all {len(self.checks)} gate checks passed {against}{audit}"

    def to_dict(self) -> dict[str, Any]:
        """The promotion log: the decision, its reason, every check, the data and the lineage."""
        return {
            "schema_version": SCHEMA_VERSION,
            "outcome": self.outcome,
            "passed": self.passed,
            "promoted": self.promoted,
            "reason": self.reason,
            **asdict(self),
            "audit_passed": self.audit_passed,
        }

    def table(self) -> str:
        """A readable summary: one row per check, then the decision."""
        champion = f"v{self.champion_version}" if self.champion_version else "none"
        lines = [
            f"{self.model_name}: candidate {self.candidate} = v{self.candidate_version}, "
            f"@{self.alias} = {champion}; data {self.data['name']} [{', '.join(self.data['splits'])}] "
            f"(sha256 {str(self.data['sha256'])[:12]})",
            "",
        ]
        rows = [["gate", "metric", "check", "candidate", "champion", "delta", "required", "result"]]
        for c in self.checks:
            rows.append(
                [
                    c.gate,
                    c.metric,
                    c.kind,
                    f"{c.candidate:.4f}",
                    "-" if c.champion is None else f"{c.champion:.4f}",
                    "-" if c.delta is None else f"{c.delta:+.4f}",
                    f"{c.required:+.4f}" if c.kind == "min_gain" else f"{c.required:.4f}",
                    c.result,
                ]
            )
        if self.audit_run_id:
            result = "pass" if self.audit_passed else "FAIL"
            tag = str(self.audit_tag or "missing")
            rows.append(["audit", f"run {self.audit_run_id[:12]}", "passed", tag, "-", "-", "true", result])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        headline = {
            "promoted": f"PROMOTED: v{self.candidate_version} is now @{self.alias}",
            "dry_run_passed": f"DRY RUN: v{self.candidate_version} would become @{self.alias}",
            "refused": f"REFUSED: @{self.alias} stays {champion}",
        }[self.outcome]
        lines += ["", f"{headline} ({self.reason})"]
        return "\n".join(lines)


def parse_gates(node: Any) -> list[Gate]:
    """The gates of ``cfg.gates`` (``name -> spec``; a ``null`` spec disables that gate)."""
    specs = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    gates = [Gate.from_config(str(name), spec) for name, spec in (specs or {}).items() if spec is not None]
    if not gates:
        raise PromotionConfigError(
            "no gates configured: choose a gate set (gates=intent, gates=sentiment) or add one, e.g. "
            "+gates.accuracy.metric=test/accuracy +gates.accuracy.min=0.9"
        )
    return gates


def promote(cfg: DictConfig) -> Decision:
    """Scores candidate and champion on ``cfg.data``, applies the gates, records the decision.

    Moves ``cfg.champion_alias`` to the candidate only when every gate passes and ``cfg.dry_run`` is off.

    Returns:
        The decision; ``decision.promoted`` tells whether the alias moved.

    Raises:
        RegistryError: The store, model, version, alias, candidate run or audit run does not exist.
        PromotionConfigError: No or bad gates, a gated metric the evaluation does not produce, data the
            models cannot be scored on, or a candidate that already is the champion.
    """
    import mlflow
    from hydra.utils import instantiate

    from csml.pipeline.runs import git_commit
    from csml.tracking import registry
    from csml.tracking.runs import log_config, log_dataset_identity, setup_tracking

    apply_offline_env(cfg.offline)
    if not cfg.get("model_name"):
        raise PromotionConfigError("set model_name=<registered model>, e.g. model_name=csml-intent-banking77")
    gates = parse_gates(cfg.get("gates"))
    client = registry.registry_client(cfg.tracking)
    model = registry.get_registered_model(client, cfg.model_name)
    candidate = registry.resolve_version(client, model, cfg.candidate)
    candidate_version = str(candidate.version)
    champion_version = registry.alias_version(model, cfg.champion_alias)
    if champion_version == candidate_version:
        raise PromotionConfigError(
            f"candidate {cfg.candidate} is version {candidate_version}, which already is "
            f"@{cfg.champion_alias}: nothing to promote"
        )
    audit_run_id = None if cfg.audit_run_id is None else str(cfg.audit_run_id)
    audit_tag = None if audit_run_id is None else registry.audit_tag(client, audit_run_id)
    splits = instantiate(cfg.data.source).load(cfg.data.label_field)
    identity = splits.identity()

    experiment_id = setup_tracking(cfg.tracking)
    tags = {
        "csml.task": "promote",
        "csml.git_commit": git_commit(),
        f"{TAG}model": cfg.model_name,
        f"{TAG}candidate_version": candidate_version,
        f"{TAG}champion_version": champion_version or "none",
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=cfg.get("run_name"), tags=tags) as run:
        log_config(cfg)
        log_dataset_identity(identity)
        versions = {"candidate": candidate_version, "champion": champion_version}
        metrics: dict[str, dict[str, float]] = {}
        evaluation_runs: dict[str, str] = {}
        for role, version in versions.items():
            if version is None:
                continue
            metrics[role], evaluation_runs[role] = _score(cfg, experiment_id, role, version, splits)
            if role == "candidate":
                _require_metrics(gates, metrics[role], list(cfg.splits))
        decision = Decision(
            model_name=cfg.model_name,
            alias=cfg.champion_alias,
            candidate=str(cfg.candidate),
            candidate_version=candidate_version,
            champion_version=champion_version,
            checks=[c for gate in gates for c in gate.check(metrics["candidate"], metrics.get("champion"))],
            audit_run_id=audit_run_id,
            audit_tag=audit_tag,
            dry_run=bool(cfg.dry_run),
            data={
                "name": identity["name"],
                "sha256": identity["sha256"],
                "splits": list(cfg.splits),
                "rows": {split: len(splits[split]) for split in cfg.splits},
            },
            lineage={
                **registry.lineage(client, candidate),
                "evaluation_run_id": evaluation_runs["candidate"],
                "evaluation_dataset_sha256": identity["sha256"],
                "audit_run_id": audit_run_id or "none",
                "promotion_run_id": run.info.run_id,
            },
            run_id=run.info.run_id,
            evaluation_run_ids=evaluation_runs,
        )
        _record(client, decision, metrics)
    return decision


def promote_command(cfg: DictConfig) -> None:
    """``csml promote``: prints the decision; exits 1 when refused, 2 when the promotion is misconfigured."""
    from csml.tracking.registry import RegistryError

    try:
        decision = promote(cfg)
    except (RegistryError, PromotionConfigError) as error:
        log.error("%s", error)
        sys.exit(2)
    print(decision.table())
    if not decision.passed:
        log.error("promotion refused: %s", decision.reason)
        sys.exit(1)


def _score(
    cfg: DictConfig, experiment_id: str, role: str, version: str, splits: DatasetSplits
) -> tuple[dict[str, float], str]:
    """Scores one version as ``csml eval`` does (:func:`csml.scoring.score_splits`: its saved OOS score, its
    card's thresholds) and logs it in an evaluation run nested in the promotion run; returns its metrics
    and that run."""
    import mlflow

    from csml.pipeline.results import log_classifier_evaluation
    from csml.scoring import Classifier, ScoringError, score_splits
    from csml.tracking.runs import log_dataset_identity

    uri = f"models:/{cfg.model_name}/{version}"
    try:
        evaluation = score_splits(
            Classifier.from_uri(uri),
            splits,
            cfg.splits,
            cfg.data.get("oos_label"),
            oos_threshold=cfg.evaluation.oos_threshold,
            decision_threshold=cfg.evaluation.get("decision_threshold", "auto"),
            positive_label=cfg.evaluation.get("positive_label"),
        )
    except ScoringError as error:
        raise PromotionConfigError(f"{role} v{version}: {error}") from None
    tags = {"csml.task": "eval", "csml.evaluated_model": uri, f"{TAG}role": role}
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{role} v{version}", nested=True, tags=tags
    ) as run:
        out_dir = Path(cfg.paths.output_dir) / "evaluation" / f"{role}_v{version}"
        log_dataset_identity(splits.identity())
        log_classifier_evaluation(evaluation, out_dir)
    return evaluation.metrics, run.info.run_id


def _require_metrics(gates: list[Gate], metrics: dict[str, float], splits: list[str]) -> None:
    """Every gated metric must be one the evaluation produced; the error lists close names and the rest."""
    problems = []
    for gate in gates:
        if gate.metric not in metrics:
            close = difflib.get_close_matches(gate.metric, list(metrics), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                f"gate '{gate.name}': metric '{gate.metric}' is not produced by the evaluation{hint}"
            )
    if problems:
        headline = sorted(k for k in metrics if k.count("/") == 1)
        raise PromotionConfigError(
            "; ".join(problems) + f". Scored splits {splits} give: {', '.join(headline)}, plus "
            "<split>/stage/<stage>/<metric> and <split>/channel/<channel>/<metric>"
        )


def _record(client: Any, decision: Decision, metrics: dict[str, dict[str, float]]) -> None:
    """Logs the decision to the active promotion run, then tags the version and moves the alias."""
    import mlflow

    gated = sorted({c.metric for c in decision.checks})
    mlflow.log_metrics({f"{role}/{m}": values[m] for role, values in metrics.items() for m in gated})
    mlflow.set_tags({f"{TAG}decision": decision.outcome, f"{TAG}reason": decision.reason[:MAX_TAG_CHARS]})
    mlflow.log_dict(decision.to_dict(), LOG_ARTIFACT)
    mlflow.log_text(decision.table(), "promotion/decision.txt")
    log.info("promotion of %s v%s: %s", decision.model_name, decision.candidate_version, decision.outcome)
    if decision.dry_run:
        return
    tags = {
        f"{TAG}decision": decision.outcome,
        f"{TAG}reason": decision.reason[:MAX_TAG_CHARS],
        f"{TAG}timestamp": decision.timestamp,
        f"{TAG}champion_version": decision.champion_version or "none",
        f"{TAG}run_id": decision.run_id,
        f"{TAG}log": f"runs:/{decision.run_id}/{LOG_ARTIFACT}",
    }
    for c in decision.checks:
        values = f"candidate {c.candidate:.4f}, champion {_fmt(c.champion)}, delta {_fmt(c.delta, '+')}"
        tags[f"{TAG}check.{c.gate}.{c.kind}"] = f"{c.result}: {c.note} | {values}"
    if decision.promoted:
        tags |= {f"{LINEAGE_TAG}{key}": value for key, value in decision.lineage.items()}
    for key, value in tags.items():
        client.set_model_version_tag(decision.model_name, decision.candidate_version, key, value)
    if decision.promoted:
        client.set_registered_model_alias(decision.model_name, decision.alias, decision.candidate_version)


def _fmt(value: float | None, sign: str = "") -> str:
    return "none" if value is None else f"{value:{sign}.4f}"
