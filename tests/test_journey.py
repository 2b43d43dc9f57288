"""The journey map: versioned, valid, complete for the bundled label sets, and applied by the sources."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from csml.data.journey import DEFAULT_JOURNEY_MAP, load_journey_map, parse_journey_map
from csml.data.sources import (
    AirlineTweets,
    Banking77,
    BitextIntents,
    Clinc150,
    Hwu64,
    SemEval2017,
    UciSentences,
)
from csml.data.splits import DataValidationError
from csml.records import Channel, JourneyStage

DATA = Path(__file__).resolve().parents[1] / "data"
BUNDLED = {
    "banking77": [Banking77(DATA / "banking77")],
    "clinc150": [Clinc150(DATA / "clinc150")],
    "hwu64": [Hwu64(DATA / "hwu64")],
    "bitext_intents": [
        BitextIntents(DATA / "bitext_cs_intents"),
        BitextIntents(DATA / "bitext_cs_intents", file="bitext_8k_customer_service.csv"),
    ],
}


@pytest.fixture(scope="module")
def label_sets() -> dict[str, set[str]]:
    """Every intent of the bundled files of each dataset."""
    return {
        name: {label for source in sources for label in source.load("intent").labels}
        for name, sources in BUNDLED.items()
    }


def test_map_is_versioned_and_covers_every_builtin_dataset() -> None:
    journey = load_journey_map()
    assert journey.version == "1.3.0" and journey.path == str(DEFAULT_JOURNEY_MAP)
    classes = [Banking77, Clinc150, Hwu64, BitextIntents, SemEval2017, AirlineTweets, UciSentences]
    # Besides the classifier datasets: SGD dialogues (response models) and the groundedness judge's
    # knowledge-base, BEGIN and DelucionQA pairs.
    others = {"sgd_schema_guided", "knowledge_base", "begin", "delucionqa"}
    assert {cls.name for cls in classes} | others == set(journey.datasets)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_every_bundled_intent_has_a_stage_and_overrides_name_real_intents(
    name: str, label_sets: dict[str, set[str]]
) -> None:
    journey = load_journey_map()
    entry = journey.entry(name)
    overrides = set(entry.intents)
    assert overrides <= label_sets[name], f"overrides naming no {name} intent: {overrides - label_sets[name]}"
    assert all(isinstance(journey.stage_for(name, intent), JourneyStage) for intent in label_sets[name])


def test_stages_and_channels_follow_the_documented_rules() -> None:
    journey = load_journey_map()
    expected = {
        ("banking77", "getting_virtual_card"): "upsell",
        ("banking77", "getting_spare_card"): "upsell",
        ("banking77", "terminate_account"): "retention",
        ("banking77", "exchange_rate"): "consideration",
        ("banking77", "fiat_currency_support"): "consideration",
        ("banking77", "supported_cards_and_currencies"): "consideration",
        ("banking77", "country_support"): "consideration",
        ("banking77", "age_limit"): "consideration",
        ("banking77", "top_up_by_card_charge"): "support",
        ("bitext_intents", "create_account"): "decision",
        ("bitext_intents", "registration_problems"): "decision",
        ("bitext_intents", "place_order"): "decision",
        ("bitext_intents", "newsletter_subscription"): "interest",
        ("bitext_intents", "cancel_order"): "retention",
        ("bitext_intents", "delete_account"): "retention",
        ("bitext_intents", "review"): "advocacy",
        ("bitext_intents", "complaint"): "support",
        ("bitext_intents", "check_payment_methods"): "consideration",
        ("bitext_intents", "check_cancellation_fee"): "consideration",
        ("bitext_intents", "delivery_options"): "consideration",
        ("clinc150", "oos"): "awareness",
        ("clinc150", "weather"): "support",
        ("hwu64", "alarm_set"): "support",
        ("semeval2017", None): "awareness",
        ("airline_tweets", None): "support",
        ("uci_sentences", None): "advocacy",
    }
    assert {key: journey.stage_for(*key).value for key in expected} == expected
    channels = {name: journey.channel_for(name).value for name in journey.datasets}
    assert channels == {
        "banking77": "chat",
        "clinc150": "chat",
        "hwu64": "call",
        "bitext_intents": "chat",
        "semeval2017": "social",
        "airline_tweets": "social",
        "uci_sentences": "review",
        "sgd_schema_guided": "chat",
        "knowledge_base": "faq",
        "begin": "chat",
        "delucionqa": "faq",
    }


def test_unknown_dataset_suggests_close_names() -> None:
    with pytest.raises(KeyError, match="did you mean banking77"):
        load_journey_map().stage_for("banking78", "card_arrival")


def bundled_yaml() -> dict:
    return yaml.safe_load(DEFAULT_JOURNEY_MAP.read_text(encoding="utf-8"))


def test_invalid_stage_names_its_key() -> None:
    data = bundled_yaml()
    data["datasets"]["banking77"]["intents"]["exchange_rate"] = "considerashun"
    with pytest.raises(DataValidationError) as caught:
        parse_journey_map(data, source="map.yaml")
    error = caught.value
    assert (error.file, error.field) == ("map.yaml", "datasets.banking77.intents.exchange_rate")
    assert "'considerashun'" in str(error) and "consideration" in str(error)


def test_invalid_channel_and_default_stage_name_their_keys() -> None:
    data = bundled_yaml()
    data["datasets"]["hwu64"]["channel"] = "voice"
    with pytest.raises(DataValidationError, match=r"field 'datasets\.hwu64\.channel'.*found 'voice'"):
        parse_journey_map(data)
    data = bundled_yaml()
    del data["datasets"]["clinc150"]["default_stage"]
    with pytest.raises(DataValidationError, match=r"datasets\.clinc150\.default_stage"):
        parse_journey_map(data)
    data = bundled_yaml()
    data["datasets"]["clinc150"]["stage"] = "support"
    with pytest.raises(DataValidationError, match=r"unknown keys.*found stage"):
        parse_journey_map(data)


def test_map_without_version_is_rejected(tmp_path: Path) -> None:
    data = bundled_yaml()
    del data["version"]
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DataValidationError, match="no version"):
        load_journey_map(path)
    with pytest.raises(DataValidationError, match="journey map not found"):
        load_journey_map(tmp_path / "absent.yaml")


def test_sources_apply_a_custom_map(tmp_path: Path) -> None:
    data = bundled_yaml()
    data["version"] = "2.0.0"
    data["datasets"]["banking77"] = {
        "channel": "email",
        "default_stage": "retention",
        "intents": {"card_arrival": "decision"},
    }
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(data))
    source = Banking77(DATA / "banking77", journey_map=path, limit=80)
    assert source.journey.version == "2.0.0"
    records = source.load("intent")["train"]
    stages = {r.intent: r.stage for r in records}
    assert stages["card_arrival"] is JourneyStage.DECISION
    assert stages["exchange_rate"] is JourneyStage.RETENTION
    assert {r.channel for r in records} == {Channel.EMAIL}
