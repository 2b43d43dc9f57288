"""``csml audit`` end to end against the reference bot over real HTTP on 127.0.0.1 (tmp sqlite MLflow)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from csml.config import compose

LIMIT = 6  # questions per audit: 4 policy, 1 off-topic, 1 false-premise (stratified)
# Groundedness by embedding similarity, so that values asserted here mean something without a trained judge;
# the judge path has its own test below (with a smoke-trained judge whose scores mean nothing).
EMBEDDING_GROUNDEDNESS = "+metrics.groundedness.params.method=embedding"


@pytest.fixture(scope="module")
def bot(start_bot_server: Callable[..., tuple[str, Path]]) -> tuple[str, Path]:
    return start_bot_server()


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow")


def audit_cfg(url: str, out: Path, *overrides: str, mlflow_dir: Path | None = None) -> DictConfig:
    tracking = (
        [
            f"tracking.uri=sqlite:///{mlflow_dir}/mlflow.db",
            f"tracking.artifact_location={mlflow_dir}/artifacts",
        ]
        if mlflow_dir
        else ["~tracking"]
    )
    return compose(
        "audit",
        [
            f"paths.run_dir={out}/runs",
            f"paths.output_dir={out}",
            f"target.url={url}",
            f"limit={LIMIT}",
            "progress=false",
            "cache_dir=null",
            EMBEDDING_GROUNDEDNESS,
            *tracking,
            *overrides,
        ],
    )


def requests_seen(reply_log: Path) -> int:
    return len(reply_log.read_text().splitlines()) if reply_log.is_file() else 0


def test_audit_writes_scorecard_and_mlflow_run(
    bot: tuple[str, Path], tmp_path: Path, mlflow_db: Path
) -> None:
    import mlflow

    from csml.audit.run import audit

    url, _ = bot
    scorecard, paths = audit(audit_cfg(url, tmp_path, mlflow_dir=mlflow_db))

    assert scorecard["passed"] is True
    assert scorecard["counts"] == {
        "samples": LIMIT,
        "errors": 0,
        "errors_by_kind": {},
        "first_attempt_errors": 0,
        "cached": 0,
    }
    metrics = scorecard["metrics"]
    assert metrics["groundedness"]["value"] == 1.0  # the extractive bot answers with its retrieved passage
    assert metrics["fabricated_entities"]["value"] == 0.0
    assert metrics["error_rate"]["value"] == 0.0 and metrics["error_rate"]["passed"] is True
    assert metrics["abstention"]["n"] == 2 and metrics["answer_correctness"]["n"] == 4
    assert scorecard["target"]["url"] == url and scorecard["environment"]["git_commit"]
    assert {p.name for p in paths.values()} == {
        "scorecard.json",
        "samples.jsonl",
        "summary.md",
        "report.html",
    }
    rows = [json.loads(line) for line in paths["samples"].read_text().splitlines()]
    assert len(rows) == LIMIT and all(set(r["scores"]) == set(metrics) for r in rows)
    assert all(r["scores"]["error_rate"]["reason"] == "ok" for r in rows)
    assert "data:image/png;base64," in paths["report"].read_text()
    assert "| groundedness | 1 | 1–1 | >= 0.9 | pass |" in paths["summary"].read_text()
    assert metrics["groundedness"]["ci95"] == [1.0, 1.0] and metrics["groundedness"]["gate_on"] == "value"

    mlflow.set_tracking_uri(f"sqlite:///{mlflow_db}/mlflow.db")
    run = mlflow.get_run(scorecard["mlflow_run_id"])
    assert run.data.tags["csml.audit.passed"] == "true"
    assert run.data.metrics["audit/rag_abcd/groundedness"] == 1.0
    assert run.data.metrics["audit/rag_abcd/groundedness/ci95_low"] == 1.0


def test_cli_exit_codes(bot: tuple[str, Path], tmp_path: Path, mlflow_db: Path) -> None:
    import mlflow

    from csml.cli import main

    url, _ = bot
    base = [
        f"target.url={url}",
        f"limit={LIMIT}",
        "progress=false",
        "cache_dir=null",
        EMBEDDING_GROUNDEDNESS,
        f"paths.run_dir={tmp_path}/runs",
        f"hydra.run.dir={tmp_path}/out",
        f"tracking.uri=sqlite:///{mlflow_db}/mlflow.db",
        f"tracking.artifact_location={mlflow_db}/artifacts",
    ]
    with pytest.raises(SystemExit) as failed:
        main(["audit", "suite=rag_abcd", *base, "+metrics.latency_p95_ms.threshold=0.001"])
    assert failed.value.code == 1
    scorecard = json.loads((tmp_path / "out" / "scorecard.json").read_text())
    assert scorecard["metrics"]["latency_p95_ms"]["passed"] is False and scorecard["passed"] is False
    mlflow.set_tracking_uri(f"sqlite:///{mlflow_db}/mlflow.db")
    run_id = json.loads((tmp_path / "out" / "mlflow_run.json").read_text())["run_id"]
    assert mlflow.get_run(run_id).data.tags["csml.audit.passed"] == "false"

    with pytest.raises(SystemExit) as misconfigured:
        main(["audit", "suite=no_such_suite", *base])
    assert misconfigured.value.code == 2


def test_groundedness_judge_scores_claims_and_reports_highlight_them(
    bot: tuple[str, Path], tmp_path: Path, smoke_judge: Path
) -> None:
    from csml.audit.run import audit
    from csml.cli import main

    url, _ = bot
    judge = [f"groundedness_judge.model_uri={smoke_judge}", "metrics.groundedness.params.method=judge"]
    lenient, _ = audit(audit_cfg(url, tmp_path / "lenient", *judge, "groundedness_judge.threshold=0.0"))
    assert lenient["metrics"]["groundedness"]["value"] == 1.0
    strict, paths = audit(audit_cfg(url, tmp_path / "strict", *judge, "groundedness_judge.threshold=1.01"))
    assert (
        strict["metrics"]["groundedness"]["value"] == 0.0
        and strict["metrics"]["groundedness"]["passed"] is False
    )
    rows = [json.loads(line) for line in paths["samples"].read_text().splitlines()]
    judged = [r for r in rows if r["scores"]["groundedness"]["value"] is not None]
    assert judged
    for row in judged:
        claims = row["scores"]["groundedness"]["data"]["claims"]
        assert claims and not any(c["supported"] for c in claims)
        answer = row["reply"]["text"]
        assert all(answer[c["start"] : c["end"]].strip() for c in claims)
        assert (
            "claims supported by the contexts (judge threshold 1.01)"
            in row["scores"]["groundedness"]["reason"]
        )
    assert "<mark" in paths["report"].read_text()

    with pytest.raises(SystemExit) as missing:
        main(["audit", f"target.url={url}", "limit=1", "progress=false", "~tracking", f"paths.run_dir={tmp_path}/r",
              f"hydra.run.dir={tmp_path}/missing", "groundedness_judge.model_uri=/no/such/judge"])  # fmt: skip
    assert missing.value.code == 2


def test_bot_errors_are_recorded_per_sample(
    start_bot_server: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    from csml.audit.run import audit

    url, reply_log = start_bot_server("bot.faults.error_rate=1.0")
    scorecard, paths = audit(audit_cfg(url, tmp_path / "errors", "target.retries=1", "target.backoff_s=0.01"))
    assert scorecard["passed"] is False
    assert scorecard["counts"]["errors_by_kind"] == {"http_500": LIMIT}
    assert scorecard["counts"]["first_attempt_errors"] == LIMIT
    assert f"First attempts failed: {LIMIT} of {LIMIT}" in paths["summary"].read_text()
    assert scorecard["metrics"]["error_rate"]["value"] == 1.0
    assert (
        scorecard["metrics"]["groundedness"]["n"] == 0
        and scorecard["metrics"]["groundedness"]["value"] is None
    )
    rows = [json.loads(line) for line in paths["samples"].read_text().splitlines()]
    assert all(r["reply"]["attempts"] == 2 and r["reply"]["status"] == 500 for r in rows)
    assert requests_seen(reply_log) == 2 * LIMIT  # one retry each

    url, _ = start_bot_server("bot.faults.malformed_rate=1.0")
    scorecard, _ = audit(audit_cfg(url, tmp_path / "malformed", "target.retries=0"))
    assert scorecard["counts"]["errors_by_kind"] == {"malformed_json": LIMIT}

    url, _ = start_bot_server("bot.faults.latency_ms=1000")
    slow = ("target.timeout_s=0.2", "target.retries=1", "target.backoff_s=0.01")
    scorecard, paths = audit(audit_cfg(url, tmp_path / "slow", *slow))
    assert scorecard["counts"]["errors_by_kind"] == {"timeout": LIMIT}
    assert scorecard["metrics"]["timeout_rate"]["value"] == 1.0
    assert scorecard["metrics"]["latency_p95_ms"]["n"] == 0  # timeouts have no latency to report
    assert f"{LIMIT} questions timed out (target.timeout_s=0.2" in paths["summary"].read_text()
    rows = [json.loads(line) for line in paths["samples"].read_text().splitlines()]
    assert all(r["reply"]["attempts"] == 2 for r in rows)
    audit(audit_cfg(url, tmp_path / "slow", *slow))  # rerun in the same folder: the timeouts are asked again
    assert len((tmp_path / "slow" / "replies.jsonl").read_text().splitlines()) == 2 * LIMIT


def test_a_misconfigured_target_stops_at_the_first_question(bot: tuple[str, Path], tmp_path: Path) -> None:
    from csml.audit.errors import AuditConfigError
    from csml.audit.run import audit

    url, _ = bot
    with pytest.raises(AuditConfigError, match=r"HTTP 404 .*check target.url, target.path and target.model"):
        audit(audit_cfg(url, tmp_path / "wrong", "target.path=/v1/no-such-path"))
    assert len((tmp_path / "wrong" / "replies.jsonl").read_text().splitlines()) == 1  # nothing else asked


def test_interrupted_audit_resumes_and_cache_is_reused(bot: tuple[str, Path], tmp_path: Path) -> None:
    from csml.audit.run import audit

    url, reply_log = bot
    out = tmp_path / "audit"
    audit(audit_cfg(url, out))
    replies = out / "replies.jsonl"
    lines = replies.read_text().splitlines()
    assert len(lines) == LIMIT
    # As if killed after two answers, mid-way through writing the third.
    replies.write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])
    before = requests_seen(reply_log)
    scorecard, _ = audit(audit_cfg(url, out))
    assert requests_seen(reply_log) - before == LIMIT - 2
    assert scorecard["counts"]["samples"] == LIMIT

    cache = tmp_path / "cache"
    audit(audit_cfg(url, tmp_path / "first", f"cache_dir={cache}"))
    before = requests_seen(reply_log)
    scorecard, _ = audit(audit_cfg(url, tmp_path / "second", f"cache_dir={cache}"))
    assert requests_seen(reply_log) == before
    assert scorecard["counts"]["cached"] == LIMIT


def test_generic_http_json_target_reads_answer_and_contexts(bot: tuple[str, Path], tmp_path: Path) -> None:
    from csml.audit.run import audit

    url, _ = bot
    scorecard, paths = audit(audit_cfg(url, tmp_path, "target=http_json"))
    assert scorecard["target"]["adapter"] == "HttpJsonAdapter" and scorecard["counts"]["errors"] == 0
    rows = [json.loads(line) for line in paths["samples"].read_text().splitlines()]
    policy = [r for r in rows if r["category"] == "policy"]
    assert policy and all(len(r["reply"]["contexts"]) == 3 and r["reply"]["intent"] for r in policy)
    assert scorecard["metrics"]["groundedness"]["value"] == 1.0


def test_conversation_target_replays_history_in_one_session(bot: tuple[str, Path], tmp_path: Path) -> None:
    import asyncio

    import httpx

    from csml.audit.adapters import ConversationAdapter
    from csml.audit.runner import collect_replies
    from csml.schemas import AuditSample

    url, _ = bot
    sample = AuditSample(
        id="multi",
        question="And how do I reset my two-factor authentication?",
        history=(
            {"role": "user", "content": "I forgot my password"},
            {"role": "assistant", "content": "(whatever the bot said)"},
        ),
    )
    adapter = ConversationAdapter("conv", url, retries=0)
    rows = asyncio.run(collect_replies(adapter, [sample], tmp_path / "replies.jsonl", progress=False))
    reply = rows["multi"]["reply"]
    assert reply["error"] is None and reply["contexts"] and "Two-Factor" in reply["text"]
    conversation = httpx.get(f"{url}/v1/conversations/{reply['raw']['conversation_id']}").json()
    customer_turns = [t["text"] for t in conversation["turns"] if t["role"] == "customer"]
    assert customer_turns == ["I forgot my password", sample.question]


def test_target_adapter_is_a_registered_name_or_an_import_path(tmp_path: Path) -> None:
    from csml.audit.adapters import CallableAdapter, HttpJsonAdapter
    from csml.audit.errors import AuditConfigError
    from csml.audit.run import _build_target

    def target(*overrides: str):
        return audit_cfg("http://127.0.0.1:9", tmp_path, "target=http_json", *overrides).target

    assert isinstance(_build_target(target()), HttpJsonAdapter)
    by_path = _build_target(
        OmegaConf.create({"adapter": "csml.audit.adapters:CallableAdapter", "fn": "json:dumps", "name": "f"})
    )
    assert isinstance(by_path, CallableAdapter)
    with pytest.raises(AuditConfigError, match=r"Did you mean 'http_json'\?"):
        _build_target(target("target.adapter=http_jsn"))
    with pytest.raises(AuditConfigError, match=r"not a csml\.audit\.adapters\.BotAdapter subclass"):
        _build_target(OmegaConf.create({"adapter": "json:JSONDecoder"}))
    with pytest.raises(AuditConfigError, match=r"cannot build the http_json adapter.*colour"):
        _build_target(target("+target.colour=red"))
