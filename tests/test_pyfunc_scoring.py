"""The pyfunc labels texts through :mod:`csml.scoring`, the path ``csml eval`` and ``csml promote`` score with:
its card's decision threshold for two-label models, its saved OOS score; and clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from csml.data.splits import DatasetSplits
from csml.records import Channel, JourneyStage, Record
from csml.scoring import Classifier, ScoringError, score_splits
from csml.tracking.pyfunc import TextClassifierModel
from test_registry_descriptions import tiny_classifier

LABELS = ["supported", "unsupported"]
TEXTS = ["the refund takes five days", "we are open on sundays", "your card ships today", "hello there"]


def records(split: str, labels: list[str]) -> list[Record]:
    return [
        Record(f"{split}:{i}", TEXTS[i % len(TEXTS)], "t", JourneyStage.SUPPORT, Channel.CHAT, grounded=label)
        for i, label in enumerate(labels)
    ]


@pytest.mark.parametrize("threshold", [0.0, 1.0 + 1e-9])
def test_pyfunc_predicts_with_the_card_decision_threshold_not_the_argmax(
    tmp_path: Path, threshold: float
) -> None:
    card = {"labels": LABELS, "label_field": "grounded", "positive_label": "supported"}
    model_dir = tiny_classifier(tmp_path / "model", {**card, "decision_threshold": threshold})
    model = TextClassifierModel().load(model_dir)

    labels = model.predict(None, TEXTS)["label"].tolist()
    everything = "supported" if threshold == 0.0 else "unsupported"  # P(supported) >= 0 always, > 1 never
    assert labels == [everything] * len(TEXTS)
    classification = model.classifier.classify(TEXTS)
    assert classification.rule.decision_threshold == threshold
    np.testing.assert_allclose(classification.probs, model.predict_proba(TEXTS), atol=1e-6)


def test_score_splits_labels_the_data_as_the_pyfunc_does(tmp_path: Path) -> None:
    card = {"labels": LABELS, "label_field": "grounded", "positive_label": "supported"}
    classifier = Classifier.from_dir(tiny_classifier(tmp_path / "model", {**card, "decision_threshold": 0.0}))
    truth = ["supported", "unsupported", "supported", "unsupported"]
    splits = DatasetSplits(
        "pairs", "grounded", LABELS, {s: records(s, truth) for s in ("train", "validation", "test")}
    )

    evaluation = score_splits(classifier, splits, ["test"], None)
    assert (
        evaluation.splits["test"].y_pred.tolist()
        == classifier.classify(TEXTS).predictions.tolist()
        == [0] * 4
    )
    assert evaluation.metrics["test/accuracy"] == 0.5
    assert evaluation.metrics["test/decision_threshold"] == 0.0
    argmax = score_splits(classifier, splits, ["test"], None, decision_threshold=None)
    assert "test/decision_threshold" not in argmax.metrics


def test_data_the_classifier_was_not_trained_for_is_a_scoring_error(tmp_path: Path) -> None:
    card = {"labels": LABELS, "label_field": "grounded"}
    classifier = Classifier.from_dir(tiny_classifier(tmp_path / "model", card))
    odd = records("test", ["supported", "maybe"])
    splits = DatasetSplits(
        "odd", "grounded", [*LABELS, "maybe"], {s: odd for s in ("train", "validation", "test")}
    )
    with pytest.raises(
        ScoringError, match=r"cannot be scored on odd \(1 unknown labels such as \['maybe'\]\)"
    ):
        score_splits(classifier, splits, ["test"], None)
    with pytest.raises(ScoringError, match="needs the label it applies to"):
        classifier.decision_rule(None, decision_threshold=0.5)


class Echo(mlflow.pyfunc.PythonModel):
    """Not a csml classifier."""

    def predict(self, context, model_input, params=None):
        return model_input


def test_a_model_that_is_not_a_csml_classifier_is_named_as_such(tmp_path: Path) -> None:
    from csml.tracking.runs import use_store

    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    use_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=Echo())
        with pytest.raises(ScoringError, match="holds a Echo, not a csml text classifier"):
            Classifier.from_uri(info.model_uri)
    finally:
        use_store(*previous)
