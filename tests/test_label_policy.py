"""The label policy lets a messy export train: rare labels, labels unseen in train, labels missing from a split."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from csml.data.sources import TabularFileSource
from csml.data.sources.policy import LabelPolicy
from csml.data.splits import DataValidationError

HEADER = "text,intent\n"
# greet and leave have 4 train rows each; thank 1, refund 2 (rare under min_train_examples=3).
TRAIN = (
    "hello,greet\nhi,greet\nhey,greet\ngood morning,greet\n"
    "bye,leave\nsee you,leave\nciao,leave\nlater,leave\n"
    "thanks,thank\n"
    "refund me,refund\nmoney back,refund\n"
)


def source(tmp_path: Path, test: str, validation: str | None = None, **policy) -> TabularFileSource:
    (tmp_path / "train.csv").write_text(HEADER + TRAIN, encoding="utf-8")
    (tmp_path / "test.csv").write_text(HEADER + test, encoding="utf-8")
    if validation is not None:
        (tmp_path / "validation.csv").write_text(HEADER + validation, encoding="utf-8")
    return TabularFileSource(
        train=tmp_path / "train.csv",
        test=tmp_path / "test.csv",
        validation=tmp_path / "validation.csv" if validation is not None else None,
        columns={"text": "text", "intent": "intent"},
        default_stage="support",
        default_channel="chat",
        val_fraction=0.25,
        label_policy=policy or None,
    )


def labels_of(splits, split: str) -> list[str]:
    return [record.intent for record in splits[split]]


def test_default_policy_lets_a_messy_export_train_and_reports_it(tmp_path: Path, caplog) -> None:
    # thank has 1 train row, test has an unseen label (oops) and no leave rows; validation is carved.
    test = "hello there,greet\nthank you,thank\nwhat?,oops\nrefund now,refund\n"
    with caplog.at_level(logging.WARNING):
        splits = source(tmp_path, test).load("intent")
    assert splits.labels == ["greet", "leave", "refund"]
    assert labels_of(splits, "test") == ["greet", "refund"]
    report = splits.label_report
    assert report["rare_labels"] == {"thank": 1}
    assert report["unseen_labels"] == {"test": {"oops": 1}}
    assert report["rows_dropped"] == {"train": 1, "test": 2}
    assert report["rows_remapped"] == {}
    assert report["absent_labels"] == {"validation": [], "test": ["leave"]}
    assert splits.identity()["label_policy"] == report
    json.dumps(splits.identity())  # the dataset record stays JSON-ready
    assert "labels with < 2 train rows dropped: thank (1)" in caplog.text
    assert "test labels absent from train dropped: oops (1)" in caplog.text
    assert "train labels with no test rows (not scored there): leave" in caplog.text


def test_rare_labels_dropped_from_every_split(tmp_path: Path) -> None:
    test = "hi,greet\nbye,leave\nmy money,refund\n"
    validation = "yo,greet\nbye bye,leave\nrefund pls,refund\n"
    splits = source(tmp_path, test, validation, min_train_examples=3).load("intent")
    assert splits.labels == ["greet", "leave"]
    assert splits.label_report["rare_labels"] == {"refund": 2, "thank": 1}
    assert splits.label_report["rows_dropped"] == {"train": 3, "validation": 1, "test": 1}
    assert "refund" not in labels_of(splits, "validation") + labels_of(splits, "test")


def test_rare_labels_merged_into_other(tmp_path: Path) -> None:
    test = "hi,greet\nbye,leave\nmy money,refund\ncheers,thank\n"
    splits = source(tmp_path, test, min_train_examples=3, rare="merge", other_label="misc").load("intent")
    assert splits.labels == ["greet", "leave", "misc"]
    assert labels_of(splits, "test") == ["greet", "leave", "misc", "misc"]
    assert splits.label_report["rows_remapped"]["test"] == 2
    assert splits.label_report["rows_remapped"]["train"] == 3
    merged = [r for r in splits["test"] if r.intent == "misc"]
    assert [r.meta["original_intent"] for r in merged] == ["refund", "thank"]


def test_unseen_validation_label_is_an_exact_error_by_default(tmp_path: Path) -> None:
    validation = "yo,greet\nbye bye,leave\nwhere is my bag,baggage\n"
    with pytest.raises(DataValidationError) as caught:
        source(tmp_path, "hi,greet\n", validation).load("intent")
    error = caught.value
    assert (error.file, error.row, error.field) == (str(tmp_path / "validation.csv"), 4, "intent")
    assert (error.expected, error.found) == ("labels seen in train", "'baggage'")
    assert "labels in validation absent from train: baggage (1 rows)" in str(error)
    assert "label_policy.unseen_in_validation=drop or oos" in str(error)


def test_unseen_validation_label_dropped_on_request(tmp_path: Path) -> None:
    validation = "yo,greet\nbye bye,leave\nwhere is my bag,baggage\n"
    splits = source(tmp_path, "hi,greet\n", validation, unseen_in_validation="drop").load("intent")
    assert labels_of(splits, "validation") == ["greet", "leave"]
    assert splits.label_report["unseen_labels"] == {"validation": {"baggage": 1}}
    assert splits.label_report["rows_dropped"]["validation"] == 1


def test_unseen_labels_mapped_to_out_of_scope(tmp_path: Path) -> None:
    test = "hi,greet\nwhere is my bag,baggage\nweather?,weather\n"
    train_oos = "what is love,oos\nsing a song,oos\n"
    (tmp_path / "extra").mkdir()
    src = source(tmp_path / "extra", test, unseen_in_test="oos", oos_label="oos")
    (tmp_path / "extra" / "train.csv").write_text(HEADER + TRAIN + train_oos, encoding="utf-8")
    splits = src.load("intent")
    assert labels_of(splits, "test") == ["greet", "oos", "oos"]
    assert splits.label_report["rows_remapped"] == {"test": 2}
    assert [r.meta["original_intent"] for r in splits["test"][1:]] == ["baggage", "weather"]


def test_out_of_scope_mapping_needs_the_label_in_train(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"set data\.oos_label"):
        source(tmp_path, "hi,greet\n", unseen_in_test="oos")
    with pytest.raises(DataValidationError, match="which train lacks"):
        source(tmp_path, "hi,greet\nbag?,baggage\n", unseen_in_test="oos", oos_label="oos").load("intent")


def test_carving_keeps_labels_too_rare_to_split_in_train(tmp_path: Path) -> None:
    splits = source(tmp_path, "hi,greet\n", min_train_examples=1).load("intent")
    assert splits.labels == ["greet", "leave", "refund", "thank"]
    assert labels_of(splits, "train").count("thank") == 1
    assert "thank" not in labels_of(splits, "validation")
    assert "refund" in labels_of(splits, "validation")
    assert splits.label_report["train_only_labels"] == {"thank": 1}
    assert "thank" in splits.label_report["absent_labels"]["validation"]


def test_bad_policies_fail_early() -> None:
    with pytest.raises(ValueError, match="rare must be one of"):
        LabelPolicy(rare="keep")
    with pytest.raises(ValueError, match="unseen_in_test must be one of"):
        LabelPolicy(unseen_in_test="ignore")
    with pytest.raises(ValueError, match="at least 1"):
        LabelPolicy(min_train_examples=0)
    with pytest.raises(ValueError, match="unknown label_policy keys \\['min_rows'\\]"):
        LabelPolicy.of({"min_rows": 3})


def test_report_is_logged_to_mlflow_with_the_dataset_record(tmp_path: Path) -> None:
    import mlflow

    from csml.tracking.runs import log_dataset_identity, setup_tracking, use_store

    splits = source(tmp_path, "hello there,greet\nthank you,thank\nwhat?,oops\n").load("intent")
    tracking = {
        "uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "artifact_location": str(tmp_path / "artifacts"),
        "experiment_name": "csml-train",
    }
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        with mlflow.start_run(experiment_id=setup_tracking(tracking)) as run:
            log_dataset_identity(splits.identity())
        client = mlflow.MlflowClient(tracking["uri"])
        params = client.get_run(run.info.run_id).data.params
        logged = Path(client.download_artifacts(run.info.run_id, "data/label_policy.json", str(tmp_path)))
    finally:
        use_store(*previous)
    assert params["data.label_policy.rare_labels"] == "1"
    assert params["data.label_policy.rows_dropped.test"] == "2"
    assert json.loads(logged.read_text()) == splits.label_report
