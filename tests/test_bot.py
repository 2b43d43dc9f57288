"""The reference bot over real HTTP: a uvicorn server on 127.0.0.1 per configuration, httpx as client.

The knowledge base is the bundled ABCD policy manual with the packaged MiniLM; servers in this module
share one encoder and one embedding cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

PASSWORD_QUESTION = "I forgot my password, how do I get back into my account?"
DUE_AMOUNT_QUESTION = "My bill says I owe money, how much is due on my subscription?"
UNANSWERABLE = "What is the capital of France?"
ABSTAIN_THRESHOLD = 0.4  # conf/bot/abcd.yaml

StartBot = Callable[..., tuple[httpx.Client, Path]]


@pytest.fixture(scope="module")
def start_bot(start_bot_server: Callable[..., tuple[str, Path]]) -> Iterator[StartBot]:
    """Starts a bot server with config overrides; returns a client on it and its reply-log path."""
    with ExitStack() as stack:

        def start(*overrides: str) -> tuple[httpx.Client, Path]:
            url, reply_log = start_bot_server(*overrides)
            return stack.enter_context(httpx.Client(base_url=url, timeout=60)), reply_log

        yield start


@pytest.fixture(scope="module")
def bot(start_bot: StartBot) -> tuple[httpx.Client, Path]:
    return start_bot()


def ask(client: httpx.Client, text: str, **extra: object) -> httpx.Response:
    messages = [{"role": "system", "content": "You are a helpful agent."}, {"role": "user", "content": text}]
    return client.post("/v1/chat/completions", json={"model": "csml-bot", "messages": messages, **extra})


def logged(path: Path) -> dict[str, dict]:
    """Reply-log records by request id."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {record["request_id"]: record for record in records}


def test_chat_completion_answers_a_paraphrase_from_the_kb_with_contexts(bot) -> None:
    client, _ = bot
    response = ask(client, PASSWORD_QUESTION)
    assert response.status_code == 200
    body = response.json()
    ext = body["csml"]
    content = body["choices"][0]["message"]["content"]
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    assert response.headers["x-request-id"] == body["id"] == ext["request_id"]
    assert ext["sources"][0]["id"] == "abcd:recover_password"
    assert content.startswith("Recover Password") and content == ext["contexts"][0]
    assert len(ext["contexts"]) == 3
    assert ext["confidence"] >= ABSTAIN_THRESHOLD and not ext["abstained"] and not ext["escalated"]
    assert (ext["intent"], ext["intent_source"]) == ("recover_password", "kb")
    assert "make-password" in ext["suggested_actions"]
    assert ext["corrupted"] is False and ext["corruptions"] == []
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + len(content.split())


def test_unanswerable_question_abstains_and_offers_a_human(bot, bot_defaults) -> None:
    client, _ = bot
    body = ask(client, UNANSWERABLE).json()
    ext = body["csml"]
    assert body["choices"][0]["message"]["content"] == bot_defaults.messages.abstain
    assert ext["abstained"] and not ext["escalated"]
    assert ext["confidence"] < ABSTAIN_THRESHOLD
    assert "talk_to_agent" in ext["suggested_actions"]
    assert ext["intent"] is None


def test_asking_for_a_human_escalates(bot) -> None:
    client, _ = bot
    ext = ask(client, "Can I speak to a real person, please?").json()["csml"]
    assert ext["escalated"] and ext["escalation_reason"] == "customer_request"
    assert ext["contexts"] == []


def test_conversation_lifecycle_with_escalation(bot, bot_defaults) -> None:
    client, _ = bot
    created = client.post("/v1/conversations", json={"customer_id": "cust-7", "channel": "email"})
    assert created.status_code == 201
    conversation = created.json()
    assert (conversation["status"], conversation["channel"], conversation["turns"]) == ("open", "email", [])
    cid = conversation["id"]

    message = "I was charged a fee of $15 on order 88412AB that I don't recognize. Mail me at ann@example.com"
    reply = client.post(f"/v1/conversations/{cid}/messages", json={"text": message})
    assert reply.status_code == 200
    data = reply.json()
    assert data["conversation_id"] == cid and data["text"] == data["contexts"][0]
    assert data["intent"] == "status_mystery_fee" and not data["abstained"]
    assert {(e["type"], e["value"]) for e in data["entities"]} == {
        ("amount", "$15"),
        ("order_id", "88412AB"),
        ("email", "ann@example.com"),
    }
    assert "talk_to_agent" in data["suggested_actions"]

    escalated = client.post(f"/v1/conversations/{cid}/escalate", json={"reason": "customer is upset"})
    assert escalated.status_code == 200
    assert (escalated.json()["status"], escalated.json()["escalation_reason"]) == (
        "escalated",
        "customer is upset",
    )

    after = client.post(f"/v1/conversations/{cid}/messages", json={"text": "Hello? Anyone there?"}).json()
    assert after["text"] == bot_defaults.messages.handoff and after["escalated"]

    history = client.get(f"/v1/conversations/{cid}").json()
    assert [t["role"] for t in history["turns"]] == ["customer", "bot", "customer", "bot"]
    assert history["turns"][0]["text"] == message
    assert history["turns"][1]["reply"]["intent"] == "status_mystery_fee"
    assert history["status"] == "escalated"


def test_no_fabrication_at_rate_zero(bot) -> None:
    client, log = bot
    ids = []
    for question in (PASSWORD_QUESTION, DUE_AMOUNT_QUESTION, "The promo code doesn't work"):
        body = ask(client, question).json()
        assert body["csml"]["corrupted"] is False
        assert body["choices"][0]["message"]["content"] == body["csml"]["contexts"][0]
        ids.append(body["id"])
    records = logged(log)
    assert all(records[i]["corrupted"] is False and records[i]["fault"] is None for i in ids)


def test_fabrication_at_rate_one_changes_an_amount_and_is_recorded(start_bot) -> None:
    client, log = start_bot("bot.faults.fabricate_rate=1.0", "bot.faults.fabricate_kinds=[amount,number]")
    body = ask(client, DUE_AMOUNT_QUESTION).json()
    content, ext = body["choices"][0]["message"]["content"], body["csml"]
    grounded = ext["contexts"][0]
    assert ext["corrupted"] is True and content != grounded
    [edit] = ext["corruptions"]
    assert edit["kind"] in ("amount", "number") and any(ch.isdigit() for ch in edit["original"])
    assert grounded[edit["start"] : edit["end"]] == edit["original"] != edit["replacement"]
    assert content == grounded[: edit["start"]] + edit["replacement"] + grounded[edit["end"] :]
    record = logged(log)[body["id"]]
    assert record["corrupted"] is True and record["corruptions"] == [edit]
    assert (record["reply"], record["grounded_answer"]) == (content, grounded)


def test_answering_the_unanswerable_is_logged_but_not_disclosed(start_bot, bot_defaults) -> None:
    client, log = start_bot("bot.faults.answer_unanswerable_rate=1.0", "bot.faults.report_in_response=false")
    body = ask(client, UNANSWERABLE).json()
    ext = body["csml"]
    assert body["choices"][0]["message"]["content"] == ext["contexts"][0] != bot_defaults.messages.abstain
    assert not ext["abstained"] and ext["corrupted"] is None and ext["corruptions"] is None
    [corruption] = logged(log)[body["id"]]["corruptions"]
    assert corruption["kind"] == "answered_unanswerable" and corruption["score"] < ABSTAIN_THRESHOLD


def test_error_rate_one_gives_500_and_malformed_rate_one_gives_invalid_json(start_bot) -> None:
    client, log = start_bot("bot.faults.error_rate=1.0")
    failed = ask(client, PASSWORD_QUESTION)
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "server_error"
    assert logged(log)[failed.headers["x-request-id"]]["fault"] == "error"

    client, log = start_bot("bot.faults.malformed_rate=1.0")
    broken = ask(client, PASSWORD_QUESTION)
    assert broken.status_code == 200 and broken.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert logged(log)[broken.headers["x-request-id"]]["fault"] == "malformed"


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "says"),
    [
        (
            "post",
            "/v1/chat/completions",
            {"content": b'{"messages": [', "headers": JSON},
            400,
            "not valid JSON",
        ),
        ("post", "/v1/chat/completions", {"json": {"model": "x"}}, 422, "messages: Field required"),
        ("post", "/v1/chat/completions", {"json": {"messages": []}}, 422, "messages"),
        (
            "post",
            "/v1/chat/completions",
            {"json": {"messages": [{"role": "bot", "content": "hi"}]}},
            422,
            "role",
        ),
        (
            "post",
            "/v1/chat/completions",
            {"json": {"messages": [{"role": "assistant", "content": "How can I help?"}]}},
            400,
            "user message",
        ),
        (
            "post",
            "/v1/chat/completions",
            {"json": {"messages": [{"role": "user", "content": "hi"}], "stream": True}},
            400,
            "stream",
        ),
        (
            "post",
            "/v1/chat/completions",
            {"json": {"messages": [{"role": "user", "content": "a" * 2001}]}},
            400,
            "limit is 2000",
        ),
        (
            "post",
            "/v1/chat/completions",
            {"json": {"messages": [{"role": "user", "content": "a" * 70000}]}},
            413,
            "65536-byte limit",
        ),
        (
            "post",
            "/v1/chat/completions",
            {"content": iter([b"{" + b" " * 40000] * 2), "headers": JSON},
            413,
            "limit",
        ),
        ("post", "/v1/conversations", {"json": {"customer": "x"}}, 422, "Extra inputs"),
        ("post", "/v1/conversations/conv_missing/messages", {"json": {"text": "hi"}}, 404, "not found"),
        ("get", "/v1/nowhere", {}, 404, "Not Found"),
    ],
)
def test_bad_requests_get_4xx_with_a_json_message(bot, method, path, kwargs, status, says) -> None:
    client, _ = bot
    response = client.request(method.upper(), path, **kwargs)
    assert response.status_code == status
    assert says in response.json()["error"]["message"]


def test_bearer_token_required_when_its_env_var_is_set(start_bot, monkeypatch) -> None:
    monkeypatch.setenv("CSML_TEST_BOT_TOKEN", "s3cret-token")
    client, log = start_bot("bot.auth_token_env=CSML_TEST_BOT_TOKEN")
    missing = ask(client, PASSWORD_QUESTION)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["type"] == "authentication_error"
    assert client.post("/v1/conversations", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/healthz").status_code == 200  # open: for load balancers and probes
    client.headers["Authorization"] = "Bearer s3cret-token"
    assert ask(client, PASSWORD_QUESTION).status_code == 200
    assert "s3cret-token" not in log.read_text()
