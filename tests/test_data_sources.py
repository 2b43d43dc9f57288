"""Dataset sources on the real data: row counts, labels, stages/channels, carving, limits, configs."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import hydra
import pytest

from csml.config import compose
from csml.data.sources import (
    AirlineTweets,
    Banking77,
    BitextIntents,
    Clinc150,
    DatasetSource,
    HubDatasetSource,
    Hwu64,
    SemEval2017,
    TabularFileSource,
    UciSentences,
)
from csml.data.splits import SPLITS, DatasetSplits
from csml.records import Channel, JourneyStage, Record

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"


def external(folder: str) -> Path:
    """A non-bundled dataset folder; skips the test when it is not on this machine."""
    root = Path(os.environ.get("CSML_EXTERNAL_DATA", REPO.parent / "shared" / "data")) / folder
    if not root.is_dir():
        pytest.skip(f"{root} not present (set CSML_EXTERNAL_DATA to the shared data folder)")
    return root


def counts(data: DatasetSplits) -> dict[str, int]:
    return {split: len(records) for split, records in data.splits.items()}


def label_sets(data: DatasetSplits) -> list[set[str]]:
    return [{r.label(data.label_field) for r in data[split]} for split in SPLITS]


@pytest.fixture(scope="module")
def banking() -> DatasetSplits:
    return Banking77(DATA / "banking77").load("intent")


def test_banking77_rows_labels_stages(banking: DatasetSplits) -> None:
    rows = counts(banking)
    assert rows["train"] + rows["validation"] == 10003
    assert rows["test"] == 3080
    assert 950 <= rows["validation"] <= 1050
    assert len(banking.labels) == 77
    assert all(labels == set(banking.labels) for labels in label_sets(banking))
    by_intent = {r.intent: r for r in banking["train"]}
    assert by_intent["getting_virtual_card"].stage is JourneyStage.UPSELL
    assert by_intent["terminate_account"].stage is JourneyStage.RETENTION
    assert by_intent["exchange_rate"].stage is JourneyStage.CONSIDERATION
    assert by_intent["top_up_failed"].stage is JourneyStage.SUPPORT
    assert {r.channel for split in SPLITS for r in banking[split]} == {Channel.CHAT}
    first = banking["train"][0]
    assert (first.id, first.text, first.intent, first.source) == (
        "banking77:train:0",
        "I am still waiting on my card?",
        "card_arrival",
        "banking77",
    )
    assert banking.sources == [str(DATA / "banking77" / "train.csv"), str(DATA / "banking77" / "test.csv")]


def test_validation_carve_is_stratified_deterministic_and_disjoint(banking: DatasetSplits) -> None:
    again = Banking77(DATA / "banking77").load("intent")
    other_seed = Banking77(DATA / "banking77", seed=1).load("intent")
    ids = {split: [r.id for r in banking[split]] for split in SPLITS}
    assert ids == {split: [r.id for r in again[split]] for split in SPLITS}
    assert ids["validation"] != [r.id for r in other_seed["validation"]]
    assert ids["test"] == [r.id for r in other_seed["test"]]
    assert not set(ids["train"]) & set(ids["validation"])
    assert set(ids["train"]) | set(ids["validation"]) == {f"banking77:train:{i}" for i in range(10003)}
    train_counts = Counter(r.intent for r in banking["train"])
    for intent, n_val in Counter(r.intent for r in banking["validation"]).items():
        assert abs(n_val / (n_val + train_counts[intent]) - 0.1) < 0.03, intent


def test_clinc150_with_and_without_oos() -> None:
    data = Clinc150(DATA / "clinc150").load("intent")
    assert counts(data) == {"train": 15100, "validation": 3100, "test": 5500}
    assert len(data.labels) == 151 and "oos" in data.labels
    assert Counter(r.intent for r in data["test"])["oos"] == 1000
    oos = next(r for r in data["train"] if r.intent == "oos")
    assert oos.id.startswith("clinc150:oos_train:") and oos.stage is JourneyStage.AWARENESS
    transfer = next(r for r in data["train"] if r.intent == "transfer")
    assert transfer.meta == {"domain": "banking"} and transfer.stage is JourneyStage.SUPPORT
    in_scope = Clinc150(DATA / "clinc150", include_oos=False).load("intent")
    assert counts(in_scope) == {"train": 15000, "validation": 3000, "test": 4500}
    assert len(in_scope.labels) == 150 and "oos" not in in_scope.labels


def test_hwu64_rows_and_channel() -> None:
    data = Hwu64(DATA / "hwu64").load("intent")
    rows = counts(data)
    assert rows["train"] + rows["validation"] == 9960 and rows["test"] == 1076
    assert len(data.labels) == 64 and "alarm_query" in data.labels
    assert all(labels == set(data.labels) for labels in label_sets(data))
    assert {r.channel for r in data["test"]} == {Channel.CALL}
    assert data["train"][0].text == "What alarms do I have set right now?"
    assert data["train"][0].meta == {"answerid": "15605", "scenario": "alarm"}


def test_hwu64_falls_back_to_annotated_text(tmp_path: Path) -> None:
    header = "answerid,scenario,intent,answer_annotation,answer_from_anno,answer_from_user\n"
    for split in ("train", "test"):
        (tmp_path / f"hwu64_kfold1_{split}.csv").write_text(
            header + "1,alarm,set,x,wake me at six,\n2,alarm,set,x,set an alarm,Set an alarm!\n"
            "3,alarm,query,x,any alarms,\n4,alarm,query,x,alarms,Alarms?\n"
        )
    data = Hwu64(tmp_path).load("intent")
    texts = {r.text for split in SPLITS for r in data[split]}
    assert {"wake me at six", "Set an alarm!", "any alarms", "Alarms?"} <= texts


def test_bitext_fixed_test_split_and_stages() -> None:
    data = BitextIntents(DATA / "bitext_cs_intents").load("intent")
    assert sum(counts(data).values()) == 21534
    assert abs(len(data["test"]) / 21534 - 0.2) < 0.01
    assert len(data.labels) == 27
    other_seed = BitextIntents(DATA / "bitext_cs_intents", seed=7).load("intent")
    assert [r.id for r in data["test"]] == [r.id for r in other_seed["test"]]
    stages = {r.intent: r.stage for r in data["train"]}
    assert stages["create_account"] is JourneyStage.DECISION
    assert stages["newsletter_subscription"] is JourneyStage.INTEREST
    assert stages["cancel_order"] is JourneyStage.RETENTION
    assert stages["review"] is JourneyStage.ADVOCACY
    assert stages["track_order"] is JourneyStage.SUPPORT
    first = min(data["train"] + data["test"] + data["validation"], key=lambda r: int(r.id.rsplit(":", 1)[1]))
    assert first.id == "bitext_intents:all:0"
    assert first.meta == {"category": "ACCOUNT", "flags": "BILC"}


def test_semeval2017_dedup_and_decoding() -> None:
    data = SemEval2017(external("semeval2017_task4a")).load("sentiment")
    rows = counts(data)
    assert rows["test"] == 12284
    assert rows["train"] + rows["validation"] == 49484  # unique tweet ids of the ten 2013-2016 files
    assert data.labels == ["negative", "neutral", "positive"]
    train_ids = {r.id.rsplit(":", 1)[1] for r in data["train"] + data["validation"]}
    assert not train_ids & {r.id.rsplit(":", 1)[1] for r in data["test"]}
    assert not any("\\u" in r.text or '\\"' in r.text for r in data["train"])
    assert {(r.channel, r.stage) for r in data["test"]} == {(Channel.SOCIAL, JourneyStage.AWARENESS)}


def test_semeval_format(tmp_path: Path) -> None:
    lines = [
        "1\tpositive\tI\\u2019m happy\\u002c really \\ud83d\\ude00",
        '2\tnegative\t"she said \\""""no\\"""" today"',
        "1\tnegative\tduplicate id: dropped",
        "3\tneutral\tjust news\t",
        "4\tpositive\tgreat",
        "5\tnegative\tawful",
        "6\tneutral\tfine",
    ]
    (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n")
    (tmp_path / "test.tsv").write_text("7\tpositive\tyay\n8\tnegative\tboo\n9\tneutral\tok\n")
    data = SemEval2017(tmp_path, train_files=["train.tsv"], test_file="test.tsv").load("sentiment")
    texts = {r.id: r.text for split in SPLITS for r in data[split]}
    assert texts["semeval2017:train:1"] == "I’m happy, really \U0001f600"
    assert texts["semeval2017:train:2"] == 'she said "no" today'
    assert texts["semeval2017:train:3"] == "just news"
    assert len([i for i in texts if i.startswith("semeval2017:train:")]) == 6


def test_airline_tweets_meta() -> None:
    data = AirlineTweets(external("airline_tweets")).load("sentiment")
    records = [r for split in SPLITS for r in data[split]]
    assert len(records) == 14640
    assert Counter(r.sentiment for r in records) == {"negative": 9178, "neutral": 3099, "positive": 2363}
    assert all("negativereason" not in r.meta for r in records if r.sentiment != "negative")
    assert Counter(r.meta.get("negativereason") for r in records)["Late Flight"] == 1665
    assert {(r.channel, r.stage) for r in records} == {(Channel.SOCIAL, JourneyStage.SUPPORT)}


def test_uci_sentences_real() -> None:
    data = UciSentences(external("uci_sentiment_sentences")).load("sentiment")
    records = [r for split in SPLITS for r in data[split]]
    assert len(records) == 3000
    assert Counter(r.meta["domain"] for r in records) == {"amazon": 1000, "yelp": 1000, "imdb": 1000}
    assert Counter(r.sentiment for r in records) == {"negative": 1500, "positive": 1500}
    assert {(r.channel, r.stage) for r in records} == {(Channel.REVIEW, JourneyStage.ADVOCACY)}


def test_uci_format_quirks(tmp_path: Path) -> None:
    (tmp_path / "yelp_labelled.txt").write_text(
        ",reviews,sentiment\nCrust is not good.\t,0\nLoved it.\t,1\nThe fries were great too.,1\n"
        "Meh.\t0\nYum!\t1\n"
    )
    (tmp_path / "imdb_labelled.txt").write_text("The script is\x85was there a script?  \t0\nGood.\t1\n")
    data = UciSentences(tmp_path, domains=["yelp", "imdb"], test_fraction=0.3).load("sentiment")
    records = {r.text: r for split in SPLITS for r in data[split]}
    assert len(records) == 7
    assert records["The fries were great too."].sentiment == "positive"
    assert records["Crust is not good."].id == "uci_sentences:yelp:0"
    assert records["The script is\x85was there a script?"].sentiment == "negative"


def test_limit_keeps_label_coverage_and_is_deterministic() -> None:
    data = Banking77(DATA / "banking77", limit=154).load("intent")
    assert counts(data) == {"train": 154, "validation": 154, "test": 154}
    assert len(data.labels) == 77 and all(labels == set(data.labels) for labels in label_sets(data))
    assert Counter(r.intent for r in data["train"]) == dict.fromkeys(data.labels, 2)
    again = Banking77(DATA / "banking77", limit=154).load("intent")
    assert data.fingerprint() == again.fingerprint()
    clinc = Clinc150(DATA / "clinc150", limit=40).load("intent")
    assert counts(clinc) == {"train": 40, "validation": 40, "test": 40}
    assert all(labels == set(clinc.labels) for labels in label_sets(clinc)) and len(clinc.labels) == 40


def test_record_dict_round_trip(banking: DatasetSplits) -> None:
    record = Record(
        id="user:train:0",
        text="where is my parcel",
        source="user",
        stage=JourneyStage.SUPPORT,
        channel=Channel.EMAIL,
        intent="track_order",
        context=("hi", "hello, how can I help?"),
        meta={"category": "ORDER"},
    )
    for original in (record, banking["test"][5]):
        as_dict = json.loads(json.dumps(original.to_dict()))
        restored = Record.from_dict(as_dict)
        assert restored == original and restored.meta == original.meta


def write_rows(path: Path, rows: list[dict[str, object]]) -> Path:
    """Writes ``rows`` as CSV, JSONL or parquet depending on the suffix of ``path``."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        columns = list(rows[0])
        lines = [",".join(columns)] + [",".join(str(row[c]) for c in columns) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


USER_ROWS = [
    {"utterance": "where is my order", "label": "track_order", "journey": "support", "medium": "email"},
    {"utterance": "I want to buy this", "label": "place_order", "journey": "", "medium": ""},
    {"utterance": "order status please", "label": "track_order", "journey": "", "medium": "chat"},
    {"utterance": "buy two of them", "label": "place_order", "journey": "DECISION", "medium": ""},
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_tabular_file_source_formats_and_stage_rules(tmp_path: Path, suffix: str) -> None:
    train = write_rows(tmp_path / f"train{suffix}", USER_ROWS)
    test = write_rows(tmp_path / f"test{suffix}", USER_ROWS)
    source = TabularFileSource(
        train=train,
        test=test,
        validation=test,
        columns={"text": "utterance", "intent": "label", "stage": "journey", "channel": "medium"},
        name="shop",
        default_stage="consideration",
        default_channel="social",
    )
    data = source.load("intent")
    assert counts(data) == {"train": 4, "validation": 4, "test": 4}
    assert data.labels == ["place_order", "track_order"]
    stages = [r.stage.value for r in data["train"]]
    channels = [r.channel.value for r in data["train"]]
    assert stages == ["support", "consideration", "consideration", "decision"]
    assert channels == ["email", "social", "chat", "social"]
    assert data["test"][2].id == "shop:test:2" and data["test"][2].source == "shop"
    assert data.sources == [str(train), str(test)]


def test_tabular_source_uses_journey_map_and_carves_validation(tmp_path: Path) -> None:
    rows = [
        {"text": t, "intent": i, "turns": json.dumps(["hello"]), "shop": "uk"}
        for t, i in [("get me a virtual card", "getting_virtual_card"), ("card never came", "card_arrival")]
        * 5
    ]
    data = TabularFileSource(
        train=write_rows(tmp_path / "train.csv", [{**r, "turns": "hi"} for r in rows]),
        test=write_rows(tmp_path / "test.jsonl", rows),
        columns={"text": "text", "intent": "intent", "context": "turns"},
        name="banking77",
        meta_columns=["shop"],
    ).load("intent")
    assert counts(data) == {"train": 8, "validation": 2, "test": 10}
    stages = {r.intent: r.stage for r in data["test"]}
    assert stages == {"getting_virtual_card": JourneyStage.UPSELL, "card_arrival": JourneyStage.SUPPORT}
    assert {r.channel for r in data["test"]} == {Channel.CHAT}
    assert data["test"][0].context == ("hello",) and data["train"][0].context == ("hi",)
    assert data["test"][0].meta == {"shop": "uk"}


def test_hub_source_through_load_dataset(tmp_path: Path) -> None:
    rows = [
        {"sentence": f"text {i}", "label": ["neg", "pos"][i % 2], "when": f"2024-01-0{i}"}
        for i in range(1, 9)
    ]
    train = write_rows(tmp_path / "train.jsonl", rows)
    test = write_rows(tmp_path / "test.jsonl", rows[:4])
    source = HubDatasetSource(
        "json",
        data_files={"train": train, "test": test},
        cache_dir=tmp_path / "hf-cache",
        columns={"text": "sentence", "sentiment": "label", "timestamp": "when"},
        dataset="reviews",
        default_stage="advocacy",
        default_channel="review",
    )
    data = source.load("sentiment")
    assert counts(data) == {"train": 6, "validation": 2, "test": 4}
    assert data.labels == ["neg", "pos"]
    assert data["test"][0].id == "reviews:test:0" and data["test"][0].timestamp == "2024-01-01T00:00:00"
    assert data["test"][0].stage is JourneyStage.ADVOCACY and data["test"][0].channel is Channel.REVIEW
    assert data.sources == ["json:train", "json:test"]


def test_hub_source_converts_class_labels() -> None:
    import datasets

    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["card_arrival", "exchange_rate"]),
        }
    )
    split = datasets.Dataset.from_dict(
        {"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]}, features=features
    )
    loaded = datasets.DatasetDict({"train": split, "validation": split, "test": split})
    source = HubDatasetSource("PolyAI/banking77", columns={"text": "text", "intent": "label"})
    rows = source.rows_from_dataset_dict(loaded)
    assert list(rows) == ["train", "validation", "test"]
    records = [row.record for row in rows["test"]]
    assert [r.intent for r in records] == ["card_arrival", "exchange_rate", "card_arrival", "exchange_rate"]
    assert [r.stage for r in records[:2]] == [JourneyStage.SUPPORT, JourneyStage.CONSIDERATION]
    assert records[0].source == "banking77" and rows["test"][1].file == "PolyAI/banking77:test"


CONFIGS = {
    "banking77": (Banking77, None),
    "clinc150": (Clinc150, None),
    "hwu64": (Hwu64, None),
    "bitext_intents": (BitextIntents, None),
    "semeval2017": (SemEval2017, "semeval2017_task4a"),
    "airline_tweets": (AirlineTweets, "airline_tweets"),
    "uci_sentences": (UciSentences, "uci_sentiment_sentences"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_data_config_instantiates_and_loads(name: str) -> None:
    kind, folder = CONFIGS[name]
    if folder is not None:
        external(folder)
    cfg = compose("train", overrides=[f"data={name}", "data.source.limit=30"])
    assert cfg.data._target_ == "csml.data.datamodule.TextClassificationDataModule"
    assert cfg.data.oos_label == ("oos" if name == "clinc150" else None)
    source = hydra.utils.instantiate(cfg.data.source)
    assert isinstance(source, kind) and isinstance(source, DatasetSource)
    assert source.seed == cfg.seed and source.limit == 30
    data = source.load(cfg.data.label_field)
    assert counts(data) == {"train": 30, "validation": 30, "test": 30}


def test_user_files_config(tmp_path: Path) -> None:
    train = write_rows(tmp_path / "train.csv", [{"text": f"t{i}", "intent": "ab"[i % 2]} for i in range(10)])
    test = write_rows(tmp_path / "test.csv", [{"text": f"u{i}", "intent": "ab"[i % 2]} for i in range(4)])
    cfg = compose(
        "train", overrides=["data=user_files", f"data.source.train={train}", f"data.source.test={test}"]
    )
    data = hydra.utils.instantiate(cfg.data.source).load(cfg.data.label_field)
    assert counts(data) == {"train": 8, "validation": 2, "test": 4}
    assert {(r.stage, r.channel) for r in data["test"]} == {(JourneyStage.SUPPORT, Channel.CHAT)}
