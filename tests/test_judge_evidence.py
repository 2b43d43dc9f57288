"""Evidence selection for the judge (windows of sentences or turns, assembled evidence) and the
conversation-grounded training claims written from dialogue annotations."""

from __future__ import annotations

import random

from csml.judge.claims import Claim
from csml.judge.dialogues import LABELS, DialogueFacts, SlotValues, absent_window, joined, turn_window
from csml.judge.evidence import Knowledge, is_transcript
from csml.judge.judge import _fit

CALL = "\n".join(
    [
        "Customer: Hi, I was charged twice for my order 5512 last week.",
        "Agent: Sorry about that. Let me look up order 5512.",
        *[f"Customer: Filler remark number {i} about the weather and nothing else." for i in range(12)],
        "Agent: I have refunded the duplicate charge of 40 dollars to your Visa card.",
    ]
)


def test_documents_are_cut_into_overlapping_windows_of_whole_sentences() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(10))
    found = Knowledge([text], 12).windows
    assert all(len(w.split()) <= 12 for w in found)
    assert found[0].startswith("Sentence number 0") and found[-1].endswith("number 9 is here.")
    for sentence in Knowledge([text], 1).units:  # every sentence whole in some window
        assert any(sentence in w for w in found)
    assert found[:2] == [
        " ".join(Knowledge([text], 1).units[0:2]),
        " ".join(Knowledge([text], 1).units[1:3]),
    ]  # half of each window repeats
    assert Knowledge(["One short answer."], 12).windows == ["One short answer."]


def test_transcripts_are_cut_at_turns_and_long_units_in_overlapping_chunks() -> None:
    assert is_transcript(CALL) and not is_transcript("Refunds: they take 5 days.")
    turns = Knowledge([CALL], 1).units
    assert len(turns) == 15 and turns[0].startswith("Customer: Hi")
    for window in Knowledge([CALL], 30).windows:
        assert all(line in turns for line in window.split("\n"))  # no turn is cut
    long = " ".join(f"w{i}" for i in range(50))
    chunks = Knowledge([long], 20).windows
    assert all(len(c.split()) <= 20 for c in chunks) and chunks[0].split()[10] == chunks[1].split()[0]


def test_evidence_spread_over_a_call_is_assembled_into_one_window() -> None:
    claim = "The agent refunded the duplicate charge on order 5512."
    plain = Knowledge([CALL], 40).windows
    assert not any("5512" in w and "refunded" in w for w in plain)  # no window holds both pieces
    call = Knowledge([CALL], max_words=40)
    together = call.assembled(claim)
    assert together is not None and "order 5512" in together and "refunded" in together
    assert together.index("5512") < together.index("refunded")  # original order kept
    assert together in call.candidates(claim)
    assert call.assembled("Completely unrelated words") is None


def test_a_claim_longer_than_half_a_window_is_judged_in_chunks() -> None:
    text = " ".join(f"word{i}" for i in range(25))
    pieces = _fit(Claim(text, 3, 3 + len(text)), max_words=10)
    assert [len(p.text.split()) for p in pieces] == [10, 10, 5]
    assert all(text[p.start - 3 : p.end - 3] == p.text for p in pieces)


SCHEMA = {
    "Restaurants_1": {
        "service_name": "Restaurants_1",
        "slots": [
            {"name": "city", "description": "City where the restaurant is located"},
            {"name": "restaurant_name", "description": "Name of the restaurant"},
            {"name": "has_live_music", "description": "Boolean flag indicating live music"},
        ],
        "intents": [{"name": "FindRestaurants", "description": "Find a restaurant in a city"}],
    }
}


def _turn(
    speaker: str, text: str, *actions: tuple[str, str, str, str], service: str = "Restaurants_1"
) -> dict:
    return {
        "speaker": speaker,
        "utterance": text,
        "frames": [
            {
                "service": service,
                "actions": [
                    {
                        "act": act,
                        "slot": slot,
                        "values": [value] if value else [],
                        "canonical_values": [canon] if canon else [],
                    }
                    for act, slot, value, canon in actions
                ],
            }
        ],
    }


DIALOGUE = {
    "dialogue_id": "1_00001",
    "services": ["Restaurants_1"],
    "turns": [
        _turn("USER", "Find me a place to eat in San Jose.", ("INFORM_INTENT", "intent", "FindRestaurants", "FindRestaurants"), ("INFORM", "city", "San Jose", "San Jose")),
        _turn("SYSTEM", "Bazille is a nice one in San Jose.", ("OFFER", "restaurant_name", "Bazille", "Bazille"), ("OFFER", "city", "San Jose", "San Jose")),
        _turn("USER", "Does it have live music?", ("REQUEST", "has_live_music", "", "")),
        _turn("SYSTEM", "No, it does not.", ("INFORM", "has_live_music", "False", "False")),
    ],
}  # fmt: skip
OTHER = {
    "dialogue_id": "1_00002",
    "services": ["Restaurants_1"],
    "turns": [
        _turn("SYSTEM", "Try Sushi Ran in Sausalito.", ("OFFER", "restaurant_name", "Sushi Ran", "Sushi Ran"), ("OFFER", "city", "Sausalito", "Sausalito")),
        _turn("USER", "Any in sj?", ("INFORM", "city", "sj", "San Jose")),
    ],
}  # fmt: skip


def _facts(seed: int = 0):
    values = SlotValues()
    values.add([DIALOGUE, OTHER])
    return DialogueFacts(SCHEMA, values).claims(DIALOGUE, random.Random(seed))


def test_dialogue_facts_state_annotated_values_and_twins_change_them() -> None:
    found = _facts()
    assert found.turns[0].split(": ", 1)[1] == "Find me a place to eat in San Jose."
    texts = " | ".join(f.text for f in found.facts)
    assert "Bazille" in texts and "San Jose" in texts and "find a restaurant in a city" in texts
    assert "live music" not in texts  # boolean slots and their True/False values make no claims
    for fact in found.facts:
        assert fact.turns and all(0 <= t < len(found.turns) for t in fact.turns)
        for twin, kind in fact.twins:
            assert twin != fact.text
            if kind == "value":  # the swapped value is absent from the dialogue, even as an equivalent
                assert "Sushi Ran" in twin or "Sausalito" in twin
                assert "sj" not in twin
            if kind == "speaker":
                assert "San Jose" not in twin  # both sides said San Jose: never a speaker twin


def test_dialogue_windows_hold_the_evidence_and_absent_windows_do_not() -> None:
    found = _facts()
    rng = random.Random(1)
    offer = next(f for f in found.facts if f.value == "Bazille")
    window = turn_window(found.turns, offer.turns, max_words=100, rng=rng)
    assert window is not None and "Bazille" in window and window.count("\n") == len(found.turns) - 1
    assert turn_window(found.turns, {0, 3}, max_words=5, rng=rng) is None
    elsewhere = absent_window(found.turns, offer, max_words=6, rng=rng)
    assert elsewhere is None or "Bazille" not in elsewhere
    first, second = found.facts[0], offer
    summary = joined(first, second, rng)
    assert summary.turns == first.turns | second.turns and len(summary.twins) == len(first.twins) + len(
        second.twins
    )


def test_conversation_pairs_test_only_dialogues_of_services_never_trained_on(tmp_path) -> None:
    import json

    from csml.judge.data import SUPPORTED, UNSUPPORTED, GroundednessPairs

    payment = {
        "service_name": "Payment_1",
        "slots": [{"name": "amount", "description": "Amount of money to send"}],
        "intents": [{"name": "MakePayment", "description": "Send money to a contact"}],
    }

    def paying(number: int, amount: str) -> dict:
        return {
            "dialogue_id": f"9_{number:05d}",
            "services": ["Payment_1"],
            "turns": [
                _turn("USER", f"Send {amount} dollars to Ann.", ("INFORM_INTENT", "intent", "MakePayment", "MakePayment"), ("INFORM", "amount", amount, amount), service="Payment_1"),
                _turn("SYSTEM", "Done, the payment went through.", ("NOTIFY_SUCCESS", "", "", ""), service="Payment_1"),
            ],
        }  # fmt: skip

    for folder, schema, dialogues in (
        ("train", [SCHEMA["Restaurants_1"]], [DIALOGUE, OTHER] * 3),
        ("dev", [SCHEMA["Restaurants_1"]], [DIALOGUE, OTHER]),
        ("test", [SCHEMA["Restaurants_1"], payment], [DIALOGUE, paying(1, "40"), paying(2, "75")]),
    ):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
        (tmp_path / folder / "dialogues_001.json").write_text(json.dumps(dialogues), encoding="utf-8")
    source = GroundednessPairs(
        sgd_root=str(tmp_path), dialogues_per_split={"train": 6, "validation": 2, "test": 5}
    )
    splits = source.load("grounded")
    assert {r.meta["origin"] for r in splits["test"]} == {"sgd_unseen_services"}
    assert all(
        r.meta["services"] == ["Payment_1"] for r in splits["test"]
    )  # the restaurant dialogue stays out
    for split in ("train", "test"):
        assert {r.grounded for r in splits[split]} == {SUPPORTED, UNSUPPORTED}
        for record in splits[split]:
            claim, knowledge = record.text.split(" [SEP] ", 1)
            assert claim not in knowledge  # claims are written about the dialogue, not copied from it
            assert knowledge.split(": ", 1)[0] in {label for pair in LABELS for label in pair}


def test_json_records_are_judged_field_by_field() -> None:
    record = '{"order": {"id": 5512, "status": "shipped", "items": ["phone", "case"]}, "refund": null}'
    assert Knowledge([record], 1).units == [
        "order.id: 5512",
        "order.status: shipped",
        "order.items[0]: phone",
        "order.items[1]: case",
        "refund: None",
    ]
    assert Knowledge([record], 6).windows == [
        "order.id: 5512\norder.status: shipped\norder.items[0]: phone",
        "order.items[0]: phone\norder.items[1]: case\nrefund: None",
    ]
    assert Knowledge(["{not json"], 1).units == ["{not json"]


def test_a_quote_of_one_sentence_is_recognised_and_changed_facts_are_not() -> None:
    knowledge = Knowledge(
        ["Refunds reach your card within 5 business days. There is no fee for closing an account."], 96
    )
    assert knowledge.quote("yes, I think refunds reach your card within 5 business days") == (
        "Refunds reach your card within 5 business days."
    )
    for changed in (
        "Refunds reach your card within 7 business days.",  # a number
        "Refunds reach your bank account within 5 business days.",  # an added word
        "There is a fee for closing an account.",  # a negation dropped
        "Refunds never reach your card within 5 business days.",  # a negation added
        "Refunds reach your card within 5 days. There is no fee.",  # two sentences: no single unit has both
        "Refunds reach card",  # too short to call a quote
    ):
        assert knowledge.quote(changed) is None, changed


def test_a_near_quote_with_the_opposite_polarity_is_a_contradiction() -> None:
    knowledge = Knowledge(
        [
            "The warranty does not cover accidental damage or liquid damage. Phones bought outright are unlocked "
            "at no cost. Downgrades do not take effect immediately; they take effect at the next billing cycle. "
            "Loosen (do not remove) the four bolts on the hinges."
        ],
        96,
    )
    for flipped, unit in (
        ("The warranty covers accidental damage or liquid damage.", 0),  # a negation dropped ("covers")
        ("Sure. Phones bought outright are not unlocked at no cost.", 1),  # one added, filler around it
    ):
        assert knowledge.contradicted(flipped) == knowledge.units[unit], flipped
    for consistent in (
        "The warranty does not cover accidental damage.",  # same polarity
        "Downgrades take effect at the next billing cycle.",  # the positive clause of a mixed sentence
        "Phones bought outright cost nothing to unlock, and never need a code.",  # new words: the model's call
        "It is not covered.",  # too short
        "No, the warranty does not cover accidental damage or liquid damage.",  # "no" answers a question
        "The warranty does not cover damage.",  # a part of the clause: the model's call
        "Loosen the four bolts on the hinges.",  # the clause says more than the claim
    ):
        assert knowledge.contradicted(consistent) is None, consistent


def test_summaries_perturb_one_sentence_and_validation_groups_their_sentences(tmp_path) -> None:
    import json
    from collections import defaultdict

    from csml.judge.data import SUPPORTED, UNSUPPORTED, GroundednessPairs
    from csml.judge.dialogues import summary

    made = summary(_facts(), 2, random.Random(0))
    assert made is not None and summary(_facts(), 99, random.Random(0)) is None
    good, bad = made.sentences(True), made.sentences(False)
    assert len(good) == 2 and [g == b for g, b in zip(good, bad, strict=True)].count(False) == 1
    assert bad[made.wrong] == made.twin

    unseen = json.dumps([list(SCHEMA.values()), [DIALOGUE]]).replace("Restaurants_1", "Restaurants_9")
    for folder, (schema, dialogues) in (
        ("train", (list(SCHEMA.values()), [DIALOGUE])),
        ("dev", (list(SCHEMA.values()), [DIALOGUE])),
        ("test", json.loads(unseen)),  # a service never trained on
    ):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
        (tmp_path / folder / "dialogues_001.json").write_text(json.dumps(dialogues), encoding="utf-8")
    source = GroundednessPairs(
        sgd_root=str(tmp_path),
        dialogues_per_split={"train": 1, "validation": 1, "test": 1},
        summary_sentences=2,
    )
    validation = source.load("grounded")["validation"]
    answers = defaultdict(list)
    for record in validation:
        if "answer" in record.meta:
            assert record.meta["domain"] == "conversation_summary"
            answers[record.meta["answer"]].append(record.grounded)
    assert sorted(map(sorted, answers.values())) == [
        [SUPPORTED, SUPPORTED], [SUPPORTED, UNSUPPORTED]
    ]  # fmt: skip
    whole = source.summary_records("validation", sentences=2)
    assert [r.grounded for r in whole] == [SUPPORTED, UNSUPPORTED]
    assert all(r.text.split(" [SEP] ", 1)[1].count("\n") == len(DIALOGUE["turns"]) - 1 for r in whole)
