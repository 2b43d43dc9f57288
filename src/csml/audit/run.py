"""``csml audit``: audit a deployed chatbot with a suite and write a scorecard CI can gate on.

    csml audit target=reference_bot target.url=http://127.0.0.1:8000 suite=rag_abcd
    csml audit suite=rag_abcd limit=20 seed=1 +metrics.groundedness.threshold=0.95

Exit status: 0 every gate passed, 1 a gate failed, 2 misconfigured (unknown suite or metric, bad target).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from csml.audit.errors import AuditConfigError
from csml.pipeline.runs import RUN_ID_FILE

log = logging.getLogger(__name__)


def audit(cfg: DictConfig, adapter: Any = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Runs the audit ``cfg`` describes; returns the scorecard and the paths of the files written.

    Args:
        cfg: The composed ``conf/audit.yaml``.
        adapter: A :class:`csml.audit.adapters.BotAdapter` to use instead of building ``cfg.target``
            (an in-process bot, a counting wrapper in tests).

    Raises:
        AuditConfigError: the suite, a metric or the target cannot be built as configured.
    """
    from csml.audit.metrics import build_metric
    from csml.audit.runner import ReplyCache, collect_replies
    from csml.audit.scorecard import (
        SCHEMA_VERSION,
        aggregate,
        environment,
        log_to_mlflow,
        score_samples,
        write_scorecard,
    )
    from csml.audit.suite import load_suite, select
    from csml.config import apply_offline_env
    from csml.tracking.runs import redact

    apply_offline_env(bool(cfg.get("offline", True)))
    overrides = OmegaConf.to_container(cfg.metrics, resolve=True) if cfg.get("metrics") else {}
    suite = load_suite(str(cfg.suite), cfg.suites_dir, overrides)  # type: ignore[arg-type]
    adapter = adapter or _build_target(cfg.target)
    output_dir = Path(cfg.paths.output_dir)

    kb_config = suite.knowledge_base or cfg.get("knowledge_base")
    if suite.knowledge_base and cfg.get("knowledge_base"):
        log.info(
            "knowledge base: suite %s declares its own; the configured knowledge_base is not used", suite.name
        )
    kb_entries = _kb_entries(kb_config)
    kb_texts = [f"{e.title}\n{e.answer}\n{e.passage}" for e in kb_entries]
    if not kb_entries:
        log.warning(
            "no knowledge base for %s: facts of its answers are checked against returned and reference contexts "
            "and the question only; name what the bot answers from with knowledge_base=<name> (conf/knowledge_base/)",
            adapter.name,
        )
    embedder = cache(lambda: _embedder(cfg.embedder))
    judge = OmegaConf.to_container(cfg.judge, resolve=True) if cfg.get("judge") else None
    judge_and_threshold = cache(
        lambda: _groundedness_judge(cfg.get("groundedness_judge"), cfg.get("tracking"))
    )
    context = {
        # a hand-over is a way of declining: not an answer to ground or to compare with a reference
        "abstain_patterns": suite.abstain_patterns + suite.escalate_patterns,
        "escalate_patterns": suite.escalate_patterns,
        "kb_entries": kb_entries,
        "kb_texts": kb_texts,
        "suite_dir": str(suite.folder),
        "judge": judge,
        "groundedness_judge": lambda: judge_and_threshold()[0],
    }
    metrics = [build_metric(spec, embedder, **context) for spec in suite.metrics]

    data_dirs = {"data_dir": cfg.paths.data_dir, "external_data_dir": cfg.paths.get("external_data_dir")}
    all_samples = suite.samples(data_dirs)
    samples = select(all_samples, cfg.get("limit"), int(cfg.seed))
    goals = len(samples)
    if suite.conversations is not None:
        samples, rows = _hold_conversations(suite, samples, adapter, cfg, output_dir)
    else:
        log.info("audit %s: %d questions to %s (%s)", suite.name, len(samples), adapter.name, output_dir)
        rows = asyncio.run(
            collect_replies(
                adapter,
                samples,
                output_dir / "replies.jsonl",
                ReplyCache(cfg.get("cache_dir")),
                concurrency=int(cfg.concurrency),
                progress=bool(cfg.progress),
            )
        )
    scored = score_samples(metrics, samples, rows)
    summary = aggregate(suite, metrics, scored)
    gates = [m["passed"] for m in summary["metrics"].values() if m["passed"] is not None]
    scorecard = {
        "schema_version": SCHEMA_VERSION,
        "passed": all(gates),
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "sha256": suite.sha256(all_samples),
            "questions": len(samples),
            # a conversation suite's questions are goals, each pursued by several simulated customers
            **({"goals": goals} if suite.conversations is not None else {}),
            "limit": cfg.get("limit"),
            "seed": int(cfg.seed),
        },
        "target": adapter.identity(),
        # what facts and claims were checked against: the suite's own knowledge base, or the configured one
        "knowledge_base": (
            {"declared_by": "suite" if suite.knowledge_base else "config", "entries": len(kb_entries)}
            if kb_entries
            else None
        ),
        **summary,
        # the judge's threshold and where it came from, when a metric used the judge
        "groundedness_judge": judge_and_threshold()[1] if judge_and_threshold.cache_info().currsize else None,
        "environment": environment(),
        "config": redact(OmegaConf.to_container(cfg, resolve=True)),
    }
    paths = write_scorecard(scorecard, scored, output_dir)
    if cfg.get("tracking") is not None:
        scorecard["mlflow_run_id"] = log_to_mlflow(cfg, scorecard, paths, output_dir / RUN_ID_FILE)
    failed = [name for name, m in summary["metrics"].items() if m["passed"] is False]
    log.info("audit %s: %s%s", suite.name, "FAILED " if failed else "passed", ", ".join(failed))
    return scorecard, paths


def _hold_conversations(
    suite: Any, goals: list[Any], adapter: Any, cfg: DictConfig, output_dir: Path
) -> tuple[list[Any], dict[str, dict[str, Any]]]:
    """Simulated customers pursue the suite's goals (each with its personas); returns the conversation samples
    and their rows (``conversations.jsonl`` in the output folder, resumable)."""
    from csml.audit.conversations.goals import goal_of
    from csml.audit.conversations.runner import conversation_samples, customers, run_conversations
    from csml.audit.conversations.simulator import CustomerSettings, bundled_phrases
    from csml.audit.conversations.writers import build_writer
    from csml.audit.runner import ReplyCache

    spec = suite.conversations
    samples = conversation_samples(goals, spec)
    settings = CustomerSettings(
        max_turns=int(spec.get("max_turns", 8)),
        patience=int(spec.get("patience", 2)),
        abstain_patterns=suite.abstain_patterns,
        escalate_patterns=suite.escalate_patterns,
    )
    phrases = bundled_phrases(cfg.paths.data_dir, [goal_of(g) for g in goals])
    seed = int(spec.get("seed", 0))
    writer_spec = cfg.get("customer_writer")
    writer = build_writer(OmegaConf.to_container(writer_spec, resolve=True) if writer_spec else None)
    if writer is not None:
        log.info("customer messages after the first are written by %s", writer.name)
    talkers = customers(samples, {g.id: g for g in goals}, phrases, settings, seed, writer)
    log.info(
        "audit %s: %d conversations (%d goals) with %s (%s)", suite.name, len(samples), len(goals), adapter.name,
        output_dir,
    )  # fmt: skip
    rows = asyncio.run(
        run_conversations(
            adapter,
            samples,
            talkers,
            output_dir / "conversations.jsonl",
            settings,
            seed,
            concurrency=int(cfg.concurrency),
            progress=bool(cfg.progress),
            cache=ReplyCache(cfg.get("cache_dir")),
        )
    )
    return samples, rows


def _build_target(target: DictConfig | None) -> Any:
    """The adapter a target config names in ``adapter:`` (a name of
    :data:`~csml.audit.adapters.ADAPTERS` or a ``module:Class`` reference), built with the config's
    other keys."""
    from csml.audit.adapters import ADAPTERS, BotAdapter
    from csml.registry import UnknownNameError, resolve

    if target is None:
        raise AuditConfigError("no bot to audit: choose one with target=<name> (conf/target/)")
    params = OmegaConf.to_container(target, resolve=True)
    assert isinstance(params, dict)
    kind = params.pop("adapter", None)
    if not isinstance(kind, str):
        raise AuditConfigError(
            f"target.adapter: name the adapter ({', '.join(ADAPTERS.names())}, or module:Class of a "
            "csml.audit.adapters.BotAdapter subclass)"
        )
    try:
        adapter_class = resolve(kind) if ":" in kind else ADAPTERS[kind]
    except (UnknownNameError, ImportError, AttributeError, TypeError) as error:
        raise AuditConfigError(f"target.adapter: {error}") from None
    if not (isinstance(adapter_class, type) and issubclass(adapter_class, BotAdapter)):
        raise AuditConfigError(f"target.adapter: {kind} is not a csml.audit.adapters.BotAdapter subclass")
    try:
        return adapter_class(**params)
    except (TypeError, ValueError) as error:
        raise AuditConfigError(f"target: cannot build the {kind} adapter ({error})") from None


def _kb_entries(kb: DictConfig | dict | None) -> list[Any]:
    """The knowledge base's entries (none when not configured: foreign targets name none by default)."""
    if not kb:
        return []
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf.errors import MissingMandatoryValue

    try:
        return instantiate(kb).load()
    except (FileNotFoundError, ValueError, InstantiationException, MissingMandatoryValue) as error:
        raise AuditConfigError(f"knowledge_base: {error}") from None


def _groundedness_judge(spec: DictConfig | None, tracking: DictConfig | None) -> tuple[Any, dict[str, Any]]:
    """The configured groundedness judge, and its threshold's origin for the scorecard (``groundedness_judge``):
    ``model_uri``, ``int8``, ``threshold``, ``threshold_origin`` (``model card``, ``config`` or
    ``calibration``) and, with a calibration file, ``calibration`` (its path, n, balanced accuracy...)."""
    from csml.judge.calibration import Calibration, model_identity
    from csml.judge.judge import GroundednessJudge

    if spec is None:
        raise AuditConfigError(
            "the groundedness metric's judge needs groundedness_judge.model_uri in the config"
        )
    model_uri, int8 = str(spec.model_uri), bool(spec.get("int8", False))
    threshold, calibration_path = spec.get("threshold"), spec.get("calibration")
    calibration = None
    if calibration_path is not None:
        if threshold is not None:
            raise AuditConfigError(
                "groundedness_judge: set threshold or calibration, not both "
                f"(threshold={threshold}, calibration={calibration_path})"
            )
        try:
            calibration = Calibration.load(str(calibration_path))
        except (FileNotFoundError, ValueError) as error:
            raise AuditConfigError(f"groundedness_judge.calibration: {error}") from None
        _warn_if_other_judge(calibration, model_identity(model_uri), int8, str(calibration_path))
        threshold = calibration.threshold
    uris = {"tracking_uri": tracking.uri, "registry_uri": tracking.get("registry_uri")} if tracking else {}
    try:
        judge = GroundednessJudge.load(model_uri, threshold=threshold, int8=int8, **uris)
    except (FileNotFoundError, ValueError) as error:
        raise AuditConfigError(f"groundedness_judge: {error}") from None
    origin = "calibration" if calibration else "config" if threshold is not None else "model card"
    info: dict[str, Any] = {
        "model_uri": model_identity(model_uri),
        "int8": int8,
        "threshold": float(judge.threshold),
        "threshold_origin": origin,
        "calibration": None,
    }
    if calibration is not None:
        info["calibration"] = {
            "path": str(calibration_path),
            "model_uri": calibration.model_uri,
            "same_model": calibration.model_uri == model_identity(model_uri),
            "labels_sha256": calibration.labels_sha256,
            "n": calibration.n,
            "n_supported": calibration.n_supported,
            "n_unsupported": calibration.n_unsupported,
            "balanced_accuracy": calibration.balanced_accuracy,
            "balanced_accuracy_ci": list(calibration.balanced_accuracy_ci),
            "previous_threshold": calibration.previous_threshold,
            "previous_balanced_accuracy": calibration.previous_balanced_accuracy,
            "created": calibration.created,
        }
    return judge, info


def _warn_if_other_judge(calibration: Any, model_uri: str, int8: bool, path: str) -> None:
    if calibration.model_uri is not None and calibration.model_uri != model_uri:
        log.warning(
            "groundedness_judge.calibration %s was made for judge %s, but the audit uses %s: its threshold may "
            "not suit this judge (re-run csml calibrate-judge with judge.model_uri=%s)",
            path, calibration.model_uri, model_uri, model_uri,
        )  # fmt: skip
    if calibration.int8 is not None and calibration.int8 != int8:
        log.warning(
            "groundedness_judge.calibration %s was made with int8=%s, the audit runs int8=%s: scores shift",
            path, calibration.int8, int8,
        )  # fmt: skip


def _embedder(spec: DictConfig) -> Any:
    from csml.models.encoder import CachedEmbedder, load_encoder

    return CachedEmbedder(load_encoder(str(spec.name_or_path), bool(spec.get("int8", False))))


def assert_audit(suite: str, *overrides: str, adapter: Any = None) -> dict[str, Any]:
    """Runs ``csml audit suite=<suite> <overrides>`` in process and raises ``AssertionError`` naming every
    failed gate; returns the scorecard. For pytest suites that gate a bot in CI::

        def test_support_bot_passes_escalation_audit(tmp_path):
            assert_audit("escalation", "target.url=http://127.0.0.1:8000", f"paths.output_dir={tmp_path}")
    """
    from csml.audit.scorecard import assert_passed
    from csml.config import compose

    scorecard, _ = audit(compose("audit", [f"suite={suite}", *overrides]), adapter=adapter)
    assert_passed(scorecard)
    return scorecard


def audit_command(cfg: DictConfig) -> None:
    """The ``csml audit`` entry point: exit 0 when every gate passes, 1 when one fails, 2 on config errors."""
    try:
        scorecard, paths = audit(cfg)
    except AuditConfigError as error:
        log.error("%s", error)
        sys.exit(2)
    print(paths["summary"].read_text(encoding="utf-8"))
    print(f"scorecard: {paths['scorecard']}\nreport:    {paths['report']}")
    if not scorecard["passed"]:
        sys.exit(1)
