"""Registered csml models describe themselves: description and tags on the model and each version, written
to a real sqlite MLflow store when a tiny (random, untrained) classifier is registered."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

import csml
from csml.config import minilm_path, project_root
from csml.tracking.descriptions import Provenance, licence_of, version_description

NAME = "csml-test-described"
LABELS = ["supported", "unsupported"]


def tiny_classifier(folder: Path, card: dict) -> Path:
    """A random 1-layer, 16-dim BERT classifier saved as a csml model folder with ``card``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from csml.models.components.encoder_classifier import EncoderClassifier

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=30522
    )
    net = EncoderClassifier(BertModel(config), num_labels=len(card["labels"])).eval()
    return net.save(folder, AutoTokenizer.from_pretrained(minilm_path()), {"max_length": 16, **card})


@pytest.fixture
def registered(tmp_path: Path) -> MlflowClient:
    """Two versions of a two-label model with a decision threshold, each logged by a run that recorded its
    task, commit, metrics and training data (a bundled Banking77 file and a file of the user's)."""
    from csml.tracking.pyfunc import log_classifier
    from csml.tracking.runs import log_dataset_identity, setup_tracking, use_store

    card = {"labels": LABELS, "label_field": "grounded", "positive_label": "supported", "backbone": "tiny"}
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    tracking = {
        "uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "artifact_location": str(tmp_path / "artifacts"),
        "experiment_name": "csml-train",
    }
    user_file = tmp_path / "mine" / "train.csv"
    identity = {
        "name": "mixed",
        "sha256": "ab" * 32,
        "rows": {"train": 10, "validation": 2, "test": 4},
        "sources": [str(project_root() / "data" / "banking77" / "train.csv"), str(user_file)],
    }
    for threshold in (0.3, 0.4):
        model_dir = tiny_classifier(
            tmp_path / f"model_{threshold}", {**card, "decision_threshold": threshold}
        )
        tags = {
            "csml.task": "judge_groundedness",
            "csml.model_kind": "classifier",
            "csml.git_commit": "abc123",
        }
        with mlflow.start_run(experiment_id=setup_tracking(tracking), tags=tags):
            log_dataset_identity(identity)
            mlflow.log_metrics(
                {"test/accuracy": 0.75, "test/macro_f1": 0.5, "test/stage/support/accuracy": 0.1}
            )
            log_classifier(model_dir, ["the refund takes five days [SEP] refunds take five days"], NAME)
    yield MlflowClient(tracking["uri"])
    use_store(*previous)


def test_each_version_and_the_model_carry_a_description_and_tags(registered: MlflowClient) -> None:
    first, second = (registered.get_model_version(NAME, v) for v in ("1", "2"))
    model = registered.get_registered_model(NAME)

    assert first.description.startswith(f"**csml text classifier**, version 1 of `{NAME}`, logged by run")
    assert "task `judge_groundedness`" in first.description and "commit `abc123`" in first.description
    assert "- **Predicts** `grounded`: 2 labels: `supported`, `unsupported`" in first.description
    assert "`supported` when its probability reaches 0.3, else `unsupported`" in first.description
    assert "`supported` when its probability reaches 0.4" in second.description
    assert "`test/accuracy` 0.7500, `test/macro_f1` 0.5000" in first.description
    assert "stage/support" not in first.description  # headline metrics only
    assert "banking77: CC BY 4.0 (see LICENSE)" in first.description
    assert "mine: unknown (no SOURCE.txt beside the data)" in first.description
    assert f'mlflow.pyfunc.load_model("models:/{NAME}/1")' in first.description

    assert first.tags["csml.decision_threshold"] == "0.3" and second.tags["csml.decision_threshold"] == "0.4"
    assert first.tags["csml.positive_label"] == "supported"
    assert first.tags["csml.training_run_id"] == first.run_id
    assert {
        k: first.tags[k] for k in ("csml.task", "csml.label_field", "csml.git_commit", "csml.dataset")
    } == {
        "csml.task": "judge_groundedness",
        "csml.label_field": "grounded",
        "csml.git_commit": "abc123",
        "csml.dataset": "mixed",
    }
    assert first.tags["csml.csml_version"] == csml.__version__
    assert first.tags["csml.data_licences"].startswith("banking77: CC BY 4.0")

    assert "latest version: 2" in model.description
    assert "`supported` when its probability reaches the version's decision threshold" in model.description
    assert "- **Backbone**: `tiny`" in model.description
    assert f'mlflow.pyfunc.load_model("models:/{NAME}@champion")' in model.description
    assert model.tags["csml.task"] == "judge_groundedness"
    assert model.tags["csml.label_field"] == "grounded"
    assert "csml.decision_threshold" not in model.tags


def test_descriptions_count_the_labels_they_do_not_list_and_name_the_oos_rule() -> None:
    labels = [f"intent_{i:03d}" for i in range(150)] + ["oos"]
    card = {
        "labels": labels,
        "label_field": "intent",
        "oos_label": "oos",
        "oos_score": "knn",
        "oos_threshold": 0.81,
    }
    text = version_description(Provenance(card), NAME, "7")
    assert "151 labels: `intent_000`," in text and "`intent_019` and 131 more" in text
    assert "`intent_020`" not in text
    assert "when it is the most probable label or the `knn` in-scope score is below 0.81" in text
    assert "logged outside a run" in text
    assert Provenance(card).tags()["csml.num_labels"] == "151"


def test_licence_comes_from_source_notes_or_says_why_it_is_unknown(tmp_path: Path) -> None:
    assert licence_of(project_root() / "data" / "clinc150") == "CC BY 3.0 (see LICENSE)"
    (tmp_path / "SOURCE.txt").write_text("Name: mine\nRows: 3\n")
    assert licence_of(tmp_path) == "not stated in SOURCE.txt"
    assert licence_of(tmp_path / "absent") == "unknown (no SOURCE.txt beside the data)"
