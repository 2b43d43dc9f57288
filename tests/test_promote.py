"""``csml promote`` against a real sqlite MLflow store holding a trained and a deliberately broken version."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from csml.config import compose, project_root
from csml.eval_model import eval_model
from csml.promote import LOG_ARTIFACT, Gate, PromotionConfigError, parse_gates, promote, promote_command
from csml.tracking.registry import AUDIT_PASSED_TAG, RegistryError

MODEL = "csml-test-promote"
BINARY = "csml-test-promote-binary"
OOS_MODEL = "csml-test-promote-oos"
INTENTS = ("card_arrival", "exchange_rate", "terminate_account", "apple_pay_or_google_pay")
# Banking77 intents the out-of-scope model never learns as such: their utterances are its "oos" class.
OUT_OF_SCOPE = ("atm_support", "verify_my_identity")
# Absolute bounds the trained version clears and the broken one (constant prediction) does not.
# Two steps with a fast head: enough for four well-separated intents.
TWO_FAST_STEPS = (
    "data.batch_size=32",
    "data.max_length=32",
    "trainer.max_epochs=1",
    "model.head_lr_multiplier=300",
    "model.warmup_ratio=0.0",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
)
GATES = ("gates.macro_f1.min=0.5", "gates.accuracy.min=0.5", "~gates.ece")


def _write_subset(
    source: Path,
    target: Path,
    per_label: int,
    intents: tuple[str, ...] = INTENTS,
    out_of_scope: tuple[str, ...] = (),
) -> None:
    """The first ``per_label`` Banking77 rows of each of ``intents`` (four well-separated ones), and of each
    of ``out_of_scope`` relabelled ``oos``."""
    with source.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    kept = [row for label in intents for row in [r for r in rows if r["category"] == label][:per_label]]
    for label in out_of_scope:
        kept += [{**r, "category": "oos"} for r in rows if r["category"] == label][:per_label]
    with target.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows(kept)


def _store_and_subset(tmp: Path, out_of_scope: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Overrides for an MLflow store under ``tmp`` and a small Banking77 subset written there (16 training and
    10 test rows per intent, plus ``out_of_scope`` intents relabelled ``oos``)."""
    banking77 = project_root() / "data" / "banking77"
    _write_subset(banking77 / "train.csv", tmp / "train.csv", per_label=16, out_of_scope=out_of_scope)
    _write_subset(banking77 / "test.csv", tmp / "test.csv", per_label=10, out_of_scope=out_of_scope)
    store = [f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}", f"tracking.artifact_location={tmp / 'artifacts'}"]
    data = [
        "data=user_files",
        f"data.source.train={tmp / 'train.csv'}",
        f"data.source.test={tmp / 'test.csv'}",
        "data.source.columns.intent=category",
    ]
    return store, data


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict:
    """One store: v1 trained on four intents; v2 the same model with a zeroed head (always class 0)."""
    from csml.models.components.encoder_classifier import EncoderClassifier
    from csml.tracking.pyfunc import log_classifier
    from csml.tracking.runs import setup_tracking
    from csml.train import train

    tmp = tmp_path_factory.mktemp("promote")
    store, data = _store_and_subset(tmp)
    cfg = compose(
        "train",
        [
            f"paths.run_dir={tmp / 'runs'}",
            f"paths.output_dir={tmp / 'out'}",
            *store,
            *data,
            f"tracking.registered_model_name={MODEL}",
            *TWO_FAST_STEPS,
        ],
    )
    metrics, objects = train(cfg)

    net, tokenizer, card = EncoderClassifier.load(objects["model_dir"])
    net.head.weight.data.zero_()
    net.head.bias.data.zero_()
    broken_dir = net.save(tmp / "broken", tokenizer, card)
    with mlflow.start_run(experiment_id=setup_tracking(cfg.tracking), tags={"csml.git_commit": "broken"}):
        broken = log_classifier(broken_dir, ["where is my card?"], MODEL)
    return {
        "uri": cfg.tracking.uri,
        "overrides": [*store, *data, f"model_name={MODEL}"],
        "good": str(objects["registered_version"]),
        "good_run": objects["run_id"],
        "bad": str(broken.registered_model_version),
        "train_metrics": metrics,
        "model_dir": objects["model_dir"],
    }


def _aliases(client: MlflowClient, **versions: str | None) -> None:
    """Points each alias at a version, or removes it (``None``)."""
    current = client.get_registered_model(MODEL).aliases
    for alias, version in versions.items():
        if version is None:
            if alias in current:
                client.delete_registered_model_alias(MODEL, alias)
        else:
            client.set_registered_model_alias(MODEL, alias, version)


def _champion(client: MlflowClient) -> str | None:
    version = client.get_registered_model(MODEL).aliases.get("champion")
    return None if version is None else str(version)


def test_registry_holds_a_better_and_a_worse_version(registry) -> None:
    assert (registry["good"], registry["bad"]) == ("1", "2")
    assert registry["train_metrics"]["test/accuracy"] >= 0.8


def test_better_challenger_is_promoted_with_tags_lineage_and_log(registry, make_cfg) -> None:
    client = MlflowClient(registry["uri"])
    _aliases(client, champion=registry["bad"], challenger=registry["good"])
    with mlflow.start_run(experiment_id=client.get_experiment_by_name("csml-train").experiment_id) as audit:
        mlflow.set_tag(AUDIT_PASSED_TAG, "false")

    dry = promote(
        make_cfg(
            *registry["overrides"],
            *GATES,
            f"audit_run_id={audit.info.run_id}",
            "dry_run=true",
            config_name="promote",
        )
    )
    assert dry.outcome == "refused"
    assert all(c.passed for c in dry.checks)
    assert f"audit run {audit.info.run_id}" in dry.reason
    assert _champion(client) == registry["bad"]
    assert "csml.promotion.decision" not in client.get_model_version(MODEL, registry["good"]).tags

    client.set_tag(audit.info.run_id, AUDIT_PASSED_TAG, "true")
    decision = promote(
        make_cfg(*registry["overrides"], *GATES, f"audit_run_id={audit.info.run_id}", config_name="promote")
    )
    assert decision.outcome == "promoted"
    assert (decision.candidate_version, decision.champion_version) == (registry["good"], registry["bad"])
    gain = next(c for c in decision.checks if c.metric == "test/macro_f1" and c.kind == "min_gain")
    assert gain.delta == pytest.approx(gain.candidate - gain.champion)
    assert gain.delta > 0.3
    assert _champion(client) == registry["good"]

    tags = client.get_model_version(MODEL, registry["good"]).tags
    training = client.get_run(registry["good_run"]).data.tags
    assert tags["csml.promotion.decision"] == "promoted"
    assert tags["csml.promotion.champion_version"] == registry["bad"]
    assert datetime.fromisoformat(tags["csml.promotion.timestamp"]).tzinfo is not None
    assert tags["csml.promotion.check.macro_f1.min_gain"].startswith("pass: gain +")
    assert tags["csml.lineage.training_run_id"] == registry["good_run"]
    assert tags["csml.lineage.git_commit"] == training["csml.git_commit"]
    assert tags["csml.lineage.dataset_sha256"] == training["csml.dataset_sha256"]
    assert tags["csml.lineage.config"] == f"runs:/{registry['good_run']}/config/config.yaml"
    assert tags["csml.lineage.audit_run_id"] == audit.info.run_id
    evaluation = client.get_run(tags["csml.lineage.evaluation_run_id"])
    assert evaluation.data.metrics["test/macro_f1"] == pytest.approx(gain.candidate)
    assert evaluation.data.tags["mlflow.parentRunId"] == decision.run_id

    log = json.loads(Path(client.download_artifacts(decision.run_id, LOG_ARTIFACT)).read_text())
    assert log["outcome"] == "promoted"
    assert log["champion_version"] == registry["bad"]
    assert log["evaluation_run_ids"].keys() == {"candidate", "champion"}
    assert {"candidate", "champion", "delta", "required", "passed"} <= log["checks"][0].keys()
    promotion = client.get_run(decision.run_id)
    assert promotion.data.tags["csml.promotion.decision"] == "promoted"
    assert promotion.data.metrics["champion/test/macro_f1"] == pytest.approx(gain.champion)


def test_worse_challenger_is_refused_with_exit_1_and_alias_kept(registry, tmp_path) -> None:
    client = MlflowClient(registry["uri"])
    _aliases(client, champion=registry["good"], challenger=registry["bad"])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "csml",
            "promote",
            *registry["overrides"],
            *GATES,
            f"paths.run_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    assert "REFUSED: @champion stays v1" in output
    assert "test/macro_f1: gain -" in output
    assert _champion(client) == registry["good"]
    tags = client.get_model_version(MODEL, registry["bad"]).tags
    assert tags["csml.promotion.decision"] == "refused"
    assert "test/accuracy: 0.2500 < min 0.5000" in tags["csml.promotion.reason"]
    assert not any(key.startswith("csml.lineage.") for key in tags)


def test_first_promotion_without_champion_uses_absolute_gates(registry, make_cfg) -> None:
    client = MlflowClient(registry["uri"])
    _aliases(client, champion=None, challenger=None)

    refused = promote(
        make_cfg(*registry["overrides"], *GATES, f"candidate={registry['bad']}", config_name="promote")
    )
    assert refused.outcome == "refused"
    assert refused.champion_version is None
    assert {c.kind for c in refused.checks if not c.passed} == {"min"}
    assert _champion(client) is None

    decision = promote(
        make_cfg(
            *registry["overrides"], *GATES, f"candidate=run:{registry['good_run']}", config_name="promote"
        )
    )
    assert decision.outcome == "promoted"
    assert decision.evaluation_run_ids.keys() == {"candidate"}
    assert all(
        c.note == "no champion yet: gain not required" for c in decision.checks if c.kind == "min_gain"
    )
    assert _champion(client) == registry["good"]


def test_gate_on_unknown_metric_is_a_config_error(registry, make_cfg) -> None:
    client = MlflowClient(registry["uri"])
    _aliases(client, champion=None, challenger=registry["good"])
    cfg = make_cfg(
        *registry["overrides"],
        "+gates.typo.metric=test/macro_f2",
        "+gates.typo.min=0.5",
        config_name="promote",
    )
    with pytest.raises(
        PromotionConfigError, match=r"'test/macro_f2' is not produced .*did you mean 'test/macro_f1'"
    ):
        promote(cfg)
    assert _champion(client) is None


def test_unknown_model_alias_version_and_audit_run_exit_2(registry, make_cfg, caplog) -> None:
    _aliases(MlflowClient(registry["uri"]), challenger=registry["good"])
    overrides = [o for o in registry["overrides"] if not o.startswith("model_name=")]
    with pytest.raises(RegistryError, match=f"did you mean '{MODEL}'"):
        promote(make_cfg(*overrides, "model_name=csml-test-promot", config_name="promote"))
    with pytest.raises(RegistryError, match=r"no alias 'challengr' \(did you mean 'challenger'\?\)"):
        promote(make_cfg(*registry["overrides"], "candidate=challengr", config_name="promote"))
    with pytest.raises(RegistryError, match="has no version 9; its versions: 1, 2"):
        promote(make_cfg(*registry["overrides"], "candidate=9", config_name="promote"))
    with pytest.raises(RegistryError, match="audit_run_id=0123 is not a run"):
        promote(make_cfg(*registry["overrides"], "audit_run_id='0123'", config_name="promote"))

    with pytest.raises(SystemExit) as exit_info:
        promote_command(make_cfg(*overrides, "model_name=nope", config_name="promote"))
    assert exit_info.value.code == 2
    assert f"no registered model named 'nope'; registered models: {MODEL}" in caplog.text


def test_gates_check_bounds_and_gain_in_the_better_direction() -> None:
    gate = Gate("ece", "test/ece", direction="lower", max=0.1, min_gain=0.0)
    better, worse = (
        gate.check({"test/ece": 0.05}, {"test/ece": 0.08}),
        gate.check({"test/ece": 0.09}, {"test/ece": 0.08}),
    )
    assert [c.passed for c in better] == [True, True]
    assert [c.passed for c in worse] == [True, False]
    assert worse[1].delta == pytest.approx(0.01)
    assert worse[1].note == "gain -0.0100 < min_gain +0.0000 (lower is better)"


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ({}, "no gates configured"),
        ({"f1": {"min": 0.5}}, "gate 'f1' needs a metric"),
        ({"f1": {"metric": "test/macro_f1"}}, "checks nothing"),
        ({"f1": {"metric": "test/macro_f1", "min": 0.5, "direction": "up"}}, "direction must be one of"),
        ({"f1": {"metric": "test/macro_f1", "minimum": 0.5}}, "unknown keys \\['minimum'\\]"),
    ],
)
def test_bad_gate_configs_are_rejected(gates: dict, message: str) -> None:
    with pytest.raises(PromotionConfigError, match=message):
        parse_gates(gates)


@pytest.mark.parametrize("gate_set", ["intent", "sentiment"])
def test_promote_config_composes_with_each_gate_set(gate_set: str) -> None:
    cfg = compose("promote", [f"gates={gate_set}", f"model_name={MODEL}"])
    assert cfg.champion_alias == "champion"
    assert cfg.tracking.experiment_name == "csml-promote"
    assert {gate.metric.split("/")[0] for gate in parse_gates(cfg.gates)} == {"test"}


@pytest.fixture(scope="module")
def binary(registry, tmp_path_factory) -> dict:
    """A two-label model cut from the trained one (its card_arrival and exchange_rate head rows), registered
    in its own store with a card threshold on P(card_arrival) that only the five most confident test rows
    reach, so its decisions differ from the argmax's."""
    import numpy as np
    import torch

    from csml.models.components.encoder_classifier import EncoderClassifier
    from csml.tracking.pyfunc import log_classifier
    from csml.tracking.runs import setup_tracking, use_store

    tmp = tmp_path_factory.mktemp("binary")
    pair = INTENTS[:2]
    banking77 = project_root() / "data" / "banking77"
    _write_subset(banking77 / "train.csv", tmp / "train.csv", per_label=16, intents=pair)
    _write_subset(banking77 / "test.csv", tmp / "test.csv", per_label=10, intents=pair)
    net, tokenizer, card = EncoderClassifier.load(registry["model_dir"])
    rows = [card["labels"].index(label) for label in pair]
    head = torch.nn.Linear(net.head.in_features, len(pair))
    head.weight.data, head.bias.data = net.head.weight.data[rows].clone(), net.head.bias.data[rows].clone()
    net.head = head
    with (tmp / "test.csv").open(encoding="utf-8") as f:
        test = list(csv.DictReader(f))
    probs = net.predict_texts(tokenizer, [r["text"] for r in test], card["max_length"])
    ranked = np.sort(probs[:, 0])
    threshold = float((ranked[-5] + ranked[-6]) / 2)  # between scores: float noise cannot flip a decision
    truth = np.array([pair.index(r["category"]) for r in test])
    thresholded = np.where(probs[:, 0] >= threshold, 0, 1)
    card = {**card, "labels": list(pair), "decision_threshold": threshold, "positive_label": pair[0]}
    model_dir = net.save(tmp / "model", tokenizer, card)

    tracking = {
        "uri": f"sqlite:///{tmp / 'mlflow.db'}",
        "artifact_location": str(tmp / "artifacts"),
        "experiment_name": "csml-train",
    }
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with mlflow.start_run(experiment_id=setup_tracking(tracking)):
        version = log_classifier(model_dir, [test[0]["text"]], BINARY).registered_model_version
    use_store(*previous)  # the other tests' runs stay in the registry fixture's store
    return {
        "uri": tracking["uri"],
        "data": [
            "data=user_files",
            f"data.source.train={tmp / 'train.csv'}",
            f"data.source.test={tmp / 'test.csv'}",
            "data.source.columns.intent=category",
        ],
        "store": [f"tracking.{key}={tracking[key]}" for key in ("uri", "artifact_location")],
        "version": str(version),
        "threshold": threshold,
        "thresholded_accuracy": float((thresholded == truth).mean()),
        "argmax_accuracy": float((probs.argmax(-1) == truth).mean()),
    }


def test_promote_gates_a_two_label_model_on_its_card_threshold_not_argmax(binary, make_cfg) -> None:
    assert binary["thresholded_accuracy"] != pytest.approx(binary["argmax_accuracy"])  # the test can tell

    def gated_accuracy(*overrides: str) -> tuple[float, Any]:
        decision = promote(
            make_cfg(
                *binary["store"],
                *binary["data"],
                f"model_name={BINARY}",
                f"candidate={binary['version']}",
                "gates.accuracy.min=0.0",
                "gates.macro_f1.min=0.0",
                "~gates.ece",
                "dry_run=true",
                *overrides,
                config_name="promote",
            )
        )
        check = next(c for c in decision.checks if c.metric == "test/accuracy" and c.kind == "min")
        return check.candidate, MlflowClient(binary["uri"]).get_run(decision.evaluation_run_ids["candidate"])

    accuracy, evaluation = gated_accuracy()
    assert accuracy == pytest.approx(binary["thresholded_accuracy"])
    assert evaluation.data.metrics["test/decision_threshold"] == pytest.approx(binary["threshold"])
    argmax, evaluation = gated_accuracy("evaluation.decision_threshold=null")
    assert argmax == pytest.approx(binary["argmax_accuracy"])
    assert "test/decision_threshold" not in evaluation.data.metrics


def test_eval_scores_a_two_label_model_with_its_card_threshold_or_an_override(binary, make_cfg) -> None:
    def scores(*overrides: str) -> dict[str, float]:
        model = f"model_uri=models:/{BINARY}/{binary['version']}"
        store = f"tracking.uri={binary['uri']}"
        return eval_model(make_cfg(model, store, *binary["data"], *overrides, config_name="eval"))[0]

    metrics = scores()
    assert metrics["test/accuracy"] == pytest.approx(binary["thresholded_accuracy"])
    assert metrics["test/decision_threshold"] == metrics["val/decision_threshold"]
    assert metrics["test/decision_threshold"] == pytest.approx(binary["threshold"])
    everything_positive = scores("evaluation.decision_threshold=0.0")  # ten test rows of each label
    assert everything_positive["test/accuracy"] == 0.5
    assert everything_positive["test/decision_threshold"] == 0.0
    with pytest.raises(ValueError, match="needs exactly two labels"):
        scores("evaluation.positive_label=terminate_account")


@pytest.fixture(scope="module")
def oos_model(tmp_path_factory) -> dict:
    """A classifier trained (two steps) on four intents plus an ``oos`` class, whose OOS threshold is on the
    Mahalanobis score saved with it (as ``experiment=intent_clinc150_oos`` trains), registered in its own store."""
    from csml.tracking.runs import use_store
    from csml.train import train

    tmp = tmp_path_factory.mktemp("oos")
    store, data = _store_and_subset(tmp, OUT_OF_SCOPE)
    data.append("data.oos_label=oos")
    cfg = compose(
        "train",
        [
            f"paths.run_dir={tmp / 'runs'}",
            f"paths.output_dir={tmp / 'out'}",
            *store,
            *data,
            f"tracking.registered_model_name={OOS_MODEL}",
            "evaluation.oos_score=mahalanobis",
            "evaluation.oos_in_scope_acceptance=0.9",
            *TWO_FAST_STEPS,
        ],
    )
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    metrics, objects = train(cfg)
    use_store(*previous)  # the other tests' runs stay in their own stores
    card = json.loads((objects["model_dir"] / "csml_model.json").read_text())
    return {
        "uri": cfg.tracking.uri,
        "store": store,
        "data": data,
        "version": str(objects["registered_version"]),
        "run_id": objects["run_id"],
        "card": card,
        "train_metrics": metrics,
    }


def test_promotion_gates_a_mahalanobis_oos_model_on_the_metrics_csml_eval_logs(oos_model, make_cfg) -> None:
    card = oos_model["card"]
    assert card["oos_score"] == "mahalanobis"
    assert not 0.0 <= card["oos_threshold"] <= 1.0  # a distance scale: as a probability it would be wrong
    model_uri = f"models:/{OOS_MODEL}/{oos_model['version']}"
    evaluated, _ = eval_model(
        make_cfg(f"model_uri={model_uri}", *oos_model["store"], *oos_model["data"], config_name="eval")
    )

    added = ("in_scope_accuracy", "oos_recall", "oos_precision")
    decision = promote(
        make_cfg(
            *oos_model["store"],
            *oos_model["data"],
            f"model_name={OOS_MODEL}",
            f"candidate={oos_model['version']}",
            "gates.accuracy.min=0.0",
            "gates.macro_f1.min=0.0",
            *(f"+gates.{name}={{metric: test/{name}, min: 0.0}}" for name in added),
            "dry_run=true",
            config_name="promote",
        )
    )
    checks = {c.metric: c.candidate for c in decision.checks}
    assert checks.keys() == {f"test/{name}" for name in ("accuracy", "macro_f1", "ece", *added)}
    for metric, value in checks.items():
        assert value == pytest.approx(evaluated[metric], abs=1e-9), metric
    logged = MlflowClient(oos_model["uri"]).get_run(decision.evaluation_run_ids["candidate"]).data.metrics
    assert logged["test/oos_threshold"] == pytest.approx(card["oos_threshold"])
    assert logged == pytest.approx({k: v for k, v in evaluated.items() if k.startswith("test/")})
    # Training scored the test split with the same score and threshold, and logged the same figures.
    trained = {k: v for k, v in oos_model["train_metrics"].items() if k.startswith("test/")}
    assert logged == pytest.approx(trained, rel=1e-4)


def test_training_registers_a_version_that_describes_its_scorer_data_and_metrics(oos_model) -> None:
    client = MlflowClient(oos_model["uri"])
    card, metrics = oos_model["card"], oos_model["train_metrics"]
    version = client.get_model_version(OOS_MODEL, oos_model["version"])
    model = client.get_registered_model(OOS_MODEL)
    training = client.get_run(oos_model["run_id"]).data.tags

    assert f"the `mahalanobis` in-scope score is below {card['oos_threshold']:.6g}" in version.description
    assert f"`test/oos_recall` {metrics['test/oos_recall']:.4f}" in version.description
    assert all(f"`{label}`" in version.description for label in card["labels"])
    assert (
        "licences: " in version.description
        and "unknown (no SOURCE.txt beside the data)" in version.description
    )
    assert version.tags["csml.oos_score"] == "mahalanobis"
    assert float(version.tags["csml.oos_threshold"]) == pytest.approx(card["oos_threshold"])
    assert version.tags["csml.git_commit"] == training["csml.git_commit"]
    assert version.tags["csml.training_run_id"] == oos_model["run_id"]
    assert (version.tags["csml.task"], version.tags["csml.label_field"]) == ("train", "intent")
    assert f"latest version: {oos_model['version']}" in model.description
    assert model.tags["csml.model_kind"] == "classifier"
    assert "csml.oos_threshold" not in model.tags  # thresholds belong to versions
