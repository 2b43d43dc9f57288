"""End-to-end training on a small real slice of Banking77, tracked in a temporary sqlite MLflow store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from csml.eval_model import eval_model
from csml.scoring import Classifier
from csml.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, smoke_overrides):
    """One smoke training run shared by the tests of this module."""
    from csml.config import compose

    tmp = tmp_path_factory.mktemp("train")
    cfg = compose(
        "train",
        [
            f"paths.run_dir={tmp / 'runs'}",
            f"paths.output_dir={tmp / 'out'}",
            "experiment=intent_banking77",
            "tracking.registered_model_name=csml-test-intent",
            *smoke_overrides,
        ],
    )
    metrics, objects = train(cfg)
    return cfg, metrics, objects


def test_training_logs_metrics_params_and_artifacts(trained) -> None:
    cfg, metrics, objects = trained
    for key in ("val/accuracy", "val/macro_f1", "test/accuracy", "test/ece", "test/macro_recall"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert any(key.startswith("test/stage/") for key in metrics)
    assert any(key.startswith("test/channel/chat/") for key in metrics)

    client = MlflowClient(cfg.tracking.uri)
    run = client.get_run(objects["run_id"])
    assert run.data.params["data.identity.name"] == "banking77"
    assert len(run.data.params["data.identity.sha256"]) == 64
    assert run.data.params["model.optimizer.lr"] == "0.0001"
    assert run.data.metrics["test/accuracy"] == pytest.approx(metrics["test/accuracy"])
    assert "train/loss" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/test_predictions.jsonl", "evaluation/test_confusion_matrix.png"} <= artifacts

    predictions = (
        (Path(cfg.paths.output_dir) / "evaluation" / "test_predictions.jsonl").read_text().splitlines()
    )
    first = json.loads(predictions[0])
    assert {"id", "text", "stage", "channel", "label", "prediction", "confidence", "top_k"} <= first.keys()
    assert len(predictions) == int(run.data.params["data.identity.rows.test"])


def test_model_is_registered_with_signature(trained) -> None:
    cfg, _, objects = trained
    client = MlflowClient(cfg.tracking.uri)
    version = client.get_model_version("csml-test-intent", objects["registered_version"])
    assert version.run_id == objects["run_id"]
    info = mlflow.models.get_model_info(f"models:/csml-test-intent/{version.version}")
    assert [c["name"] for c in info.signature.inputs.to_dict()] == ["text"]
    assert {c["name"] for c in info.signature.outputs.to_dict()} == {
        "label",
        "confidence",
        "top_k_labels",
        "top_k_scores",
    }


def test_registry_alias_loads_in_fresh_process(trained, tmp_path) -> None:
    cfg, _, objects = trained
    client = MlflowClient(cfg.tracking.uri)
    client.set_registered_model_alias("csml-test-intent", "champion", objects["registered_version"])
    texts = ["I still have not received my new card", "What is the exchange rate for euros?"]
    local = mlflow.pyfunc.load_model(f"models:/csml-test-intent/{objects['registered_version']}").predict(
        pd.DataFrame({"text": texts})
    )
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({cfg.tracking.uri!r})\n"
        "model = mlflow.pyfunc.load_model('models:/csml-test-intent@champion')\n"
        f"out = model.predict(pd.DataFrame({{'text': {texts!r}}}), params={{'top_k': 3}})\n"
        "print(json.dumps(out.to_dict(orient='records')))\n"
    )
    # A fresh interpreter that cannot import csml from the source tree: the model carries its own code.
    env_python = sys.executable
    done = subprocess.run(
        [env_python, "-I", "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    assert [row["label"] for row in fresh] == local["label"].tolist()
    assert [row["confidence"] for row in fresh] == pytest.approx(local["confidence"].tolist(), abs=1e-6)
    assert all(len(row["top_k_labels"]) == 3 for row in fresh)


def test_eval_scores_registered_model_with_same_metrics(trained, make_cfg) -> None:
    cfg, metrics, objects = trained
    eval_cfg = make_cfg(
        f"model_uri=models:/csml-test-intent/{objects['registered_version']}",
        f"tracking.uri={cfg.tracking.uri}",
        "data=banking77",
        "data.source.limit=48",
        config_name="eval",
    )
    eval_metrics, _ = eval_model(eval_cfg)
    assert eval_metrics["test/accuracy"] == pytest.approx(metrics["test/accuracy"], abs=1e-6)
    assert eval_metrics["val/macro_f1"] == pytest.approx(metrics["val/macro_f1"], abs=1e-6)


def test_interrupted_run_resumes_from_last_checkpoint_into_same_mlflow_run(make_cfg, smoke_overrides) -> None:
    first_cfg = make_cfg("experiment=intent_banking77", "tracking.register=false", *smoke_overrides)
    _, first = train(first_cfg)
    assert (Path(first_cfg.paths.output_dir) / "checkpoints" / "last.ckpt").is_file()

    resumed_cfg = make_cfg(
        "experiment=intent_banking77",
        "tracking.register=false",
        *smoke_overrides,
        "trainer.max_epochs=2",
        "ckpt_path=last",
    )
    _, resumed = train(resumed_cfg)
    assert resumed["run_id"] == first["run_id"]
    assert resumed["trainer"].current_epoch == 2
    assert resumed["trainer"].global_step == 4


def test_ctrl_c_during_training_exits_1_and_leaves_the_run_id_to_resume_into(
    make_cfg, smoke_overrides, caplog
) -> None:
    """Lightning exits the process on Ctrl-C (status 1); the folder keeps the MLflow run id that
    ``hydra.run.dir=<folder> ckpt_path=last`` resumes into."""
    import signal

    from lightning.pytorch.callbacks import Callback

    class CtrlC(Callback):
        def on_train_batch_start(self, *args: object) -> None:
            raise KeyboardInterrupt

    cfg = make_cfg("tracking.register=false", *smoke_overrides)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as stopped:
            train(cfg, callbacks=[CtrlC()])
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C while it shuts down
    assert stopped.value.code == 1
    run_id = json.loads((Path(cfg.paths.output_dir) / "mlflow_run.json").read_text())["run_id"]
    run = MlflowClient(cfg.tracking.uri).get_run(run_id)
    assert run.info.status == "FAILED" and "csml.status" not in run.data.tags
    assert not (Path(cfg.paths.output_dir) / "model").exists()
    assert f"hydra.run.dir={cfg.paths.output_dir} ckpt_path=last" in caplog.text


def test_eval_scores_a_checkpoint(make_cfg, smoke_overrides, tmp_path) -> None:
    train_cfg = make_cfg("tracking.register=false", *smoke_overrides)
    metrics, objects = train(train_cfg)
    checkpoint = objects["trainer"].checkpoint_callback.best_model_path
    eval_cfg = make_cfg(f"ckpt_path={checkpoint}", "data.source.limit=48", config_name="eval")
    eval_metrics, _ = eval_model(eval_cfg)
    assert eval_metrics["test/accuracy"] == pytest.approx(metrics["test/accuracy"], abs=1e-6)


def test_lora_model_is_saved_merged_and_predicts_like_the_trained_module(make_cfg, smoke_overrides) -> None:
    from csml.tracking.pyfunc import TextClassifierModel

    cfg = make_cfg("model=minilm_lora", *smoke_overrides)
    _, objects = train(cfg)
    datamodule = objects["datamodule"]
    records = datamodule.splits["test"][:8]
    saved = TextClassifierModel().load(objects["model_dir"])
    assert not any("lora" in name for name, _ in saved.net.named_parameters())
    trained_probs = objects["model"].predict_proba(datamodule.loader_for(datamodule.encode(records)))
    texts = [r.text for r in records]
    assert saved.predict_proba(texts) == pytest.approx(trained_probs, abs=1e-5)


def test_clinc150_run_chooses_an_oos_threshold_and_reports_oos_metrics(make_cfg, smoke_overrides) -> None:
    cfg = make_cfg(
        "experiment=intent_clinc150_oos", "tracking.register=false", *smoke_overrides, "data.source.limit=300"
    )
    metrics, objects = train(cfg)
    assert metrics["test/oos_threshold"] < 0  # minus a Mahalanobis distance (the experiment's OOS score)
    for key in ("test/in_scope_accuracy", "test/oos_recall", "test/oos_precision", "val/oos_recall"):
        assert 0.0 <= metrics[key] <= 1.0, key
    card = json.loads((objects["model_dir"] / "csml_model.json").read_text())
    assert card["oos_label"] == "oos"
    assert card["oos_threshold"] == pytest.approx(metrics["test/oos_threshold"])
    assert card["oos_score"] == "mahalanobis" and (objects["model_dir"] / "oos_scorer.npz").is_file()

    # csml eval refitting the same score on the same training split gets the scorer training saved.
    datamodule = objects["datamodule"]
    saved = Classifier.from_dir(objects["model_dir"])
    refitted = saved.with_oos_scorer(
        "mahalanobis", None, datamodule.splits["train"], datamodule.label_field, "oos"
    )
    texts = [r.text for r in datamodule.splits["test"]]
    assert refitted.predict_scored(texts)[1] == pytest.approx(saved.predict_scored(texts)[1], rel=1e-4)


def test_cli_reports_bad_data_with_file_row_and_field(tmp_path) -> None:
    train_file = tmp_path / "train.csv"
    train_file.write_text("message,topic\nwhere is my parcel,delivery\n   ,refund\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "csml",
            "train",
            "data=user_files",
            f"data.source.train={train_file}",
            f"data.source.test={train_file}",
            "data.source.columns.text=message",
            "data.source.columns.intent=topic",
            f"paths.run_dir={tmp_path / 'runs'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    message = done.stdout + done.stderr
    assert str(train_file) in message
    assert "row 3" in message
    assert "'message'" in message


def test_fast_dev_run_trains_scores_and_registers(make_cfg) -> None:
    cfg = make_cfg("trainer.fast_dev_run=true", "data.source.limit=32", "trainer.accelerator=cpu")
    metrics, objects = train(cfg)
    assert objects["trainer"].global_step == 1
    assert metrics["test/count"] == len(objects["datamodule"].splits["test"])
    assert int(objects["registered_version"]) == 1


def test_positive_label_is_checked_before_any_training(make_cfg, smoke_overrides) -> None:
    cfg = make_cfg("experiment=intent_banking77", *smoke_overrides, "evaluation.positive_label=supported")
    with pytest.raises(ValueError, match="positive_label='supported' needs exactly two labels"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()
