"""Audit metrics, suites and adapters without a bot: exact values on hand-made examples."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from csml.audit.adapters import CallableAdapter, get_path
from csml.audit.errors import AuditConfigError
from csml.audit.facts import extract_facts
from csml.audit.metrics import (
    Abstention,
    AnswerCorrectness,
    FabricatedEntities,
    Groundedness,
    LatencyPercentile,
    build_metric,
    token_f1,
)
from csml.audit.questions import build_abcd_questions
from csml.audit.suite import MetricSpec, load_suite, select
from csml.config import project_root
from csml.schemas import AuditSample, BotReply

ROOT = project_root()
CONTEXT = (
    "Refunds are issued within 30 days to the card on file. Contact help@acme.com or visit acmecorp.com."
)


def test_extract_facts_finds_every_kind() -> None:
    text = (
        "Your order number AB12345 of $75.00 ships on March 3. Email help@acme.com, call +1 415 555 0100, "
        "see https://acme.com/returns or wait 14 days."
    )
    assert [(f.kind, f.text) for f in extract_facts(text)] == [
        ("identifier", "AB12345"),
        ("amount", "$75.00"),
        ("date", "March 3"),
        ("email", "help@acme.com"),
        ("phone", "+1 415 555 0100"),
        ("url", "https://acme.com/returns"),
        ("duration", "14 days"),
    ]


@pytest.mark.parametrize(
    ("answer", "value", "flagged"),
    [
        ("Refunds are issued within 30 days. Write to help@acme.com.", 0.0, []),
        ("Refunds are issued within 60 days.", 1.0, ["duration '60 days'"]),
        ("Refunds are issued within thirty days by Howard Chen.", 1.0, ["name 'Howard Chen'"]),
        ("A $25 fee applies; call 800-555-0199.", 1.0, ["amount '$25'", "phone '800-555-0199'"]),
        ("Visit acmecorp.com or shop.acme.io.", 1.0, ["url 'shop.acme.io'"]),
        ("Your refund arrives on June 3.", 1.0, ["date 'June 3'"]),
        ("The membership costs $99 a year.", 1.0, ["amount '$99'"]),  # in the KB, not the returned contexts
    ],
)
def test_fabricated_entities_exact(answer: str, value: float, flagged: list[str]) -> None:
    metric = FabricatedEntities(kb_texts=["Gold membership: $99 per year."], threshold=0.05)
    sample = AuditSample(id="s", question="How long do refunds take?")
    result = metric.score(sample, BotReply(text=answer, contexts=[CONTEXT]))
    assert result.value == value
    for fact in flagged:
        assert fact in result.reason
    if "$99" in answer:  # without returned contexts the whole knowledge base counts as a source
        assert metric.score(sample, BotReply(text=answer)).value == 0.0
    assert metric.direction == "lower"
    assert metric.passed(metric.aggregate([0.0, 0.0, 1.0])) is False  # 0.333 > 0.05


def test_fabricated_entities_skips_failed_requests() -> None:
    result = FabricatedEntities().score(AuditSample(id="s", question="q"), BotReply(error="http_500: boom"))
    assert result.value is None and "http_500" in result.reason


class BagOfWords:
    """A tiny deterministic embedder: normalised letter-trigram counts (no model needed)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 512), dtype=np.float32)
        for row, text in enumerate(texts):
            t = text.lower()
            for i in range(len(t) - 2):
                vectors[row, hash(t[i : i + 3]) % 512] += 1
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def test_groundedness_counts_supported_sentences() -> None:
    metric = Groundedness(embedder=BagOfWords(), method="embedding", sentence_threshold=0.8)
    sample = AuditSample(id="s", question="q")
    supported = metric.score(
        sample, BotReply(text="Refunds are issued within 30 days to the card on file.", contexts=[CONTEXT])
    )
    assert supported.value == 1.0
    half = metric.score(
        sample,
        BotReply(
            text="Refunds are issued within 30 days to the card on file. Penguins juggle quantum marmalade.",
            contexts=[CONTEXT],
        ),
    )
    assert half.value == 0.5 and "Penguins" in half.reason
    assert metric.score(sample, BotReply(text="I don't know.", abstained=True)).value is None


def test_correctness_token_f1_and_abstention() -> None:
    assert token_f1("the cat sat", "the cat sat") == 1.0
    assert token_f1("a b", "c d") == 0.0
    assert token_f1("a b c d", "a b") == pytest.approx(2 / 3)
    correctness = AnswerCorrectness(embedder=BagOfWords())
    sample = AuditSample(id="s", question="q", reference_answer=CONTEXT)
    assert correctness.score(sample, BotReply(text=CONTEXT)).value == pytest.approx(1.0, abs=1e-5)
    unanswerable = AuditSample(id="u", question="capital of Peru?", answerable=False, category="off_topic")
    abstention = Abstention(abstain_patterns=["don't know"])
    assert abstention.score(unanswerable, BotReply(text="I don't know that.")).value == 1.0
    assert abstention.score(unanswerable, BotReply(text="Lima.")).value == 0.0
    assert abstention.score(unanswerable, BotReply(text="Sure.", escalated=True)).value == 1.0
    assert abstention.score(sample, BotReply(text="x")).value is None


def test_latency_percentile_and_unknown_metric() -> None:
    metric = LatencyPercentile(threshold=100)
    assert metric.aggregate([10.0] * 19 + [1000.0]) == pytest.approx(59.5)
    with pytest.raises(AuditConfigError, match="Did you mean 'groundedness'"):
        build_metric(MetricSpec("groundednes"), embedder=BagOfWords)


def test_suite_loads_with_overrides_and_sampling_is_deterministic() -> None:
    suite = load_suite("rag_abcd", ROOT / "audits", {"groundedness": {"threshold": 0.95}})
    specs = {m.name: m for m in suite.metrics}
    assert specs["groundedness"].threshold == 0.95
    samples = suite.samples()
    assert {s.category for s in samples} == {"policy", "off_topic", "false_premise"}
    assert all(s.source for s in samples)
    first, again = select(samples, 12, seed=3), select(samples, 12, seed=3)
    assert [s.id for s in first] == [s.id for s in again] and len(first) == 12
    assert {s.category for s in first} == {"policy", "off_topic", "false_premise"}
    assert [s.id for s in select(samples, 12, seed=4)] != [s.id for s in first]
    with pytest.raises(AuditConfigError, match="Did you mean 'rag_abcd'"):
        load_suite("rag_abc", ROOT / "audits")
    with pytest.raises(AuditConfigError, match="no such metric"):
        load_suite("rag_abcd", ROOT / "audits", {"faithfulness": {"threshold": 1}})


def test_shipped_question_set_is_rebuilt_identically(tmp_path: Path) -> None:
    from csml.audit.questions import write_questions

    write_questions(build_abcd_questions(ROOT / "data" / "abcd", seed=0), tmp_path / "q.jsonl")
    assert (tmp_path / "q.jsonl").read_text() == (
        ROOT / "audits" / "rag_abcd" / "questions.jsonl"
    ).read_text()


def test_get_path_and_callable_adapter_errors() -> None:
    payload = {"choices": [{"message": {"content": "hi"}}], "csml": {"contexts": ["c1"]}}
    assert get_path(payload, "choices.0.message.content") == "hi"
    assert get_path(payload, "$.csml.contexts") == ["c1"]
    assert get_path(payload, "choices.3.message") is None

    def crashing(messages: list[dict[str, str]]) -> str:
        raise RuntimeError("model exploded")

    reply = asyncio.run(CallableAdapter(crashing).send([{"role": "user", "content": "hi"}]))
    assert reply.error == "exception: RuntimeError: model exploded"
    empty = asyncio.run(CallableAdapter(lambda m: "  ").send([{"role": "user", "content": "hi"}]))
    assert empty.error is not None and empty.error.startswith("empty_answer")
    ok = asyncio.run(
        CallableAdapter(lambda m: {"text": "yes", "contexts": ["c"]}).send([{"role": "user", "content": "q"}])
    )
    assert ok.ok and ok.contexts == ["c"]


@pytest.mark.parametrize("target", sorted(p.stem for p in (ROOT / "conf" / "target").glob("*.yaml")))
def test_target_configs_build_their_adapters(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from csml.audit.adapters import BotAdapter, HttpAdapter
    from csml.audit.run import _build_target
    from csml.config import compose

    cfg = compose(
        "audit",
        [
            f"paths.run_dir={tmp_path}",
            f"paths.output_dir={tmp_path}",
            f"target={target}",
            "target.url=http://127.0.0.1:9",
        ],
    )
    # csml's own bot answers from the ABCD manual; another bot's knowledge base is never borrowed from it
    assert bool(cfg.get("knowledge_base")) == target.startswith("reference")
    monkeypatch.delenv("CSML_BOT_TOKEN", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    adapter = _build_target(cfg.target)
    assert isinstance(adapter, BotAdapter) and adapter.identity()["url"] == "http://127.0.0.1:9"
    assert isinstance(adapter, HttpAdapter) and "Authorization" not in adapter._headers()
    monkeypatch.setenv("CSML_BOT_TOKEN", "s3cret")
    monkeypatch.setenv("OPENAI_API_KEY", "s3cret")
    if target == "openai_chat":  # a key is sent only when the target names its variable
        assert "Authorization" not in adapter._headers()
        cfg.target.api_key_env = "MY_BOT_KEY"
        monkeypatch.setenv("MY_BOT_KEY", "s3cret")
        adapter = _build_target(cfg.target)
    assert adapter._headers()["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in json.dumps(adapter.identity())


def test_openai_chat_sends_system_prompt_and_sampling_options_only_when_set() -> None:
    from csml.audit.adapters import OpenAIChatAdapter

    messages = [{"role": "user", "content": "Where is my refund?"}]
    plain = OpenAIChatAdapter("bot", "http://127.0.0.1:9", model="m")
    assert plain.build_request(messages)[2] == {"messages": messages, "model": "m"}
    tuned = OpenAIChatAdapter(
        "bot", "http://127.0.0.1:9", system_prompt="You are Acme's agent.", temperature=0.0, max_tokens=64
    )
    body = tuned.build_request(messages)[2]
    assert body["messages"] == [{"role": "system", "content": "You are Acme's agent."}, *messages]
    assert body["temperature"] == 0.0 and body["max_tokens"] == 64 and "model" not in body
    assert "Acme" not in json.dumps(tuned.identity())  # identity (logged, cache key) holds the prompt's hash
    assert tuned.request_key(messages) != plain.request_key(messages)


@pytest.mark.parametrize(
    ("answer", "value", "new_word"),
    [
        ("You can return items within 30 days. Refunds will go to the card on file.", 0.0, None),
        ("You cannot return items within 30 days. Refunds will go to the card on file.", 0.5, "cannot"),
        ("You can return items within 30 days. Refunds will not go to the card on file.", 0.5, "not"),
        ("You can return items within 30 days in June. Refunds will go to the card on file.", 0.5, "june"),
        ("Refunds will go to the card on file. Gold members get a free yacht.", 0.5, "gold"),
    ],
)
def test_unsupported_sentences_exact(answer: str, value: float, new_word: str | None) -> None:
    from csml.audit.metrics import UnsupportedSentences

    context = "Returns: you can return items within 30 days. Refunds will go to the card on file."
    result = UnsupportedSentences().score(
        AuditSample(id="s", question="q"), BotReply(text=answer, contexts=[context])
    )
    assert result.value == value
    if new_word:
        assert repr(new_word) in result.reason


def test_rate_limiter_spaces_request_starts() -> None:
    import time

    from csml.audit.adapters import _RateLimiter

    async def five_starts() -> float:
        limiter = _RateLimiter(per_second=20)
        start = time.perf_counter()
        await asyncio.gather(*(limiter.wait() for _ in range(5)))
        return time.perf_counter() - start

    assert 0.19 <= asyncio.run(five_starts()) < 1.0  # starts at 0, 50, 100, 150, 200 ms


def test_assert_passed_names_failed_gates() -> None:
    from csml.audit.scorecard import assert_passed

    gate = {"threshold": 0.9, "direction": "higher", "n": 3}
    card = {
        "suite": {"name": "rag_abcd"},
        "metrics": {
            "groundedness": {**gate, "value": 0.8, "passed": False},
            "abstention": {**gate, "value": 1.0, "passed": True},
        },
    }
    with pytest.raises(AssertionError, match=r"rag_abcd failed: groundedness 0.8 \(gate >= 0.9\)$"):
        assert_passed(card)
    card["metrics"]["groundedness"]["passed"] = True
    assert_passed(card)


def test_bootstrap_intervals_and_gates_on_the_interval_bound() -> None:
    from csml.audit.metrics.operational import ErrorRate, LatencyPercentile
    from csml.schemas import MetricResult

    results = [MetricResult(1.0, "")] * 50 + [MetricResult(0.0, "")] * 50 + [MetricResult(None, "n/a")] * 5
    on_value = ErrorRate(threshold=0.55)
    on_interval = ErrorRate(threshold=0.55, gate_on="interval")
    value, interval = on_value.aggregate_results(results), on_value.interval(results)
    assert value == 0.5 and interval is not None
    low, high = interval
    assert 0.38 < low < 0.45 and 0.55 < high < 0.62  # about +-1.96 * sqrt(0.25 / 100)
    assert on_value.passed(value, interval) is True  # 0.5 <= 0.55
    assert on_interval.passed(value, interval) is False  # the upper bound is above 0.55: not shown
    assert ErrorRate(threshold=0.7, gate_on="interval").passed(value, interval) is True
    assert on_value.interval(results[:1]) is None  # one value: no interval
    latencies = [MetricResult(float(ms), "") for ms in range(1, 201)]
    p95 = LatencyPercentile(percentile=95)
    p95_low, p95_high = p95.interval(latencies)  # a metric with its own aggregate is resampled as a whole
    assert p95_low <= p95.aggregate_results(latencies) <= p95_high
