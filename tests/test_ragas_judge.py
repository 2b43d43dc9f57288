"""ragas' LLM metrics against a fake OpenAI-compatible judge on 127.0.0.1 (the fake stands at the HTTP
boundary: it answers ragas' prompts with fixed verdicts, so the metrics' plumbing and direction are tested,
not any judge's quality)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import FastAPI, Request

from csml.audit.metrics.ragas_metrics import (
    RagasAnswerCorrectness,
    RagasFaithfulness,
    RagasResponseRelevancy,
)
from csml.schemas import AuditSample, BotReply

SECRET = "judge-secret-123"


def fake_judge_app(seen_auth: list[str]):
    """Answers every ragas prompt as a judge that finds everything supported (``/good``) or nothing
    (``/bad``)."""
    app = FastAPI()

    @app.post("/{mode}/v1/chat/completions")
    async def chat(mode: str, request: Request) -> dict:
        seen_auth.append(request.headers.get("authorization", ""))
        body = await request.json()
        prompt = "\n".join(str(m.get("content")) for m in body["messages"])
        good = mode == "good"
        if "noncommittal" in prompt:
            answer = {"question": "How long do refunds take?", "noncommittal": 0 if good else 1}
        elif '"TP"' in prompt:
            item = {"statement": "Refunds take five days.", "reason": "fake"}
            answer = {"TP": [item], "FP": [], "FN": []} if good else {"TP": [], "FP": [item], "FN": [item]}
        elif "verdict" in prompt:
            found = re.findall(r'"statements":\s*(\[[^\]]*\])', prompt)
            statements = [s if isinstance(s, str) else s.get("statement", "") for s in json.loads(found[-1])]
            answer = {
                "statements": [{"statement": s, "reason": "fake", "verdict": int(good)} for s in statements]
            }
        else:
            answer = {"statements": ["Refunds take five days."]}
        message = {"role": "assistant", "content": json.dumps(answer)}
        return {
            "id": "fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    return app


class ConstantEmbedder:
    def encode(self, texts):
        return np.full((len(texts), 4), 0.5, dtype=np.float32)


@pytest.fixture(scope="module")
def judge_url() -> Iterator[tuple[str, list[str]]]:
    from csml.bot.server import BackgroundServer

    seen: list[str] = []
    with BackgroundServer(fake_judge_app(seen)) as server:
        yield server.url, seen


@pytest.mark.parametrize("metric_class", [RagasFaithfulness, RagasResponseRelevancy, RagasAnswerCorrectness])
def test_llm_metrics_follow_the_judge_and_read_the_key_from_the_environment(
    metric_class, judge_url, monkeypatch
) -> None:
    url, seen = judge_url
    monkeypatch.setenv("CSML_TEST_JUDGE_KEY", SECRET)
    sample = AuditSample(
        id="s",
        question="How long do refunds take?",
        reference_answer="Refunds take five days.",
        reference_contexts=["Refunds take five days."],
    )
    reply = BotReply(text="Refunds take five days.", contexts=["Refunds take five days."])
    values = {}
    for mode in ("good", "bad"):
        judge = {"base_url": f"{url}/{mode}/v1", "model": "fake", "api_key_env": "CSML_TEST_JUDGE_KEY"}
        extra = {"embedder": ConstantEmbedder()} if metric_class.needs_embedder else {}
        result = metric_class(judge=judge, **extra).score(sample, reply)
        assert result.value is not None, result.reason
        values[mode] = result.value
    assert values["good"] > 0.9 and values["bad"] < values["good"]
    assert seen and seen[-1] == f"Bearer {SECRET}"
