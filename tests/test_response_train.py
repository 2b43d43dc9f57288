"""Smoke training of the retrieval response model on a real Bitext slice, into a temporary MLflow store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from csml.config import project_root

BITEXT = Path(os.environ.get("CSML_EXTERNAL_DATA", project_root().parent / "shared" / "data")) / (
    "bitext_cs_responses_sample"
)

SMOKE = (
    "response_data.source.limit=16",
    "response_data.batch_size=8",
    "response_data.response_max_length=64",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
    "+trainer.enable_checkpointing=false",
    "~callbacks.model_checkpoint",
    "evaluation.splits=[test]",
    "tracking.registered_model_name=csml-response-test",
)


@pytest.mark.skipif(not BITEXT.is_dir(), reason=f"{BITEXT} is absent")
def test_train_retrieval_logs_metrics_and_registers_a_working_pyfunc(make_cfg, tmp_path: Path) -> None:
    import mlflow
    import pandas as pd

    from csml.response.train import train_retrieval

    cfg = make_cfg(*SMOKE, config_name="train_response")
    metrics, objects = train_retrieval(cfg)

    for prefix in ("test", "test/baseline"):
        for name in ("recall_at_1", "recall_at_5", "mrr", "response/bleu", "response/placeholder_recall"):
            assert 0.0 <= metrics[f"{prefix}/{name}"] <= (100.0 if "bleu" in name else 1.0)
        assert (
            metrics[f"{prefix}/recall_at_1"]
            <= metrics[f"{prefix}/recall_at_5"]
            <= metrics[f"{prefix}/recall_at_10"]
        )
    assert metrics["test/bank_size"] == 16.0

    client = mlflow.MlflowClient()
    run = client.get_run(objects["run_id"])
    assert run.data.metrics["test/baseline/recall_at_1"] == pytest.approx(
        metrics["test/baseline/recall_at_1"]
    )
    assert run.data.tags["csml.model_kind"] == "response_retrieval"
    artifacts = {a.path for a in client.list_artifacts(objects["run_id"], "evaluation")}
    assert "evaluation/test_retrievals.jsonl" in artifacts
    assert json.loads((Path(cfg.paths.output_dir) / "evaluation/metrics.json").read_text()) == metrics
    rows = [
        json.loads(line) for line in (Path(cfg.paths.output_dir) / "evaluation/test_retrievals.jsonl").open()
    ]
    assert len(rows) == 16 and {"model", "baseline"} <= set(rows[0])
    assert len(rows[0]["model"]["top_k"]) == 5

    model = mlflow.pyfunc.load_model("models:/csml-response-test/1")
    out = model.predict(pd.DataFrame({"text": ["where is my order {{Order Number}}?"]}), params={"top_k": 3})
    assert list(out.columns)[:3] == ["response", "score", "response_id"]
    bank = set(objects["index"].responses)
    assert out["response"][0] in bank and len(out["top_k_responses"][0]) == 3
    assert out["top_k_scores"][0] == sorted(out["top_k_scores"][0], reverse=True)
    assert out["score"][0] == pytest.approx(out["top_k_scores"][0][0])


@pytest.mark.parametrize("data", ["bitext_responses", "user_pairs"])
def test_response_configs_compose_and_instantiate(make_cfg, data: str, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    if data == "bitext_responses" and not BITEXT.is_dir():
        pytest.skip(f"{BITEXT} is absent")
    overrides = [f"response_data={data}", "experiment=response_retrieval_bitext"]
    if data == "user_pairs":
        pairs = tmp_path / "pairs.csv"
        pairs.write_text("text,response\n" + "".join(f"q{i},r{i}\n" for i in range(40)))
        overrides.append(f"response_data.source.files=[{pairs}]")
    cfg = make_cfg(*overrides, config_name="train_response")
    assert cfg.task_name == "response_retrieval_bitext"
    assert cfg.tracking.registered_model_name == "csml-response-retrieval-bitext"
    datamodule = instantiate(cfg.response_data, tokenizer=None)
    datamodule.setup()
    assert {"train", "validation", "test"} == set(datamodule.splits.splits)
    assert cfg.response_model._target_ == "csml.response.module.RetrievalModule"
