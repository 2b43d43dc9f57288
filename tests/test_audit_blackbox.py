"""Auditing a bot that returns only text: knowledge-base evidence for the judge, `csml audit init`, and an
audit of csml's second, fault-injecting bot (csml.devtools.faulty_bot) over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from csml.audit.evidence import BM25, KBEvidence
from csml.config import compose, minilm_path
from csml.devtools.faulty_bot import HANDOVER, KB_DIR, FaultyBot, corrupt
from csml.knowledge.documents import DocumentFiles

SUITE = Path(__file__).resolve().parents[1] / "audits" / "kestrel_support"


@pytest.fixture(scope="module")
def embedder():
    from csml.models.encoder import CachedEmbedder, load_encoder

    return CachedEmbedder(load_encoder(minilm_path(), True))


@pytest.fixture(scope="module")
def kestrel_entries():
    return DocumentFiles(["*.md"], name="kestrel", base_dir=str(KB_DIR)).load()


def test_bm25_prefers_rare_exact_terms() -> None:
    bm25 = BM25(["refunds take five days", "the restocking fee is charged on refunds", "shipping is free"])
    scores = bm25.scores("restocking fee")
    assert scores.argmax() == 1 and scores[0] == 0.0 and scores[2] == 0.0


@pytest.mark.parametrize(
    ("query", "section"),
    [
        ("How much is the restocking fee for an opened phone?", "returning-a-new-phone"),
        ("Can I use my phone in Japan? It costs $10 per day.", "roaming"),  # lexical: "$10 per day"
        ("My bill is overdue, what extra charge do I pay?", "late-payments"),  # paraphrase: dense
        ("What number do I text to keep my phone number?", "moving-your-number"),
    ],
)
def test_kb_evidence_finds_the_section_a_claim_comes_from(kestrel_entries, embedder, query, section) -> None:
    evidence = KBEvidence(kestrel_entries, embedder, window_words=96, top_k=3)
    found = evidence.retrieve([query])[0]
    assert len(found) == 3
    assert section in found[0].entry_id, [p.entry_id for p in found]


def test_faulty_bot_corrupts_by_seed_and_logs_the_truth(tmp_path: Path) -> None:
    text = "A late fee of $7 is added when a bill is more than 14 days overdue."
    kinds = {corrupt(text, random.Random(seed))[0] for seed in range(40)}
    assert kinds == {"number", "invented"}
    for seed in range(10):
        _, changed = corrupt(text, random.Random(seed))
        assert changed != text
    log = tmp_path / "truth.jsonl"
    bot = FaultyBot(corrupt_rate=1.0, seed=3, truth_log=log)
    answer = bot.reply("What happens if I pay my bill late?")["choices"][0]["message"]["content"]
    assert bot.reply("Can I talk to a human?")["choices"][0]["message"]["content"] == HANDOVER
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0]["served"] == answer and records[0]["fault"] and records[0]["clean"] != answer
    assert records[0]["section"] == "Late payments" and records[1]["kind"] == "handover"
    assert FaultyBot(corrupt_rate=0.0).answer("What happens if I pay my bill late?")["fault"] is None


def test_audit_init_writes_an_editable_suite_deterministically(tmp_path: Path) -> None:
    from csml.audit.init import audit_init
    from csml.audit.suite import load_suite

    def init(out: Path, *extra: str) -> list[dict]:
        cfg = compose(
            "audit_init",
            [f"paths.run_dir={tmp_path}/runs", "knowledge_base=files", f"knowledge_base.paths=[{KB_DIR}/*.md]",
             f"out={out}", "name=starter", *extra],
        )  # fmt: skip
        paths = audit_init(cfg)
        return [json.loads(line) for line in paths["questions"].read_text().splitlines()]

    first = init(tmp_path / "a")
    assert first == init(tmp_path / "b")
    assert first != init(tmp_path / "c", "seed=1")
    categories = {q["category"] for q in first}
    assert categories == {"answerable", "answerable_fact", "unanswerable", "off_topic", "handover"}
    assert not any(q["reference_contexts"] for q in first)
    answerable = [q for q in first if q["category"] == "answerable"]
    assert len(answerable) == 3 * 20 and all(
        q["reference_source"] and q["reference_answer"] for q in answerable
    )
    unanswerable = [q["question"] for q in first if q["category"] == "unanswerable"]
    assert "Do you sell gift cards?" in unanswerable and "Is there a student discount?" in unanswerable
    assert all(q["should_escalate"] for q in first if q["category"] == "handover")
    suite = load_suite(str(tmp_path / "a"), tmp_path)
    assert suite.knowledge_base is not None and len(suite.samples()) == len(first)
    from csml.audit.errors import AuditConfigError

    with pytest.raises(AuditConfigError, match="exists; choose another out= or pass overwrite=true"):
        init(tmp_path / "a")
    # the shipped suite was written by audit init: its questions name entries of its own knowledge base
    from hydra.utils import instantiate

    shipped = load_suite(str(SUITE), SUITE.parent)
    kb_ids = {e.id for e in instantiate(shipped.knowledge_base).load()}
    sources = {s.reference_source for s in shipped.samples() if s.reference_source}
    assert len(sources) == 20 and sources <= kb_ids


def fake_llm_endpoint(seen: list[dict]) -> object:
    """A FAKE OpenAI-compatible chat endpoint (a boundary stand-in for a real model server): it records each
    request and answers with numbered questions, a duplicate and a line that is not a question."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append({"body": body, "authorization": request.headers.get("authorization")})
        title = body["messages"][1]["content"].split("\n")[0]
        text = f"1. What does {title} say?\n2) Is {title} free?\n- What does {title} say?\nHere you go!"
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": text}}]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def test_audit_init_adds_questions_a_model_wrote_behind_an_openai_endpoint(
    tmp_path: Path, monkeypatch
) -> None:
    from csml.audit.errors import AuditConfigError
    from csml.audit.init import audit_init
    from csml.bot.server import BackgroundServer

    seen: list[dict] = []
    monkeypatch.setenv("WRITER_KEY", "s3cret")
    with BackgroundServer(fake_llm_endpoint(seen)) as server:
        overrides = [f"paths.run_dir={tmp_path}/runs", "knowledge_base=files", f"knowledge_base.paths=[{KB_DIR}/*.md]",
                     f"+generator.base_url={server.url}/v1", "+generator.model=writer-7b", "progress=false"]  # fmt: skip
        paths = audit_init(
            compose("audit_init", [*overrides, f"out={tmp_path}/a", "+generator.api_key_env=WRITER_KEY"])
        )
        with pytest.raises(
            AuditConfigError, match=r"generator\.api_key_env: the environment variable NOPE is not set"
        ):
            audit_init(
                compose("audit_init", [*overrides, f"out={tmp_path}/b", "+generator.api_key_env=NOPE"])
            )
    questions = [json.loads(line) for line in paths["questions"].read_text().splitlines()]
    written = [q for q in questions if q["category"] == "answerable_model"]
    assert len(written) == 2 * 20 and len(seen) == 20
    assert written[0]["question"].startswith("What does ") and written[1]["question"].endswith(" free?")
    assert all(q["source"] == f"csml audit init: written by writer-7b at {server.url}/v1" for q in written)
    assert all(q["group"] == q["reference_source"] for q in written)
    assert seen[0]["authorization"] == "Bearer s3cret" and seen[0]["body"]["temperature"] == 0
    assert "s3cret" not in paths["suite"].read_text() + paths["questions"].read_text()


def test_audit_of_a_bot_without_contexts_judges_claims_against_retrieved_kb_passages(
    tmp_path: Path, smoke_judge: Path
) -> None:
    from csml.audit.run import audit
    from csml.bot.server import BackgroundServer
    from csml.devtools.faulty_bot import create_app

    log = tmp_path / "truth.jsonl"
    with BackgroundServer(create_app(FaultyBot(corrupt_rate=0.3, seed=0, truth_log=log))) as server:
        cfg = compose(
            "audit",
            [f"paths.run_dir={tmp_path}/runs", f"paths.output_dir={tmp_path}/audit", "target=openai_chat",
             f"target.url={server.url}", "target.rate_limit_per_s=null", f"suite={SUITE}", "limit=24",
             "progress=false", "cache_dir=null", "~tracking", f"groundedness_judge.model_uri={smoke_judge}",
             "groundedness_judge.threshold=0.0"],
        )  # fmt: skip
        scorecard, paths = audit(cfg)
    truth = {r["id"]: r for r in map(json.loads, log.read_text().splitlines())}
    rows = [json.loads(line) for line in paths["samples"].read_text().splitlines()]
    assert len(rows) == 24 and scorecard["metrics"]["groundedness"]["value"] == 1.0
    assert scorecard["knowledge_base"] == {"declared_by": "suite", "entries": 20}
    assert "Knowledge base: 20 entries, declared by the suite" in paths["summary"].read_text()
    from hydra.utils import instantiate

    from csml.audit.suite import load_suite

    kb_ids = {e.id for e in instantiate(load_suite(str(SUITE), SUITE.parent).knowledge_base).load()}
    answered = 0
    for row in rows:
        record = truth[row["reply"]["raw"]["id"]]
        groundedness = row["scores"]["groundedness"]
        if record["kind"] != "answer":  # hand-overs and declines are not scored
            assert groundedness["value"] is None and "declined or handed over" in groundedness["reason"]
            assert row["scores"]["answer_correctness"]["value"] is None
            continue
        answered += 1
        assert groundedness["data"]["evidence"] == "knowledge_base"
        assert "knowledge-base passages" in groundedness["reason"]
        for claim in groundedness["data"]["claims"]:
            assert claim["sources"] and set(claim["sources"]) <= kb_ids and claim["evidence"]
    assert answered >= 10
