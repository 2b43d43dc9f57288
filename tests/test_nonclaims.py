"""Courtesy is not a claim, a fact is: csml.judge.nonclaims.is_checkable on examples and the labelled set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import external_data_dir
from csml.config import project_root
from csml.judge.nonclaims import is_checkable

DATA = project_root() / "data" / "judge"

NON_CLAIMS = [
    "Hi Anna!",
    "Good morning",
    "Thanks for reaching out",
    "Thank you for your patience",
    "I'm sorry to hear that",
    "I understand how frustrating this must be",
    "I apologize for the inconvenience",
    "Happy to help!",
    "I'd be glad to assist you with that",
    "Let me know if there is anything else I can help with",
    "Feel free to contact us if you have any other questions",
    "Is there anything else I can do for you?",
    "Have a great day!",
    "Best regards, the support team",
    "Could you share your order number?",
    "Which account would you like to use?",
    "Hi Anna, thanks so much for getting in touch!",
    "Good afternoon, Mr. Patel!",
    "I want to assure you that we value your patience.",
    "Sure! I'm here to assist you in tracking order {{Order Number}}: 1.",
    "@105836 Send us a DM so we can look into this together. https://t.co/GDrqU22YpT",
    "Goodbye and have a great day!",  # forms seen in SGD's system turns, which the rule was not built from
    "You are very welcome, goodbye.",
    "In which city are you trying to book the table?",
    "Anything else I can help you with?",
    "Sure thing, glad I was able to help!",
    "Yeah, it really is!",  # reactions: opinion or agreement, no fact
    "That's great!",
    "He's so talented!",
]

CLAIMS = [
    "I'm sorry, but refunds take 5 business days.",
    "Happy to help: your order ships on Monday.",
    "Sure, happy to help: your order ships on Monday.",
    "Thank you for contacting Acme; our store opens at 9 am.",
    "You can reach us at 1-800-555-0100 if you have any other questions.",
    "Our support team is available 24/7.",
    "Did you know we offer free returns within 30 days?",
    # courtesy with a fact after a comma, a dash, "that" or "which"
    "Thanks for your order, which will arrive by Friday.",
    "Glad I could help — your new PIN will arrive by post within five working days.",
    "I'm happy to let you know that your loan was approved.",
    "I assure you that your card details are never stored.",
    "I'm sorry, we don't offer international shipping.",
    "Feel free to reach out via live chat on our website.",
    "Would you like to upgrade to Premium for $9.99 a month?",
    "Please call {{Customer Support Phone Number}} during {{Customer Support Hours}}.",
    # an unrecognised sentence is checked rather than dropped
    "The fee is waived for students.",
    "Log in to your account and open Settings.",
    "How about the 3 star Ace Hotel Chicago?",  # a proposal names something that must exist
    "Yes, it ships today.",
    "It is free.",
    "They are closed on Sundays.",
    "If the customer chose gift card or paper check then enter the full address.",  # a policy manual's steps
    "Confirm their order can be returned, by checking their membership level.",
]


@pytest.mark.parametrize("sentence", NON_CLAIMS)
def test_courtesy_is_not_checkable(sentence: str) -> None:
    assert is_checkable(sentence) is False


@pytest.mark.parametrize("sentence", CLAIMS)
def test_facts_are_checkable_even_when_polite(sentence: str) -> None:
    assert is_checkable(sentence) is True


def _rates(rows: list[dict]) -> tuple[float, float]:
    """(share of non-claims kept as claims, share of checkable sentences dropped)."""
    kept = [is_checkable(r["sentence"]) for r in rows]
    non_claims = [k for k, r in zip(kept, rows, strict=True) if not r["checkable"]]
    checkable = [k for k, r in zip(kept, rows, strict=True) if r["checkable"]]
    return sum(non_claims) / len(non_claims), checkable.count(False) / len(checkable)


def _load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_bundled_labelled_set_is_well_formed() -> None:
    rows = _load(DATA / "nonclaims.jsonl")
    assert len(rows) >= 300
    assert all(
        set(r) == {"sentence", "checkable", "source"} and isinstance(r["checkable"], bool) for r in rows
    )
    assert len({" ".join(r["sentence"].lower().split()) for r in rows}) == len(rows)
    assert {r["source"].split("/")[0] for r in rows} == {"bitext_cs_responses", "abcd", "handwritten"}
    assert 0.2 < sum(r["checkable"] for r in rows) / len(rows) < 0.8


def test_labelled_set_rates() -> None:
    # measured: 12 of 533 non-claims kept (2.3%), 0 of 277 checkable sentences dropped
    kept, dropped = _rates(_load(DATA / "nonclaims.jsonl"))
    assert kept <= 0.05
    assert dropped <= 0.05


def test_twcs_brand_replies_rates() -> None:
    sample = external_data_dir() / "twcs_sample" / "sample.csv"
    if not sample.exists():
        pytest.skip(f"{sample} absent (TWCS is not bundled)")
    with open(sample, encoding="utf-8", newline="") as f:
        texts = {row["tweet_id"]: row["text"] for row in csv.DictReader(f)}
    rows = [
        {"sentence": texts[str(r["tweet_id"])][r["start"] : r["end"]], "checkable": r["checkable"]}
        for r in _load(DATA / "nonclaims_twcs.jsonl")
    ]
    kept, dropped = _rates(rows)  # measured: 3.3% of 90 kept, 0% of 16 dropped
    assert kept <= 0.05
    assert dropped <= 0.05
