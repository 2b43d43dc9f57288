"""Routing through the MLflow registry: the bot loads intent and sentiment models by alias from a real
sqlite store and escalates on out-of-scope intent and on negative sentiment.

The registered models are tiny random encoders whose heads are biased to one label (test fixtures, not
results): what is under test is the registry path and the routing, not the models.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from csml.bot.app import create_app
from csml.bot.server import BackgroundServer
from csml.config import compose, minilm_path
from csml.tracking.runs import setup_tracking


def register_constant_classifier(directory: Path, name: str, labels: list[str], winner: str) -> str:
    """Registers a classifier that always predicts ``winner``; returns its ``@champion`` URI."""
    from mlflow import MlflowClient
    from transformers import AutoTokenizer, BertConfig, BertModel

    from csml.models.components.encoder_classifier import EncoderClassifier
    from csml.tracking.pyfunc import log_classifier

    config = BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=30522
    )
    net = EncoderClassifier(BertModel(config), num_labels=len(labels))
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor([10.0 if label == winner else 0.0 for label in labels]))
    card = {"labels": labels, "max_length": 32, "oos_label": None, "oos_threshold": None}
    model_dir = net.save(directory / name, AutoTokenizer.from_pretrained(minilm_path()), card)
    info = log_classifier(model_dir, ["where is my refund"], name)
    MlflowClient().set_registered_model_alias(name, "champion", info.registered_model_version)
    return f"models:/{name}@champion"


@pytest.fixture(scope="module")
def routed_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    import mlflow

    out = tmp_path_factory.mktemp("routing")
    overrides = [f"paths.run_dir={out / 'runs'}", f"paths.output_dir={out}"]
    cfg = compose("serve", overrides)
    Path(out / "runs").mkdir()
    setup_tracking(cfg.tracking)  # tracking and registry URIs: earlier tests may have pointed them elsewhere
    with mlflow.start_run():
        intent = register_constant_classifier(out, "test-intent", ["oos", "refund_initiate"], "oos")
        sentiment = register_constant_classifier(out, "test-sentiment", ["negative", "positive"], "negative")
    cfg = compose(
        "serve",
        [*overrides, f"bot.routing.intent_model={intent}", f"bot.routing.sentiment_model={sentiment}"],
    )
    with BackgroundServer(create_app(cfg)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def test_registry_models_route_and_escalate(routed_bot: httpx.Client) -> None:
    health = routed_bot.get("/healthz").json()
    assert health["intent_model"] == "models:/test-intent@champion"
    ext = routed_bot.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "I want a refund"}]}
    ).json()["csml"]
    assert (ext["intent"], ext["intent_source"]) == ("oos", "model") and ext["intent_confidence"] > 0.99
    assert (ext["sentiment"], ext["escalated"], ext["escalation_reason"]) == (
        "negative",
        True,
        "out_of_scope",
    )
