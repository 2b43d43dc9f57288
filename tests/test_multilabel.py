"""Multi-label intents (``data.source.multi_label``): label sets read from ``a#b`` cells and lists, the label
policy on single labels, one sigmoid per label with BCE, per-label thresholds chosen on validation and kept in
the model card, label-set metrics, the pyfunc's label sets, and gates on those metrics."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from sklearn.metrics import f1_score, hamming_loss

from csml.config import compose, minilm_path, project_root
from csml.data.sources import TabularFileSource
from csml.data.splits import DataValidationError
from csml.evaluation import DecisionRule
from csml.metrics.multilabel import (
    choose_label_thresholds,
    compute_multilabel_metrics,
    predict_label_sets,
)
from csml.models.classifier import multi_label_loss, positive_weights

MODEL = "csml-test-multilabel"
# Four well-separated Banking77 intents; pairs of them make the compound rows.
INTENTS = ("card_arrival", "exchange_rate", "terminate_account", "apple_pay_or_google_pay")
PAIRS = (("card_arrival", "exchange_rate"), ("terminate_account", "apple_pay_or_google_pay"))
TINY_STEPS = (
    "data.batch_size=8",
    "data.eval_batch_size=32",
    "data.max_length=32",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
)


def source(tmp_path: Path, train: str, test: str, suffix: str = ".csv", **kwargs) -> TabularFileSource:
    """A multi-label source over a train and a test file of ``text`` and ``intent`` (validation carved)."""
    (tmp_path / f"train{suffix}").write_text(train, encoding="utf-8")
    (tmp_path / f"test{suffix}").write_text(test, encoding="utf-8")
    return TabularFileSource(
        train=tmp_path / f"train{suffix}",
        test=tmp_path / f"test{suffix}",
        columns={"text": "text", "intent": "intent"},
        default_stage="support",
        default_channel="chat",
        val_fraction=0.25,
        **{"multi_label": True, **kwargs},
    )


def jsonl(*rows: tuple[str, object]) -> str:
    return "".join(json.dumps({"text": text, "intent": intent}) + "\n" for text, intent in rows)


# Data ------------------------------------------------------------------------------------------------------

TRAIN_CSV = (
    "text,intent\n"
    "book a flight,flight\nfly me home,flight\nfly to rome,flight\nplane ticket,flight\n"
    "how much is it,airfare\nticket price,airfare\nfare please,airfare\ncost of seats,airfare\n"
    "cheap flight to rome,flight#airfare\nprice of a flight,airfare # flight\n"
    'flight and its price,"[""flight"", ""airfare""]"\nwhat does flying cost,flight#airfare#flight\n'
)


def test_label_cells_split_on_the_separator_or_read_as_json_lists_are_sets(tmp_path: Path) -> None:
    test = "text,intent\nfares for flights,flight#airfare\nfly,flight\n"
    splits = source(tmp_path, TRAIN_CSV, test).load("intent")
    assert splits.labels == ["airfare", "flight"]  # the atomic labels
    assert splits.multi_label and splits.label_separator == "#"
    everything = [r for split in ("train", "validation") for r in splits[split]]
    compound = [r.intent for r in everything if r.text.startswith(("cheap", "price", "flight and", "what"))]
    assert compound == ["airfare#flight"] * 4  # sorted, deduplicated, stripped, joined
    assert splits.label_set(splits["test"][0]) == ("airfare", "flight")
    assert splits.identity()["label_separator"] == "#"

    flights = [(f"fly {i}", ["flight"]) for i in range(4)]
    fares = [(f"fare {i}", ["airfare", "flight"]) for i in range(4)]
    listed_test = jsonl(("a fare", ["flight", "airfare"]), ("fly", "flight"))
    listed = source(tmp_path, jsonl(*flights, *fares), listed_test, suffix=".jsonl").load("intent")
    assert [r.intent for r in listed["test"]] == ["airfare#flight", "flight"]


def test_a_hub_column_of_class_label_lists_gives_label_sets() -> None:
    import datasets

    from csml.data.sources import HubDatasetSource

    names = datasets.ClassLabel(names=["airfare", "flight"])
    features = datasets.Features({"text": datasets.Value("string"), "labels": datasets.Sequence(names)})
    split = datasets.Dataset.from_dict({"text": ["fare", "fly"], "labels": [[1, 0], [1]]}, features=features)
    hub = HubDatasetSource(
        "acme/tickets",
        columns={"text": "text", "intent": "labels"},
        default_stage="support",
        default_channel="chat",
        multi_label=True,
    )
    rows = hub.rows_from_dataset_dict(datasets.DatasetDict({"train": split, "test": split}))
    assert [row.record.intent for row in rows["test"]] == ["airfare#flight", "flight"]


def test_without_multi_label_a_compound_cell_stays_one_label(tmp_path: Path) -> None:
    keep_all = {"min_train_examples": 1}
    single = source(
        tmp_path, TRAIN_CSV, "text,intent\nfly,flight\n", multi_label=False, label_policy=keep_all
    )
    splits = single.load("intent")
    assert not splits.multi_label and "label_separator" not in splits.identity()
    assert splits.labels == [
        '["flight", "airfare"]',
        "airfare",
        "airfare # flight",
        "flight",
        "flight#airfare",
        "flight#airfare#flight",
    ]


@pytest.mark.parametrize(
    ("suffix", "cell", "message", "expected"),
    [
        (".csv", "#", "empty label set", "labels separated by '#'"),
        (".csv", "flight#", "empty label in a label set", "labels separated by '#'"),
        (".csv", '"[""flight"", "', "unparseable JSON list of labels", "a JSON list of label strings"),
        (".jsonl", [], "empty label set", "a non-empty list of label strings"),
        (
            ".jsonl",
            ["flight", 7],
            "label list holds something other than labels",
            "a list of non-empty strings",
        ),
        (".jsonl", ["flight#airfare"], "a listed label holds the label separator '#'", "labels without '#'"),
    ],
)
def test_bad_label_sets_name_file_row_field_and_what_was_expected(
    tmp_path: Path, suffix: str, cell: object, message: str, expected: str
) -> None:
    if suffix == ".csv":
        train = f"text,intent\nfly,flight\nbad row,{cell}\n"
        row = 3
    else:
        train = jsonl(("fly", "flight"), ("bad row", cell))
        row = 2
    with pytest.raises(DataValidationError) as caught:
        source(tmp_path, train, train, suffix=suffix).load("intent")
    error = caught.value
    assert str(error).startswith(message)
    assert (error.file, error.row, error.field) == (str(tmp_path / f"train{suffix}"), row, "intent")
    assert expected in error.expected and error.found


def test_the_label_policy_works_on_single_labels_of_the_sets(tmp_path: Path) -> None:
    # "meal" has 2 train rows (rare at min_train_examples=3): it leaves "flight#meal", and the row that is
    # "meal" alone is dropped; "seat" never occurs in train: it leaves "airfare#seat", and "seat" is dropped.
    train = TRAIN_CSV + "flight with a meal,flight#meal\nonly a meal,meal\n"
    test = "text,intent\nfly,flight\nfly with a meal,flight#meal\nseat and fare,airfare#seat\nseat,seat\n"
    splits = source(tmp_path, train, test, label_policy={"min_train_examples": 3}).load("intent")
    assert splits.labels == ["airfare", "flight"]
    report = splits.label_report
    assert report["rare_labels"] == {"meal": 2}
    assert report["unseen_labels"] == {"test": {"seat": 2}}
    assert report["rows_dropped"] == {"train": 1, "test": 1}
    assert report["rows_remapped"] == {"train": 1, "test": 2}
    assert [r.intent for r in splits["test"]] == ["flight", "flight", "airfare"]
    assert splits["test"][1].meta["original_intent"] == "flight#meal"

    policy = {"min_train_examples": 3, "rare": "merge", "other_label": "misc"}
    merged = source(tmp_path, train, test, label_policy=policy).load("intent")
    assert merged.labels == ["airfare", "flight", "misc"]
    assert [r.intent for r in merged["test"]] == ["flight", "flight#misc", "airfare"]


def test_out_of_scope_mapping_is_refused_for_label_sets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multi-label data has none of"):
        source(tmp_path, TRAIN_CSV, TRAIN_CSV, label_policy={"unseen_in_test": "oos", "oos_label": "oos"})


# Metrics and decisions -------------------------------------------------------------------------------------

LABELS = ["a", "b", "c"]
Y_TRUE = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
Y_PRED = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 0]])


def test_label_set_metrics_on_a_hand_computed_example() -> None:
    metrics = compute_multilabel_metrics(
        Y_TRUE,
        Y_PRED,
        LABELS,
        prefix="test",
        stages=["support"] * 2 + ["decision"] * 2,
        channels=["chat"] * 4,
    )
    # a: tp 2, predicted 2, true 2 -> F1 1; b: tp 1, predicted 2, true 2 -> 0.5; c: tp 1/1/1 -> 1.
    assert metrics["test/macro_f1"] == pytest.approx(2.5 / 3)
    assert metrics["test/micro_f1"] == pytest.approx(2 * 4 / (5 + 5))
    assert metrics["test/subset_accuracy"] == 0.5  # rows 2 and 4 exactly right
    assert metrics["test/hamming_loss"] == pytest.approx(2 / 12)
    assert metrics["test/count"] == 4
    assert metrics["test/macro_f1"] == pytest.approx(f1_score(Y_TRUE, Y_PRED, average="macro"))
    assert metrics["test/micro_f1"] == pytest.approx(f1_score(Y_TRUE, Y_PRED, average="micro"))
    assert metrics["test/hamming_loss"] == pytest.approx(hamming_loss(Y_TRUE, Y_PRED))
    # The support stage holds rows 1-2: labels a and b have support there, c none (not averaged).
    assert metrics["test/stage/support/macro_f1"] == pytest.approx((1.0 + 0.0) / 2)
    assert metrics["test/stage/decision/subset_accuracy"] == 0.5
    assert metrics["test/channel/chat/micro_f1"] == metrics["test/micro_f1"]


def test_thresholds_maximise_each_labels_f1_and_a_row_with_none_gets_its_best_label() -> None:
    probs = np.array([[0.9, 0.2, 0.1], [0.6, 0.4, 0.3], [0.3, 0.7, 0.2], [0.2, 0.35, 0.4]])
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0]])
    thresholds = choose_label_thresholds(probs, truth)
    # a: top two rows are its positives -> cut at 0.6; b: positives at 0.7, 0.4, 0.35 -> cut at 0.35 (F1 1);
    # c: no validation positives -> 0.5.
    assert thresholds.tolist() == [0.6, 0.35, 0.5]
    predicted = predict_label_sets(
        np.array([[0.7, 0.1, 0.2], [0.1, 0.2, 0.45], [0.65, 0.5, 0.9]]), thresholds
    )
    assert predicted.tolist() == [[1, 0, 0], [0, 0, 1], [1, 1, 1]]  # row 2: none passes, so its best label


def test_a_multi_label_rule_takes_no_out_of_scope_or_positive_label() -> None:
    with pytest.raises(ValueError, match="has no out-of-scope label"):
        DecisionRule(("a", "b"), oos_label="b", multi_label=True)
    with pytest.raises(ValueError, match="for two-label models"):
        DecisionRule(("a", "b"), positive_label="a", multi_label=True)
    with pytest.raises(ValueError, match="2 label thresholds for 3 labels"):
        DecisionRule(("a", "b", "c"), multi_label=True, label_thresholds=(0.5, 0.5))
    assert DecisionRule(("a", "b"), multi_label=True).predict(np.array([[0.2, 0.4]])).tolist() == [[0, 1]]


def test_positive_weights_and_the_binary_cross_entropy_by_hand() -> None:
    # 10 training rows: a in 8, b in 2, c in 0 (counts as 1).
    assert positive_weights([8, 2, 0], 10, "balanced").tolist() == pytest.approx([2 / 8, 8 / 2, 9.0])
    assert positive_weights([8, 2, 0], 10, "sqrt_inverse").tolist() == pytest.approx([0.5, 2.0, 3.0])

    loss = multi_label_loss(["a", "b"], {"b": 3.0}, "balanced", [8, 2], 10, 0.0)
    logits, targets = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 1.0]])
    # Per label: weight * pos_weight * -log(sigmoid(logit)) for a positive target; mean over labels.
    by_hand = (1.0 * 0.25 * -np.log(1 / (1 + np.exp(-2.0))) + 3.0 * 4.0 * -np.log(1 / (1 + np.exp(1.0)))) / 2
    assert loss(logits, targets).item() == pytest.approx(by_hand, rel=1e-6)
    with pytest.raises(ValueError, match=r"set model\.label_smoothing=0"):
        multi_label_loss(["a"], None, None, None, None, 0.1)


# Training, scoring, the pyfunc and gates -------------------------------------------------------------------


def save_tiny_backbone(folder: Path) -> Path:
    """A random (seed 0) 1-layer, 16-dim BERT with the MiniLM tokenizer, saved as a backbone folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    return folder


def write_export(folder: Path) -> None:
    """Train and test CSV files of Banking77 texts: single intents, and two texts joined with label ``a#b``."""
    with (project_root() / "data" / "banking77" / "train.csv").open(encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["category"] in INTENTS]
    texts = {intent: [r["text"] for r in rows if r["category"] == intent] for intent in INTENTS}
    for name, start, singles, compounds in (("train", 0, 10, 5), ("test", 20, 4, 2)):
        out = [(text, intent) for intent in INTENTS for text in texts[intent][start : start + singles]]
        for a, b in PAIRS:
            for i in range(start, start + compounds):
                out.append((f"{texts[a][40 + i]} {texts[b][40 + i]}", f"{a}#{b}"))
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            writer.writerows(out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A tiny multi-label model trained for two steps on the export, registered in a sqlite store."""
    from csml.train import train

    tmp = tmp_path_factory.mktemp("multilabel")
    write_export(tmp)
    backbone_dir = save_tiny_backbone(tmp / "backbone")
    store = [f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}", f"tracking.artifact_location={tmp / 'artifacts'}"]
    data = [
        "data=user_files",
        f"data.source.train={tmp / 'train.csv'}",
        f"data.source.test={tmp / 'test.csv'}",
        "data.source.columns.intent=category",
        "data.source.multi_label=true",
    ]
    cfg = compose(
        "train",
        [
            f"paths.run_dir={tmp / 'runs'}",
            f"paths.output_dir={tmp / 'out'}",
            *store,
            *data,
            f"model.backbone={backbone_dir}",
            "model.class_weighting=balanced",
            f"tracking.registered_model_name={MODEL}",
            *TINY_STEPS,
        ],
    )
    metrics, objects = train(cfg)
    backbone = f"model.backbone={backbone_dir}"
    return {
        "cfg": cfg,
        "metrics": metrics,
        "objects": objects,
        "store": store,
        "data": data,
        "backbone": backbone,
    }


def test_training_fits_one_sigmoid_per_label_and_keeps_validation_thresholds_in_the_card(trained) -> None:
    from csml.models.components.encoder_classifier import sigmoid

    objects, metrics = trained["objects"], trained["metrics"]
    datamodule, model = objects["datamodule"], objects["model"]
    assert datamodule.labels == sorted(INTENTS)
    assert isinstance(model.loss_fn, torch.nn.BCEWithLogitsLoss)
    counts = datamodule.label_counts("train")
    train = datamodule.splits["train"]
    assert counts == [
        sum(label in datamodule.splits.label_set(r) for r in train) for label in datamodule.labels
    ]
    assert any(len(datamodule.splits.label_set(r)) == 2 for r in datamodule.splits["validation"])
    expected = positive_weights(counts, len(datamodule.splits["train"]), "balanced")
    assert model.loss_fn.pos_weight.tolist() == pytest.approx(expected.tolist())

    card = json.loads((Path(objects["model_dir"]) / "csml_model.json").read_text())
    assert card["multi_label"] is True and card["label_separator"] == "#"
    assert card["decision_threshold"] is None and list(card["label_thresholds"]) == datamodule.labels
    validation = datamodule.splits["validation"]
    logits = model.predict_outputs(datamodule.eval_dataloader("validation"))[1]
    truth = np.array(
        [[int(label in datamodule.splits.label_set(r)) for label in datamodule.labels] for r in validation]
    )
    chosen = choose_label_thresholds(sigmoid(logits), truth)
    assert list(card["label_thresholds"].values()) == pytest.approx(chosen.tolist())

    for key in ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"):
        assert 0.0 <= metrics[f"test/{key}"] <= 1.0 and f"val/{key}" in metrics
    assert "test/accuracy" not in metrics and "test/stage/support/micro_f1" in metrics
    assert "test/channel/chat/subset_accuracy" in metrics

    out = Path(trained["cfg"].paths.output_dir) / "evaluation"
    rows = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    compound = next(row for row in rows if "#" in row["label"])
    assert compound["labels"] == sorted(compound["label"].split("#"))
    assert compound["prediction"] == "#".join(compound["predicted_labels"]) and compound["predicted_labels"]
    assert compound["correct"] == (compound["labels"] == compound["predicted_labels"])
    assert np.mean([row["correct"] for row in rows]) == pytest.approx(metrics["test/subset_accuracy"])
    per_label = json.loads((out / "test_per_class.json").read_text())
    assert [row["threshold"] for row in per_label] == pytest.approx(list(card["label_thresholds"].values()))

    client = MlflowClient(trained["cfg"].tracking.uri)
    run = client.get_run(objects["run_id"])
    assert run.data.metrics["test/micro_f1"] == pytest.approx(metrics["test/micro_f1"])
    version = client.get_model_version(MODEL, objects["registered_version"])
    assert version.tags["csml.multi_label"] == "true" and version.tags["csml.label_separator"] == "#"
    assert "label sets (multi-label, joined with `#`)" in version.description
    assert "the most probable label when none does" in version.description


def test_the_pyfunc_returns_label_sets_in_a_fresh_process(trained, tmp_path: Path) -> None:
    objects = trained["objects"]
    uri = f"models:/{MODEL}/{objects['registered_version']}"
    info = mlflow.models.get_model_info(uri)
    assert [c["name"] for c in info.signature.outputs.to_dict()] == [
        "label",
        "labels",
        "scores",
        "top_k_labels",
        "top_k_scores",
    ]
    texts = ["I still have not received my new card", "What is the exchange rate for euros?"]
    script = (
        "import json, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({trained['cfg'].tracking.uri!r})\n"
        f"model = mlflow.pyfunc.load_model({uri!r})\n"
        f"out = model.predict(pd.DataFrame({{'text': {texts!r}}}), params={{'top_k': 4}})\n"
        "print(json.dumps(out.to_dict(orient='records')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    card = json.loads((Path(objects["model_dir"]) / "csml_model.json").read_text())
    for row in rows:
        assert row["labels"] and set(row["labels"]) <= set(INTENTS)
        assert row["label"] == "#".join(row["labels"])
        assert len(row["scores"]) == len(row["labels"]) and len(row["top_k_labels"]) == 4
        passed = [
            label
            for label, p in zip(row["top_k_labels"], row["top_k_scores"], strict=True)
            if p >= card["label_thresholds"][label]
        ]
        assert row["labels"] == (sorted(passed) or [row["top_k_labels"][0]])


def test_eval_scores_the_registered_model_with_its_card_thresholds_or_a_checkpoint_with_chosen_ones(
    trained, make_cfg
) -> None:
    from csml.eval_model import eval_model

    objects, metrics = trained["objects"], trained["metrics"]
    common = [*trained["store"], *trained["data"], "data.max_length=32"]
    registered, _ = eval_model(
        make_cfg(f"model_uri=models:/{MODEL}/{objects['registered_version']}", *common, config_name="eval")
    )
    for key in ("val/micro_f1", "test/micro_f1", "test/subset_accuracy", "test/stage/support/hamming_loss"):
        assert registered[key] == pytest.approx(metrics[key], abs=1e-6), key

    checkpoint = Path(trained["cfg"].paths.output_dir) / "checkpoints" / "last.ckpt"
    scored, result = eval_model(make_cfg(f"ckpt_path={checkpoint}", *common, config_name="eval"))
    assert result["evaluation"].label_thresholds is not None and "test/micro_f1" in scored


def test_scoring_refuses_data_read_without_label_sets_and_out_of_scope_options(trained, make_cfg) -> None:
    from csml.eval_model import eval_model
    from csml.scoring import ScoringError

    objects = trained["objects"]
    uri = f"models:/{MODEL}/{objects['registered_version']}"
    single = [o for o in trained["data"] if o != "data.source.multi_label=true"]
    with pytest.raises(ScoringError, match=r"pass data\.source\.multi_label=true"):
        eval_model(make_cfg(f"model_uri={uri}", *trained["store"], *single, config_name="eval"))
    with pytest.raises(ScoringError, match=r"set evaluation\.oos_score=null"):
        eval_model(
            make_cfg(
                f"model_uri={uri}",
                *trained["store"],
                *trained["data"],
                "evaluation.oos_score=knn",
                config_name="eval",
            )
        )


def test_the_bot_refuses_to_route_on_a_multi_label_model(trained) -> None:
    from csml.bot.routing import RegistryClassifier

    with pytest.raises(TypeError, match="the bot routes each message on one intent"):
        RegistryClassifier(f"models:/{MODEL}/{trained['objects']['registered_version']}")


@pytest.mark.parametrize(("margin", "outcome"), [(-0.01, "promoted"), (0.01, "refused")])
def test_a_gate_on_a_label_set_metric_passes_or_fails_as_it_should(
    trained, make_cfg, margin, outcome
) -> None:
    from csml.promote import promote

    micro_f1 = trained["metrics"]["test/micro_f1"]
    decision = promote(
        make_cfg(
            *trained["store"],
            *trained["data"],
            f"model_name={MODEL}",
            f"candidate={trained['objects']['registered_version']}",
            "gates=intent_multilabel",
            "~gates.subset_accuracy",
            "~gates.hamming_loss",
            "gates.micro_f1.min_gain=null",
            f"gates.micro_f1.min={micro_f1 + margin}",
            "dry_run=true",
            config_name="promote",
        )
    )
    assert decision.outcome == ("dry_run_passed" if outcome == "promoted" else "refused")
    [check] = decision.checks
    assert (check.metric, check.candidate) == ("test/micro_f1", pytest.approx(micro_f1, abs=1e-6))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["data.oos_label=card_arrival"], "data.oos_label='card_arrival'"),
        (["evaluation.positive_label=card_arrival"], "a multi-label model has a threshold per label"),
        (["data.balanced_sampling=true"], "weigh rare labels with model.class_weighting=balanced"),
        (["model.label_smoothing=0.1"], "set model.label_smoothing=0"),
    ],
)
def test_options_that_need_one_label_per_text_are_refused_before_training(
    trained, make_cfg, overrides, match
) -> None:
    from hydra.errors import InstantiationException

    from csml.train import train

    cfg = make_cfg(
        *trained["store"],
        *trained["data"],
        trained["backbone"],
        "tracking.register=false",
        *TINY_STEPS,
        *overrides,
    )
    with pytest.raises((ValueError, InstantiationException), match=match):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


# Single-label data is scored and trained as before --------------------------------------------------------


def test_single_label_scoring_and_loss_are_what_they_were(tmp_path: Path, make_cfg) -> None:
    from hydra.utils import instantiate

    from csml.evaluation import evaluate
    from csml.metrics.classification import compute_classification_metrics
    from csml.records import Channel, JourneyStage, Record

    records = [
        Record(f"r{i}", "text", "t", JourneyStage.SUPPORT, Channel.CHAT, intent=label)
        for i, label in enumerate(["a", "b", "c", "b"])
    ]
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]])
    evaluation = evaluate({"test": (records, probs)}, LABELS, "intent", oos_threshold=None)
    assert not evaluation.multi_label and evaluation.label_thresholds is None
    assert evaluation.splits["test"].y_pred.tolist() == [0, 1, 1, 2]  # the argmax
    expected = compute_classification_metrics(
        [0, 1, 2, 1], probs, LABELS, prefix="test", stages=["support"] * 4, channels=["chat"] * 4
    )
    assert evaluation.metrics == expected

    backbone = save_tiny_backbone(tmp_path / "backbone")
    module = instantiate(make_cfg(f"model.backbone={backbone}").model, labels=LABELS)
    assert type(module.loss_fn) is torch.nn.CrossEntropyLoss and module.loss_fn.weight is None
    assert module.hparams.multi_label is False
