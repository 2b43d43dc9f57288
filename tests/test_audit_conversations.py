"""Conversation audits: the simulated customer and its personas, the conversation metrics, SGD goals, and
whole conversation audits over real HTTP on 127.0.0.1 -- the reference bot's conversation API (resumed
after an interruption, conversation faults caught) and a minimal OpenAI-compatible bot that keeps no
session (the whole history in every request)."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import external_data_dir
from csml.audit.conversations.goals import Goal, covers, goal_of, goal_sample, sgd_goals
from csml.audit.conversations.runner import conversation_samples
from csml.audit.conversations.simulator import CustomerSettings, Phrases, TemplateCustomer
from csml.audit.errors import AuditConfigError
from csml.audit.metrics.conversation import BotLoops, EscalationInTime, SelfContradiction, UnwantedHandover
from csml.config import compose, project_root
from csml.schemas import BotReply

REFERENCE = "Refunds go back to the original card within 7 business days of the return arriving."
KB_GOAL = Goal(
    "kb:refund", "kb", ("How do refunds work?", "When will I get my money?"), True, reference=REFERENCE
)
SGD_GOAL = Goal(
    "sgd:1", "sgd:Restaurants", ("Find me a table in Oakland.", "For 2 people at 7 pm."), True,
    values={"city": "Oakland", "party_size": "2"},
)  # fmt: skip
PHRASES = Phrases(
    ("Can I talk to a human?",), ("This is useless, I want to complain!",), {"city": ["Berkeley"]}
)
SETTINGS = CustomerSettings(
    max_turns=4, patience=2, abstain_patterns=("don't know",), escalate_patterns=("human agent",)
)
DECLINE = "Sorry, I don't know."
HANDOVER = "Connecting you with a human agent."


def talk(goal: Goal, persona: str, answer: Callable[[str], str], other: Goal | None = None, seed: int = 0):
    """A conversation with a scripted in-process test double of a bot (``answer`` maps the last customer
    message to a reply)."""
    seen: list[int] = []

    async def send(messages: list[dict[str, str]]) -> BotReply:
        seen.append(len(messages))
        return BotReply(text=answer(messages[-1]["content"]), latency_ms=5.0)

    customer = TemplateCustomer(goal, persona, PHRASES, SETTINGS, random.Random(seed), other)
    return asyncio.run(customer.talk(send)), seen


def test_calm_customer_reaches_a_kb_goal_and_sends_the_whole_history() -> None:
    record, seen = talk(KB_GOAL, "calm", lambda m: DECLINE if m.startswith("How") else REFERENCE)
    assert (record.ended, record.goal_reached, len(record.turns)) == ("goal_reached", True, 2)
    assert seen == [1, 3]  # stateless: every turn carries the conversation so far
    assert covers(REFERENCE, REFERENCE) and not covers(DECLINE, REFERENCE)


def test_impatient_customer_asks_for_a_human_after_unhelpful_replies() -> None:
    record, _ = talk(KB_GOAL, "impatient", lambda m: HANDOVER if "human" in m else DECLINE)
    assert [t.move for t in record.turns] == ["script", "script", "human_request"]
    assert (record.asked_human_at, record.handover_at, record.goal_reached) == (2, 2, True)
    assert EscalationInTime().score_conversation(record.to_dict()).value == 1.0


def test_angry_customer_opens_angry_and_a_bot_that_keeps_them_fails_escalation() -> None:
    record, _ = talk(KB_GOAL, "angry", lambda m: DECLINE)
    assert record.turns[0].move == "angry" and record.angry_at == 0
    assert record.ended == "turn_limit" and not record.goal_reached  # 4 turns: angry, 2 scripted, restated
    assert EscalationInTime().score_conversation(record.to_dict()).value == 0.0


def test_switcher_and_corrector_change_the_goal_after_the_first_reply() -> None:
    record, _ = talk(KB_GOAL, "switcher", lambda m: REFERENCE, other=SGD_GOAL)
    assert record.turns[1].move == "switch" and record.goal.id == "sgd:1"
    corrected, _ = talk(
        SGD_GOAL, "corrector", lambda m: "Booked in Berkeley for 2." if "meant" in m else "Sure."
    )
    assert (
        corrected.turns[1].customer == "Sorry, I meant Berkeley."
        and corrected.goal.values["city"] == "Berkeley"
    )
    assert corrected.goal_reached


def test_turn_limit_and_bot_errors_end_a_conversation() -> None:
    endless = Goal("kb:x", "kb", tuple(f"question {i}?" for i in range(9)), True, reference=REFERENCE)
    record, _ = talk(endless, "calm", lambda m: "Something else entirely.")
    assert (record.ended, len(record.turns)) == ("turn_limit", SETTINGS.max_turns)

    async def failing(_: list[dict[str, str]]) -> BotReply:
        return BotReply(error="timeout: no answer")

    customer = TemplateCustomer(KB_GOAL, "calm", PHRASES, SETTINGS, random.Random(0))
    assert asyncio.run(customer.talk(failing)).ended == "bot_error"


def conversation(*bot: str, customers: tuple[str, ...] = (), **extra: object) -> dict:
    asked = customers or tuple(f"message {i}" for i in range(len(bot)))
    turns = [
        {"customer": c, "bot": b, "move": "script", "abstained": None, "escalated": None, "latency_ms": 1.0}
        for c, b in zip(asked, bot, strict=True)
    ]
    return {"turns": turns, "persona": "calm", "goal_in_scope": True, "handover_at": None, **extra}


def test_loops_count_repeated_answers_not_repeated_declines() -> None:
    loops = BotLoops(abstain_patterns=("don't know",))
    answer = "Refunds take 7 business days to reach your card."
    assert loops.score_conversation(conversation(answer, answer)).value == 1.0
    assert loops.score_conversation(conversation(DECLINE, DECLINE)).value == 0.0
    stuck = "I'm here to help you with your order. " * 3
    assert loops.score_conversation(conversation(stuck)).value == 1.0
    assert loops.score_conversation(conversation(answer, "Shipping is free over $50.")).value == 0.0


@pytest.mark.parametrize(
    ("later", "contradicts"),
    [
        ("Refunds take 9 business days to reach your card.", True),
        ("Refunds do not take 7 business days to reach your card.", True),
        ("Refunds never take 7 business days to reach your card.", True),
        ("Refunds take 7 business days to reach your card.", False),  # a repetition
        ("Refunds take 7 business days to reach your account.", False),  # a word changed, not opposed
        ("Exchanges are free within 30 days.", False),
    ],
)
def test_self_contradiction_needs_one_opposing_change(later: str, contradicts: bool) -> None:
    record = conversation("Refunds take 7 business days to reach your card.", later)
    assert SelfContradiction().score_conversation(record).value == float(contradicts)


def test_unwanted_handover_only_for_calm_in_scope_customers() -> None:
    metric = UnwantedHandover()
    assert metric.score_conversation(conversation(HANDOVER, handover_at=0)).value == 1.0
    assert metric.score_conversation(conversation(HANDOVER, handover_at=0, persona="angry")).value is None


def test_conversation_samples_expand_goals_by_persona_deterministically() -> None:
    goals = [goal_sample(KB_GOAL), goal_sample(SGD_GOAL)]
    spec = {"personas": ["calm", "switcher", "angry"], "personas_per_goal": 2, "seed": 3}
    samples = conversation_samples(goals, spec)
    assert [s.id for s in samples] == [s.id for s in conversation_samples(goals, spec)]
    assert len(samples) == 4 and all(s.metadata["persona"] in spec["personas"] for s in samples)
    assert goal_of(samples[0]).turns == KB_GOAL.turns
    with pytest.raises(AuditConfigError, match="unknown"):
        conversation_samples(goals, {"personas": ["furious"]})
    with pytest.raises(AuditConfigError, match="unknown keys"):
        conversation_samples(goals, {"persona": ["calm"]})


@pytest.mark.skipif(
    not (external_data_dir() / "sgd_schema_guided").is_dir(), reason="no SGD in external data"
)
def test_sgd_goals_are_real_dialogues_with_their_slot_values() -> None:
    samples = sgd_goals(external_data_dir(), "test", limit=5, seed=1, in_scope_services=["Restaurants"])
    assert samples == sgd_goals(
        external_data_dir(), "test", limit=5, seed=1, in_scope_services=["Restaurants"]
    )
    for sample in samples:
        goal = goal_of(sample)
        assert goal.kind.startswith("sgd:") and goal.turns and goal.values and "CC BY-SA 4.0" in goal.source
        assert goal.in_scope == (goal.kind == "sgd:Restaurants")
    with pytest.raises(AuditConfigError, match="no SGD dialogues"):
        sgd_goals("/nonexistent", "test")


# --- whole audits over HTTP -------------------------------------------------------------------------


@pytest.fixture
def kb_suite(tmp_path: Path) -> Path:
    """The shipped conversation suite with its bundled knowledge-base goals only (no external data)."""
    folder = tmp_path / "conv_suite"
    folder.mkdir()
    shutil.copy(project_root() / "audits/conversations/kb_goals.jsonl", folder)
    spec = (project_root() / "audits/conversations/suite.yaml").read_text()
    spec = spec.replace("  - build: sgd_goals\n    params: {split: test, limit: 100, seed: 0}\n", "")
    (folder / "suite.yaml").write_text(spec)
    return folder


def conversation_audit(
    suite: Path,
    url: str,
    out: Path,
    target: str = "reference_conversation",
    limit: int = 8,
    cache: str = "null",
):
    from csml.audit.run import audit

    cfg = compose(
        "audit",
        [f"suite={suite}", f"target={target}", f"target.url={url}", f"paths.run_dir={out}/runs",
         f"paths.output_dir={out}", f"limit={limit}", "progress=false", f"cache_dir={cache}", "~tracking",
         "+metrics.turn_groundedness.params={method:embedding}"],
    )  # fmt: skip
    if target == "openai_chat":
        cfg.target.rate_limit_per_s = None
    return audit(cfg)


def test_conversation_audit_of_the_reference_bot_resumes_and_catches_its_faults(
    start_bot_server, kb_suite: Path, tmp_path: Path
) -> None:
    url, log = start_bot_server()
    scorecard, paths = conversation_audit(kb_suite, url, tmp_path / "clean")
    assert scorecard["suite"]["goals"] == 8 and scorecard["suite"]["questions"] == 16
    assert "- Conversations: 16 (8 goals" in paths["summary"].read_text()
    assert scorecard["metrics"]["goal_completion"]["value"] >= 0.9 and scorecard["by_persona"]
    assert (
        scorecard["metrics"]["turn_groundedness"]["value"] == 1.0
    )  # extractive answers quote their contexts
    rows = [
        json.loads(line) for line in (tmp_path / "clean" / "conversations.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 16 and all(r["reply"]["raw"]["conversation"]["turns"] for r in rows)
    asked = len(log.read_text().splitlines())
    conversation_audit(kb_suite, url, tmp_path / "clean")  # resumed: every conversation is already held
    assert len(log.read_text().splitlines()) == asked

    faulty, _ = start_bot_server("bot.faults.loop_rate=1.0", "bot.faults.report_in_response=false")
    looped, _ = conversation_audit(kb_suite, faulty, tmp_path / "looped")
    assert looped["metrics"]["bot_loops"]["value"] > 0.0


def test_conversations_run_against_a_bot_that_keeps_no_session(kb_suite: Path, tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from csml.bot.server import BackgroundServer

    received: list[int] = []
    references = {json.loads(line)["question"]: json.loads(line)["reference_answer"]
                  for line in (kb_suite / "kb_goals.jsonl").read_text().splitlines()}  # fmt: skip

    async def chat(request: Request) -> JSONResponse:
        """A minimal stateless OpenAI-compatible bot: answers the conversation's first message only on its
        second turn, so a goal is reached only if the history arrives with every request."""
        messages = (await request.json())["messages"]
        received.append(len(messages))
        users = [m["content"] for m in messages if m["role"] == "user"]
        text = references.get(users[0], DECLINE) if len(users) >= 2 else "Could you tell me more?"
        return JSONResponse(
            {"id": f"c{len(received)}", "choices": [{"message": {"role": "assistant", "content": text}}]}
        )

    with BackgroundServer(
        Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    ) as server:
        cache = str(tmp_path / "cache")
        scorecard, _ = conversation_audit(kb_suite, server.url, tmp_path / "a", "openai_chat", 4, cache)
        asked = len(received)
        again, _ = conversation_audit(kb_suite, server.url, tmp_path / "b", "openai_chat", 4, cache)
    assert len(received) == asked  # every turn of the second audit came from the reply cache
    assert again["metrics"]["goal_completion"]["value"] == scorecard["metrics"]["goal_completion"]["value"]
    assert max(received) >= 3 and set(received) <= {1, 3, 5, 7, 9, 11}
    calm = scorecard["by_persona"].get("calm")
    assert scorecard["metrics"]["goal_completion"]["value"] > 0.0 and (
        calm is None or calm["goal_completion"] == 1.0
    )


def test_a_model_behind_an_endpoint_writes_the_customers_later_messages(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from csml.audit.conversations.writers import build_writer
    from csml.bot.server import BackgroundServer

    prompts: list[str] = []

    async def fake_writer(request: Request) -> JSONResponse:
        """A fake OpenAI-compatible model (a test double at the HTTP boundary) that writes one message."""
        body = await request.json()
        prompts.append(body["messages"][-1]["content"])
        assert body["temperature"] == 0.0 and body["model"] == "writer-1"
        return JSONResponse(
            {
                "choices": [
                    {"message": {"role": "assistant", "content": '"Customer: For 2 people in Oakland."'}}
                ]
            }
        )

    with BackgroundServer(
        Starlette(routes=[Route("/v1/chat/completions", fake_writer, methods=["POST"])])
    ) as server:
        writer = build_writer({"base_url": server.url, "model": "writer-1"})
        customer = TemplateCustomer(SGD_GOAL, "calm", PHRASES, SETTINGS, random.Random(0), writer=writer)

        async def bot(messages: list[dict[str, str]]) -> BotReply:
            return BotReply(
                text="Booked a table in Oakland for 2." if len(messages) > 2 else "How many people?"
            )

        record = asyncio.run(customer.talk(bot))
    assert [t.move for t in record.turns] == ["script", "written"]
    assert record.turns[1].customer == "For 2 people in Oakland." and record.goal_reached
    assert "city: Oakland" in prompts[0] and "Agent: How many people?" in prompts[0]

    dead = build_writer({"base_url": "http://127.0.0.1:9", "model": "writer-1", "timeout_s": 2})
    fallback = TemplateCustomer(SGD_GOAL, "calm", PHRASES, SETTINGS, random.Random(0), writer=dead)
    record = asyncio.run(fallback.talk(lambda m: asyncio.sleep(0, BotReply(text="Sure."))))
    assert record.turns[1].move == "script" and record.turns[1].customer == SGD_GOAL.turns[1]
    with pytest.raises(AuditConfigError, match="base_url and model"):
        build_writer({"model": "x"})
