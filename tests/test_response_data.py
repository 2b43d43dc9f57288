"""Query -> response pairs: placeholder handling, the group split, Bitext and user-file sources."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from csml.config import project_root
from csml.data.splits import DataValidationError
from csml.records import Channel, JourneyStage, Record
from csml.response.data import BitextResponses, PairFiles, group_split, pair_key
from csml.response.placeholders import (
    fill_placeholders,
    find_placeholders,
    restore_placeholders,
    slot_name,
    to_slot_tokens,
)

BITEXT = Path(os.environ.get("CSML_EXTERNAL_DATA", project_root().parent / "shared" / "data")) / (
    "bitext_cs_responses_sample"
)


def test_find_placeholders_lists_names_in_order_without_duplicates() -> None:
    text = "Order {{Order Number}} ships to {{ Address }}; see {{Order Number}} and {{Upgrade to {{Account Type}}"
    assert find_placeholders(text) == ["Order Number", "Address", "Account Type"]
    assert find_placeholders("no slots here {not one}") == []


def test_slot_tokens_round_trip_and_fill() -> None:
    text = "Your order {{Order Number}} of {{Currency Symbol}}{{Refund Amount}} is on its way."
    slotted = to_slot_tokens(text)
    assert slotted == "Your order [order_number] of [currency_symbol][refund_amount] is on its way."
    assert restore_placeholders(slotted, find_placeholders(text)) == text
    assert restore_placeholders("see [note] and [order_number]", ["Order Number"]) == (
        "see [note] and {{Order Number}}"
    )
    filled = fill_placeholders(text, {"order number": "A-17", "Currency Symbol": "$"})
    assert filled == "Your order A-17 of ${{Refund Amount}} is on its way."
    assert slot_name("Order/Transaction/Reimbursement") == "order_transaction_reimbursement"


def test_pair_key_ignores_case_spacing_punctuation_and_placeholder_spelling() -> None:
    assert pair_key("Track  order {{Order Number}}!") == pair_key("track order {{ order number }}")
    assert pair_key("track order {{Order Number}}") == "track order [order_number]"


def _pair(i: int, query: str, response: str) -> Record:
    return Record(
        id=f"t:{i}",
        text=query,
        source="t",
        stage=JourneyStage.SUPPORT,
        channel=Channel.CHAT,
        response=response,
    )


def test_group_split_keeps_repeated_queries_and_responses_in_one_split() -> None:
    pairs = [_pair(i, f"query {i // 2}", f"reply {i}") for i in range(400)]  # each query twice
    pairs += [_pair(400 + i, f"other {i}", "Shared reply") for i in range(3)]  # one reply, three queries
    splits = group_split(pairs, {"validation": 0.1, "test": 0.2})
    where = {r.id: split for split, rows in splits.items() for r in rows}
    assert len(where) == len(pairs)
    for i in range(0, 400, 2):
        assert where[f"t:{i}"] == where[f"t:{i + 1}"]
    assert len({where[f"t:{400 + i}"] for i in range(3)}) == 1
    assert 0.1 < len(splits["test"]) / len(pairs) < 0.3
    shuffled = group_split(list(reversed(pairs)), {"validation": 0.1, "test": 0.2})
    assert {r.id for r in shuffled["test"]} == {r.id for r in splits["test"]}
    with pytest.raises(ValueError, match="fractions"):
        group_split(pairs, {"validation": 0.5, "test": 0.5})


@pytest.mark.skipif(not BITEXT.is_dir(), reason=f"{BITEXT} is absent")
def test_bitext_responses_load_as_records_with_held_out_responses() -> None:
    splits = BitextResponses(BITEXT).load()
    assert splits.identity()["rows"] == {"train": 1888, "validation": 289, "test": 511}
    assert len(splits.responses()) == 2686
    record = splits["test"][0]
    assert record.source == "bitext_cs_responses"
    assert (record.stage, record.channel, record.intent) == (JourneyStage.SUPPORT, Channel.CHAT, None)
    assert record.id.startswith("bitext_cs_responses:")
    train_queries = {pair_key(r.text) for r in splits["train"]}
    train_responses = {r.response for r in splits["train"]}
    assert not any(pair_key(r.text) in train_queries for r in splits["test"])
    assert not any(r.response in train_responses for r in splits["test"])
    assert len(BitextResponses(BITEXT, limit=5).load()["train"]) == 5


def test_pair_files_map_columns_and_report_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rows = [{"q": f"question {i}", "a": f"answer {{{{Order Number}}}} {i}"} for i in range(60)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = PairFiles(
        [path], {"text": "q", "response": "a"}, default_stage="support", default_channel="email"
    )
    splits = source.load()
    assert sum(len(rows) for rows in splits.splits.values()) == 60
    record = splits["train"][0]
    assert record.channel is Channel.EMAIL and record.response.startswith("answer {{Order Number}}")

    path.write_text(json.dumps({"q": "hi", "a": " "}) + "\n")
    with pytest.raises(DataValidationError, match="empty response"):
        PairFiles(
            [path], {"text": "q", "response": "a"}, default_stage="support", default_channel="chat"
        ).load()
    with pytest.raises(ValueError, match="'response'"):
        PairFiles([path], {"text": "q"}, default_stage="support", default_channel="chat")
