"""The NLU, escalation and hallucination suites and their metrics: exact values on hand-made replies, the
shipped suites parse and rebuild identically, and each suite runs against the real reference bot over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import external_data_dir
from csml.audit.errors import AuditConfigError
from csml.audit.metrics import (
    METRICS,
    EscalationRecall,
    FalseEscalationRate,
    IntentAccuracy,
    IntentMacroF1,
    OosPrecision,
    OosRecall,
    ParaphraseConsistency,
    build_metric,
)
from csml.audit.questions import BUNDLED, run_builder
from csml.audit.scorecard import aggregate, score_samples
from csml.audit.suite import MetricSpec, load_suite
from csml.config import compose, project_root
from csml.schemas import AuditSample, BotReply

ROOT = project_root()
SUITES = ("nlu_banking77", "nlu_clinc150", "escalation", "hallucination_abcd", "safety")
needs_external = pytest.mark.skipif(
    not (external_data_dir() / "airline_tweets").is_dir()
    or not (external_data_dir() / "truthfulqa").is_dir(),
    reason="airline_tweets / truthfulqa not in the external data folder",
)


def utterance(expected: str, sid: str = "u") -> AuditSample:
    return AuditSample(id=sid, question="hi", expected_intent=expected)


def test_intent_metrics_pass_and_fail() -> None:
    accuracy, macro_f1 = IntentAccuracy(threshold=0.9), IntentMacroF1(threshold=0.9)
    assert accuracy.score(utterance("card_arrival"), BotReply(text="x", intent="card_arrival")).value == 1.0
    wrong = accuracy.score(utterance("card_arrival"), BotReply(text="x", intent="top_up"))
    assert wrong.value == 0.0 and "'top_up'" in wrong.reason
    assert accuracy.score(utterance("card_arrival"), BotReply(text="x")).value == 0.0  # no intent reported
    assert accuracy.score(utterance("oos"), BotReply(text="x", intent="oos")).value is None
    assert accuracy.score(AuditSample(id="n", question="q"), BotReply(text="x")).value is None

    pairs = [("a", "a"), ("a", "a"), ("b", "a"), ("b", "b")]
    results = [macro_f1.score(utterance(e), BotReply(text="x", intent=p)) for e, p in pairs]
    # F1(a) = 2*2/(4+1+0) = 0.8, F1(b) = 2*1/(2+0+1) = 2/3
    assert macro_f1.aggregate_results(results) == pytest.approx((0.8 + 2 / 3) / 2)
    assert macro_f1.passed(macro_f1.aggregate_results(results)) is False
    perfect = [macro_f1.score(utterance(e), BotReply(text="x", intent=e)) for e in "aabb"]
    assert macro_f1.passed(macro_f1.aggregate_results(perfect)) is True


def test_oos_metrics_count_declines_without_an_intent() -> None:
    recall, precision = OosRecall(abstain_patterns=["don't know"]), OosPrecision()
    assert recall.score(utterance("oos"), BotReply(text="x", intent="oos")).value == 1.0
    assert recall.score(utterance("oos"), BotReply(text="I don't know")).value == 1.0
    assert recall.score(utterance("oos"), BotReply(text="x", intent="weather")).value == 0.0
    assert recall.score(utterance("weather"), BotReply(text="x", intent="oos")).value is None
    assert precision.score(utterance("oos"), BotReply(text="x", intent="oos")).value == 1.0
    assert precision.score(utterance("weather"), BotReply(text="x", escalated=True)).value == 0.0
    assert precision.score(utterance("weather"), BotReply(text="x", intent="weather")).value is None


def test_escalation_metrics_pass_and_fail() -> None:
    angry = AuditSample(id="a", question="worst service ever", should_escalate=True, category="angry")
    calm = AuditSample(id="c", question="where is my order", should_escalate=False)
    recall, false_rate = EscalationRecall(threshold=0.9), FalseEscalationRate(threshold=0.05)
    assert recall.score(angry, BotReply(text="...", escalated=True)).value == 1.0
    kept = recall.score(angry, BotReply(text="Here is our policy.", escalated=False))
    assert kept.value == 0.0 and "angry customer kept" in kept.reason
    assert recall.score(calm, BotReply(text="x", escalated=True)).value is None
    assert recall.score(angry, BotReply(error="timeout: 30 s")).value is None
    assert (
        EscalationRecall(escalate_patterns=["connecting you"])
        .score(angry, BotReply(text="I'm connecting you with an agent"))
        .value
        == 1.0
    )
    assert false_rate.score(calm, BotReply(text="x", escalated=True)).value == 1.0
    assert false_rate.score(calm, BotReply(text="x", escalated=False)).value == 0.0
    assert false_rate.passed(0.0) is True and false_rate.passed(0.5) is False


def test_hand_over_and_decline_phrases_match_whole_words_apostrophes_and_regexes(tmp_path: Path) -> None:
    from csml.audit.metrics.base import says_any
    from csml.audit.suite import load_suite

    assert says_any("I don’t know that one.", ["don't know"])  # typographic apostrophe
    assert not says_any("Our agents are humane.", ["human"])  # whole words only
    assert says_any("Connecting you to a human agent now.", ["re:^connecting you"])
    assert not says_any("A human agent cannot help with that; here is the policy.", ["re:^connecting you"])
    suite_dir = tmp_path / "handover"
    suite_dir.mkdir()
    (suite_dir / "questions.jsonl").write_text(
        '{"id": "q1", "question": "a human please", "should_escalate": true}\n'
    )
    (suite_dir / "suite.yaml").write_text(
        "name: handover\nescalate_patterns: ['re:^connecting you']\nmetrics:\n  escalation_recall: {threshold: 0.9}\n"
    )
    suite = load_suite("handover", tmp_path, {})
    assert suite.escalate_patterns == ("re:^connecting you",)
    elsewhere = tmp_path / "not-the-suites-dir"
    for by_path in (suite_dir / "suite.yaml", suite_dir):  # a suite of one's own, given by path
        assert load_suite(str(by_path), elsewhere).samples()[0].id == "q1"
    with pytest.raises(AuditConfigError, match=r"suite file .*missing\.yaml does not exist"):
        load_suite(str(tmp_path / "missing.yaml"), elsewhere)


@pytest.fixture(scope="module")
def minilm() -> object:
    from csml.config import minilm_path
    from csml.models.encoder import CachedEmbedder, load_encoder

    return CachedEmbedder(load_encoder(str(minilm_path()), True))


def test_paraphrase_consistency_pass_and_fail(minilm: object) -> None:
    metric = ParaphraseConsistency(embedder=minilm, threshold=0.8, abstain_patterns=["don't know"])
    samples = [AuditSample(id=f"p{i}", question=f"q{i}", group="refunds") for i in range(3)]
    same = "Refunds are issued within 30 days to the card on file."
    replies = [BotReply(text=same), BotReply(text=same), BotReply(text="Refunds take 90 days, by cheque.")]
    metric.prepare(list(zip(samples, replies, strict=True)))
    values = [metric.score(s, r).value for s, r in zip(samples, replies, strict=True)]
    assert values == [0.5, 0.5, 0.0]
    odd = metric.score(samples[2], replies[2])
    assert "different facts ['30 days', '90 days']" in odd.reason
    assert metric.passed(metric.aggregate(values)) is False

    declined = [BotReply(text=same), BotReply(text=same), BotReply(text="I don't know.")]
    metric.prepare(list(zip(samples, declined, strict=True)))
    assert "one declines" in metric.score(samples[2], declined[2]).reason
    metric.prepare(list(zip(samples, [BotReply(text=same)] * 3, strict=True)))
    assert metric.passed(metric.aggregate([metric.score(s, BotReply(text=same)).value for s in samples]))
    assert metric.score(AuditSample(id="x", question="q"), BotReply(text=same)).value is None


def test_ragas_offline_metrics_and_llm_metric_without_judge() -> None:
    context = "Refunds are issued within 30 days to the card on file."
    sample = AuditSample(id="r", question="refund?", reference_answer=context, reference_contexts=(context,))
    rouge = build_metric(MetricSpec("ragas_rouge", threshold=0.9), embedder=lambda: None)
    precision = build_metric(MetricSpec("ragas_context_precision", threshold=0.5), embedder=lambda: None)
    good = BotReply(text=context, contexts=[context])
    bad = BotReply(text="Shipping is free on orders over fifty.", contexts=["Shipping is free on orders."])
    assert rouge.score(sample, good).value == pytest.approx(1.0)
    assert rouge.score(sample, bad).value < 0.3
    assert precision.score(sample, good).value == pytest.approx(1.0)
    assert precision.score(sample, bad).value == pytest.approx(0.0)
    assert rouge.score(AuditSample(id="n", question="q"), good).value is None  # no reference
    faithfulness = build_metric(MetricSpec("ragas_faithfulness"), embedder=lambda: None)
    skipped = faithfulness.score(sample, good)
    assert skipped.value is None and "no judge endpoint" in skipped.reason


def test_shipped_suites_parse_and_rebuild_identically(tmp_path: Path) -> None:
    from csml.audit.questions import write_questions

    for name in SUITES:
        suite = load_suite(name, ROOT / "audits")
        for spec in suite.metrics:
            assert spec.name in METRICS, spec.name
    for name, bundled in BUNDLED.items():
        write_questions(bundled.build(ROOT / "data"), tmp_path / f"{name}.jsonl")
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (
            ROOT / "audits" / name / bundled.file
        ).read_bytes()
        for companion in bundled.companions(tmp_path) if bundled.companions else []:
            assert (tmp_path / companion).read_bytes() == (ROOT / "audits" / name / companion).read_bytes()
    rows = [
        json.loads(line) for line in (ROOT / "audits/nlu_clinc150/questions.jsonl").read_text().splitlines()
    ]
    assert sum(r["expected_intent"] == "oos" for r in rows) == 100 and all(r["source"] for r in rows)
    assert {r["channel"] for r in rows} == {"chat"} and all(r["stage"] for r in rows)


def test_bad_question_files_and_missing_external_data_are_clear_errors(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "suite.yaml").write_text("name: broken\nquestions: q.jsonl\nmetrics: {error_rate: {}}\n")
    (folder / "q.jsonl").write_text(
        '{"id": "a", "question": "hi"}\n{"id": "b", "question": "hi", "stage": "shopping"}\n'
    )
    with pytest.raises(
        AuditConfigError, match=r"q.jsonl, line 2: field 'stage': expected one of .* found 'shopping'"
    ):
        load_suite("broken", tmp_path).samples()
    (folder / "q.jsonl").write_text('{"id": "a", "question": "hi", "should_escalate": "yes"}\n')
    with pytest.raises(
        AuditConfigError, match=r"line 1: field 'should_escalate': expected bool, found 'yes'"
    ):
        load_suite("broken", tmp_path).samples()
    (folder / "q.jsonl").write_text('{"id": "a", "question": "hi", "metadata": "ticket 7"}\n')
    with pytest.raises(AuditConfigError, match=r"line 1: field 'metadata': expected dict, found 'ticket 7'"):
        load_suite("broken", tmp_path).samples()
    (folder / "q.jsonl").write_text('{"id": "a", "question": "hi", "metadata": {"ticket": 7}}\n')
    (sample,) = load_suite("broken", tmp_path).samples()
    assert sample.metadata == {"ticket": 7} and sample.to_dict()["metadata"] == {"ticket": 7}
    with pytest.raises(AuditConfigError, match=r"airline_tweets/Tweets.csv .* CSML_EXTERNAL_DATA"):
        run_builder("airline_complaints", {}, {"external_data_dir": tmp_path})
    with pytest.raises(AuditConfigError, match="unknown params"):
        run_builder("truthfulqa", {"limt": 3}, {"external_data_dir": tmp_path})


def test_scorecard_breaks_down_by_stage_and_channel() -> None:
    suite = load_suite("nlu_clinc150", ROOT / "audits")
    samples = [
        AuditSample(id="1", question="q", expected_intent="a", stage="support", channel="chat"),
        AuditSample(id="2", question="q", expected_intent="a", stage="decision", channel="chat"),
    ]
    rows = {
        "1": {"reply": BotReply(text="x", intent="a").to_dict()},
        "2": {"reply": BotReply(text="x", intent="b").to_dict()},
    }
    metrics = [IntentAccuracy(threshold=0.9), IntentMacroF1()]
    summary = aggregate(suite, metrics, score_samples(metrics, samples, rows))
    assert summary["by_stage"]["support"]["intent_accuracy"] == 1.0
    assert summary["by_stage"]["decision"] == {"samples": 1, "intent_accuracy": 0.0, "intent_macro_f1": 0.0}
    assert (
        summary["by_channel"]["chat"]["samples"] == 2
        and summary["metrics"]["intent_accuracy"]["value"] == 0.5
    )


# --- the suites against the real reference bot over HTTP -------------------------------------------------


@pytest.fixture(scope="module")
def bot(start_bot_server: Callable[..., tuple[str, Path]]) -> str:
    return start_bot_server()[0]


def run_suite(url: str, out: Path, suite: str, *overrides: str) -> tuple[dict, dict]:
    from csml.audit.run import audit

    cfg = compose(
        "audit",
        [
            f"suite={suite}",
            f"paths.run_dir={out}/runs",
            f"paths.output_dir={out}",
            f"target.url={url}",
            "progress=false",
            "cache_dir=null",
            "~tracking",
            *overrides,
        ],
    )
    return audit(cfg)


def test_nlu_suite_runs_against_the_reference_bot(bot: str, tmp_path: Path) -> None:
    scorecard, paths = run_suite(bot, tmp_path, "nlu_clinc150", "limit=16")
    metrics = scorecard["metrics"]
    # The default bot has no intent model: it reports knowledge-base intents (ABCD subflows) or declines,
    # so CLINC150 accuracy is near 0 and every declined out-of-scope query counts as recognised.
    assert scorecard["passed"] is False and metrics["intent_accuracy"]["passed"] is False
    scored = metrics["intent_accuracy"]["n"] + metrics["oos_recall"]["n"]
    assert scored + scorecard["counts"]["errors"] == 16, scorecard["counts"]
    assert (
        metrics["oos_recall"]["n"] >= 3 and scorecard["by_stage"] and set(scorecard["by_channel"]) == {"chat"}
    )
    report = paths["report"].read_text()
    assert "By stage" in report and "By channel" in report and "Samples" in report
    assert (
        "## By category" in paths["summary"].read_text() and "## Worst cases" in paths["summary"].read_text()
    )


@needs_external
def test_escalation_and_hallucination_suites_run_against_the_reference_bot(bot: str, tmp_path: Path) -> None:
    scorecard, paths = run_suite(bot, tmp_path / "esc", "escalation", "limit=16")
    metrics = scorecard["metrics"]
    assert metrics["escalation_recall"]["n"] >= 8 and metrics["false_escalation_rate"]["n"] >= 4
    rows = [json.loads(line) for line in paths["samples"].read_text().splitlines()]
    assert any(r["category"] == "angry" and "airline_tweets" in r["source"] for r in rows)
    scorecard, _ = run_suite(bot, tmp_path / "hal", "hallucination_abcd", "limit=24")
    metrics = scorecard["metrics"]
    assert metrics["abstention"]["n"] >= 4 and metrics["ragas_faithfulness"]["n"] == 0
    assert metrics["paraphrase_consistency"]["n"] >= 2 and metrics["error_rate"]["value"] == 0.0


def test_assert_audit_names_failed_gates(bot: str, tmp_path: Path) -> None:
    from csml.audit.run import assert_audit

    common = [
        f"target.url={bot}",
        f"paths.output_dir={tmp_path}/a",
        "~tracking",
        "progress=false",
        "cache_dir=null",
    ]
    embedding = "+metrics.groundedness.params.method=embedding"  # no trained judge here
    assert assert_audit("rag_abcd", *common, "limit=6", embedding)["passed"] is True
    with pytest.raises(AssertionError, match=r"audit nlu_banking77 failed: intent_accuracy 0 .*>= 0.9"):
        assert_audit("nlu_banking77", *common[:1], f"paths.output_dir={tmp_path}/b", *common[2:], "limit=6")
