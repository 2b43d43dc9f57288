"""The reference bot's parts without a server: fabrication, entities, knowledge bases, faults, configs."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

import pytest

from csml.bot.entities import extract_entities
from csml.bot.fabrication import FABRICATION_KINDS, change_number, fabricate
from csml.bot.faults import FaultInjector, malformed_body
from csml.bot.retrieval import kb_hash
from csml.bot.routing import HUMAN_REQUEST, Prediction, escalation_reason
from csml.bot.settings import BotSettings
from csml.config import config_dir, project_root
from csml.knowledge import AbcdGuidelines, FaqFile

BOTS = sorted(p.stem for p in (config_dir() / "bot").glob("*.yaml") if p.stem != "base")


@pytest.mark.parametrize(
    ("text", "kind", "original"),
    [
        ("A refund of $50 is issued.", "amount", "$50"),
        ("Enter your 16-digit card number.", "number", "16"),
        ("The sale starts on March 3, 2025.", "date", "March 3, 2025"),
        ("Ask for Howard Chen at the desk.", "name", "Howard Chen"),
        ("Gift cards are refundable.", "policy", "refundable"),
    ],
)
def test_each_fabrication_kind_changes_its_fact(text: str, kind: str, original: str) -> None:
    new, [edit] = fabricate(text, random.Random(0), kinds=[kind])
    assert (edit.kind, edit.original) == (kind, original)
    assert edit.replacement != original and new == text.replace(original, edit.replacement)


def test_fabrication_is_seeded_and_falls_back_to_a_fabricated_claim() -> None:
    text = "Click [Search FAQ], then pick [Select Answer] for the 4 options costing $5 on Monday."
    runs = [fabricate(text, random.Random(7)) for _ in range(2)]
    assert runs[0] == runs[1] and runs[0][0] != text
    new, [edit] = fabricate("Please wait.", random.Random(0), kinds=["amount"])
    assert edit.kind == "claim" and new.startswith("Please wait. ") and new.endswith(edit.replacement)
    with pytest.raises(ValueError, match="unknown fabrication kind"):
        fabricate(text, random.Random(0), kinds=["tone"])


def test_change_number_keeps_the_format() -> None:
    rng = random.Random(1)
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})+", change_number("12,500", rng)) for _ in range(10))
    assert all(len(change_number("2.50", rng).split(".")[1]) == 2 for _ in range(10))
    assert all(2021 <= int(change_number("2023", rng)) <= 2025 for _ in range(10))
    assert all(change_number("0", rng) != "0" for _ in range(10))


def test_names_and_policies_are_not_taken_from_sentence_starts_or_digits_inside_words() -> None:
    text = "Contact us. Username hchen1 can reset 2FA"
    _, [edit] = fabricate(text, random.Random(0), kinds=["name", "policy", "number"])
    assert edit.kind == "policy" and edit.original == "can"


def test_entities() -> None:
    text = "Order #A1234 cost Rs. 5,000 on 12 March 2024; call +1 415-555-0100 or mail a.b@shop.co"
    assert [(e.type, e.value) for e in extract_entities(text)] == [
        ("order_id", "A1234"),
        ("amount", "Rs. 5,000"),
        ("date", "12 March 2024"),
        ("phone", "+1 415-555-0100"),
        ("email", "a.b@shop.co"),
    ]
    assert extract_entities("What is my order status?") == []


def test_abcd_knowledge_base_is_bundled_with_actions_per_section() -> None:
    entries = AbcdGuidelines(str(project_root() / "data" / "abcd")).load()
    assert len(entries) == 55 and len({e.id for e in entries}) == 55
    refund = next(e for e in entries if e.id == "abcd:refund_initiate")
    assert refund.intent == "refund_initiate" and "offer-refund" in refund.actions
    assert "the default amount is $50" in refund.passage and refund.title.startswith("Initiate Refund")


def test_faq_file_loads_dedupes_and_reports_bad_columns(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "Question,Answer,Class\nHow do I pay?,By card.,cards\nHow do I pay?,By card.,cards\nFee?,$2.,fees\n"
    )
    entries = FaqFile(str(path), name="t", category_column="Class").load()
    assert [(e.id, e.title, e.answer, e.intent) for e in entries] == [
        ("t:1", "How do I pay?", "By card.", "cards"),
        ("t:3", "Fee?", "$2.", "fees"),
    ]
    assert kb_hash(entries, "enc") != kb_hash(entries[:1], "enc") != kb_hash(entries[:1], "other")
    with pytest.raises(ValueError, match="missing column"):
        FaqFile(str(path), answer_column="Reply").load()
    with pytest.raises(FileNotFoundError, match="external_data_dir"):
        FaqFile(str(tmp_path / "absent.csv")).load()


def test_fault_plans_follow_rates_and_seed(bot_defaults) -> None:
    none = bot_defaults.faults
    always = FaultInjector(
        replace(none, error_rate=1.0, fabricate_rate=1.0, latency_ms=5, latency_jitter_ms=10)
    )
    plans = [always.draw() for _ in range(20)]
    assert all(p.error and p.fabricate and not p.malformed and 5 <= p.latency_ms <= 15 for p in plans)
    half = [FaultInjector(replace(none, seed=3, fabricate_rate=0.5)) for _ in range(2)]
    draws = [[h.draw() for _ in range(200)] for h in half]
    assert draws[0] == draws[1] and 60 < sum(p.fabricate for p in draws[0]) < 140
    body = b'{"choices": [{"message": {"content": "hello"}}]}'
    assert (
        body.startswith(malformed_body(body, random.Random(0)))
        and malformed_body(body, random.Random(0)) != body
    )
    with pytest.raises(ValueError, match="error_rate"):
        replace(none, error_rate=1.5)


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("Can I talk to a human?", True),
        ("connect me with a live agent please", True),
        ("agent", True),
        ("How do I transfer money to another person?", False),
        ("Who is an insurance agent?", False),
    ],
)
def test_human_requests(text: str, wanted: bool) -> None:
    assert bool(HUMAN_REQUEST.search(text)) is wanted


def test_escalation_reasons(bot_defaults) -> None:
    rules = replace(bot_defaults.routing, negative_threshold=0.8)
    assert escalation_reason("hi", Prediction("oos", 0.9), None, rules) == "out_of_scope"
    assert escalation_reason("hi", None, Prediction("negative", 0.95), rules) == "negative_sentiment"
    assert escalation_reason("hi", Prediction("refund", 0.9), Prediction("negative", 0.6), rules) is None
    assert escalation_reason("where do I file a fucking complaint?", None, None, rules) == "abusive_language"
    assert escalation_reason("this is crap", None, None, replace(rules, abusive_language=False)) is None
    assert escalation_reason("Is the scrap metal recyclable?", None, None, rules) is None


@pytest.mark.parametrize("bot", BOTS)
def test_bot_configs_compose_into_settings(make_cfg, bot: str) -> None:
    cfg = make_cfg(f"bot={bot}", config_name="serve")
    settings = BotSettings.from_config(cfg)
    assert settings.name.startswith("csml-") and 0 < settings.retrieval.abstain_threshold < 1
    rates = (settings.faults.error_rate, settings.faults.fabricate_rate, settings.faults.latency_ms)
    assert rates == (0, 0, 0) and settings.routing.intent_model is None
    assert hasattr(settings.kb, "load") and settings.tracking_uri.startswith("sqlite:///")


def test_unknown_bot_config_keys_are_rejected(make_cfg) -> None:
    cfg = make_cfg("+bot.faults.typo_rate=0.1", config_name="serve")
    with pytest.raises(ValueError, match=r"bot\.faults\.typo_rate"):
        BotSettings.from_config(cfg)


def test_all_fabrication_kinds_are_configured_by_default(make_cfg) -> None:
    cfg = make_cfg(config_name="serve")
    assert tuple(cfg.bot.faults.fabricate_kinds) == FABRICATION_KINDS


def test_micro_batcher_batches_concurrent_items_and_runs_batches_on_several_workers() -> None:
    import asyncio
    import threading
    import time

    from csml.bot.retrieval import MicroBatcher

    calls: list[list[int]] = []
    active, overlap, lock = [0], [0], threading.Lock()

    def double(items: list[int]) -> list[int]:
        with lock:
            calls.append(items)
            active[0] += 1
            overlap[0] = max(overlap[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        if -1 in items:
            raise ValueError("bad item")
        return [2 * item for item in items]

    async def run(batcher: MicroBatcher, items: list[int]) -> list:
        return await asyncio.gather(*(batcher(item) for item in items), return_exceptions=True)

    assert asyncio.run(run(MicroBatcher(double, max_batch=4), list(range(10)))) == [2 * i for i in range(10)]
    assert [len(c) for c in calls] == [4, 4, 2] and overlap[0] == 1

    calls.clear()
    assert asyncio.run(run(MicroBatcher(double, max_batch=4, workers=2), list(range(10)))) == [
        2 * i for i in range(10)
    ]
    assert overlap[0] == 2 and sorted(i for c in calls for i in c) == list(range(10))

    results = asyncio.run(run(MicroBatcher(double, max_batch=2), [1, -1, 3]))
    assert [type(r) for r in results[:2]] == [ValueError, ValueError] and results[2] == 6  # a failed batch
    with pytest.raises(ValueError, match="workers must be >= 1"):
        MicroBatcher(double, workers=0)


def test_micro_batcher_serves_an_item_queued_as_its_last_batch_finishes() -> None:
    """A waiter resumed by the last batch asks again before the finished drain task's done callbacks run:
    the new item must start a new batch, not wait in the queue forever (a hang seen under HTTP load)."""
    import asyncio

    from csml.bot.retrieval import MicroBatcher

    async def ask_twice() -> list[int]:
        batcher = MicroBatcher(lambda items: [2 * item for item in items], workers=1)
        first = await batcher(1)
        # The second call must run in this task (wait_for's new task would let the callbacks run first),
        # so a watchdog cancels the task instead of a timeout wrapper.
        watchdog = asyncio.get_running_loop().call_later(5, asyncio.current_task().cancel)
        second = await batcher(2)
        watchdog.cancel()
        return [first, second]

    assert asyncio.run(ask_twice()) == [2, 4]


def test_encoder_plain_and_traced_match_sentence_transformers_and_keep_order() -> None:
    import numpy as np

    from csml.config import minilm_path
    from csml.models.encoder import Encoder

    texts = ["How do I reset my password?", "refund", "Where is my order? It was due last week.", "hi"]
    for encoder in (Encoder(minilm_path()), Encoder(minilm_path(), jit=True)):
        vectors = encoder.encode(texts, batch_size=3)  # mixed lengths: padded batches, and one alone
        reference = encoder.model.encode(texts, normalize_embeddings=True)
        assert vectors.shape == (4, encoder.dim) and vectors.dtype == np.float32
        np.testing.assert_allclose(vectors, reference, atol=1e-5)
        assert encoder.encode([]).shape == (0, encoder.dim)
