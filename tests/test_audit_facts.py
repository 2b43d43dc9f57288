"""The audit's own fact extraction (csml.audit.facts): kinds, canonical keys, and support by sources."""

from __future__ import annotations

import pytest

from csml.audit.facts import KnownFacts, extract_facts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A 15% restocking fee applies.", [("percentage", "15%", "percentage 15")]),
        ("It costs 20 dollars.", [("amount", "20 dollars", "amount usd 20")]),
        ("It costs €1.5 million.", [("amount", "€1.5 million", "amount eur 1.5e+06")]),
        (
            "We open at 9am and close at 5:30 pm.",
            [("time", "9am", "time 09:00"), ("time", "5:30 pm", "time 17:30")],
        ),
        ("Allow 3 business days.", [("duration", "3 business days", "duration 3 business day")]),
        ("Use the 30-day window.", [("duration", "30-day", "duration 30 day")]),
        ("Open Mondays until noon.", [("date", "Mondays", "date monday"), ("time", "noon", "time 12:00")]),
        ("Due 2025-03-03.", [("date", "2025-03-03", "date 3-3-2025")]),
        ("Ticket #48213 is open.", [("identifier", "48213", "identifier 48213")]),
        ("Quote ORD-77812.", [("identifier", "ORD-77812", "identifier ORD77812")]),
        ("Log in as hchen1 today.", [("identifier", "hchen1", "identifier HCHEN1")]),
        ("Enter your 16-digit card number.", [("number", "16", "number 16")]),
        (
            "Pay with PayPal or NetBanking.",
            [("name", "PayPal", "name paypal"), ("name", "NetBanking", "name netbanking")],
        ),
        ("Howard Chen will call.", [("name", "Chen", "name chen")]),  # a sentence's first word is left out
    ],
)
def test_extract_facts_kinds_and_keys(text: str, expected: list[tuple[str, str, str]]) -> None:
    facts = extract_facts(text)
    assert [(f.kind, f.text, f.key) for f in facts] == expected
    assert all(text[f.start : f.start + len(f.text)] == f.text for f in facts)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, I don't know the answer to that. Would you like me to connect you with a human agent?",
        "May I help you? Thank you for your patience.",
        "Use 2FA to log in.",
    ],
)
def test_courtesy_and_words_that_look_like_facts_are_not_facts(text: str) -> None:
    assert extract_facts(text) == []


@pytest.mark.parametrize(
    ("answer", "source"),
    [
        ("Refunds take $50.", "A refund of 50 dollars is paid."),
        ("Returns within thirty days.", "Returns are accepted within 30 days."),
        ("Returns within 30 days.", "A 30-day return window applies."),
        ("Arrives by March 3rd.", "Delivery on 3 March."),
        ("Call (415) 555-0100.", "Phone +1 415 555 0100."),
        ("Ask Chen.", "Howard Chen handles refunds."),
        ("Visit www.acme.com/help/.", "See https://acme.com/help for details."),
        ("Enter 30.", "Returns within thirty days."),  # a bare number: the same quantity in any form
    ],
)
def test_a_fact_written_another_way_is_supported(answer: str, source: str) -> None:
    known = KnownFacts([source])
    assert [f.text for f in extract_facts(answer) if not known.supports(f)] == []


@pytest.mark.parametrize(
    ("answer", "source"),
    [
        ("Refunds take $75.", "A refund of $50 is paid."),
        ("Returns within 60 days.", "Returns within 30 days."),
        ("Arrives by June 3.", "Arrives by March 3."),
        ("Ask Maria Lopez.", "Howard Chen handles refunds."),
        ("Returns within 3 days.", "Returns within 3 business days."),
        ("Enter 3.", "Rated 3.5 stars."),  # not a number inside another
    ],
)
def test_a_changed_fact_is_not_supported(answer: str, source: str) -> None:
    known = KnownFacts([source])
    assert [f for f in extract_facts(answer) if not known.supports(f)] != []
