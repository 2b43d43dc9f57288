"""Conversation-grounded claims: statements about a customer-service dialogue, made from its annotations.

The Schema-Guided Dialogue corpus (SGD; Rastogi et al. 2020, CC BY-SA 4.0) annotates every turn with its
service, dialogue acts and slot values. From those, this module writes what a summary or a reply would say
about the conversation -- "The customer wanted to book a table at Bazille for 4 people.", "The agent offered
71 Saint Peter." -- in the third person, with templates whose wording the transcript does not contain, so a
supported claim is abstractive, not a copy. Exact perturbations of the same facts make unsupported twins:

- ``value``: a slot value (a name, number, date, time, place) becomes another value of the same slot from
  another dialogue, one that appears nowhere in this one;
- ``speaker``: the statement is attributed to the other party ("the customer suggested X" when the agent did);
- ``negation``: the fact is denied ("the agent did not offer X");
- ``outcome``: a success becomes a failure and back (an antonym swap of the outcome);
- ``intent``: the customer wanted something another service does;
- ``invented``: a true statement with an invented detail appended;
- ``absent``: the true claim judged against turns of the same dialogue that do not hold its evidence.

Facts of two turns are also joined into one summary-style sentence (both parts must hold). So that no
wording gives the label away, the same templates serve supported claims and speaker-swapped twins, and
true negative statements ("the agent never mentioned X" for an X the dialogue never names, "the customer did
not want to" do what another service does) are supported claims beside the false ones.
The transcript is rendered with speaker labels ("Customer: ...", "Agent: ..."; the label pair varies) and
the knowledge shown with a claim is a window of whole turns around its evidence, as the judge builds them at
inference (:mod:`csml.judge.evidence`).
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csml.data.splits import DataValidationError

LABELS = [("Customer", "Agent"), ("User", "Assistant"), ("Caller", "Representative"), ("Client", "Support")]
CUSTOMER = ["The customer", "The user", "The caller", "The client"]
AGENT = ["the agent", "the assistant", "the representative", "support"]
_INVENTED = [
    "offered a {n}% discount",
    "waived the booking fee",
    "promised a call back within {n} hours",
    "charged an extra fee of ${n}",
    "added a free upgrade",
    "asked for a credit card number",
    "transferred the call to a supervisor",
    "sent a refund of ${n}",
]


@dataclass
class Fact:
    """A supported claim about a dialogue, the turns that hold its evidence, and unsupported twins."""

    text: str
    turns: set[int]
    twins: list[tuple[str, str]] = field(default_factory=list)  # (claim, perturbation)
    value: str | None = None  # the slot value it states, if any (absent from an ``absent`` window)


@dataclass
class DialogueClaims:
    """One dialogue's transcript (turns with speaker labels) and the facts found in it."""

    dialogue_id: str
    services: list[str]
    turns: list[str]
    facts: list[Fact]


def read_dialogues(path: Path) -> list[dict[str, Any]]:
    """The dialogues of one SGD file (``.json`` or ``.json.gz``)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, OSError, EOFError, UnicodeDecodeError) as error:
        raise DataValidationError("unreadable dialogue file", file=str(path), found=str(error)) from None
    if not isinstance(data, list):
        raise DataValidationError("not a list of dialogues", file=str(path), found=type(data).__name__)
    return data


COURTESY_ACTS = frozenset({"REQ_MORE", "GOODBYE", "REQUEST"})  # system acts that state no fact


def system_turns(folder: Path) -> Iterator[list[tuple[str, set[str]]]]:
    """For each dialogue of an SGD folder's files (in file order), its system turns with acts:
    ``(utterance, {act, ...})``."""
    for path in sorted(folder.glob("dialogues_*.json*")):
        for dialogue in read_dialogues(path):
            yield [
                (turn["utterance"], {a["act"] for f in turn.get("frames", []) for a in f.get("actions", [])})
                for turn in dialogue["turns"]
                if turn.get("speaker") == "SYSTEM"
            ]


def read_schema(folder: Path) -> dict[str, dict[str, Any]]:
    """Services of an SGD split by name: their slot and intent descriptions."""
    path = folder / "schema.json"
    try:
        services = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DataValidationError("unreadable SGD schema", file=str(path), found=str(error)) from None
    return {s["service_name"]: s for s in services}


def _phrase(description: str) -> str:
    """A schema description as a phrase inside a sentence ("City in which ..." -> "city in which ...")."""
    text = description.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() or len(text) < 2 else text


class SlotValues:
    """Values each slot takes across dialogues, to swap one for another that a dialogue never mentions.

    Values are compared by SGD's canonical form, so "3 PM" never replaces "15:00"."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, str]] = defaultdict(dict)  # slot -> canonical -> a surface form

    def add(self, dialogues: list[dict[str, Any]]) -> None:
        for dialogue in dialogues:
            for _, action in _actions(dialogue):
                for value, canonical in zip(
                    action.get("values", []), action.get("canonical_values", []), strict=False
                ):
                    if canonical.lower() not in _NOT_A_VALUE:
                        self.values[action.get("slot", "")].setdefault(canonical.lower(), value)

    def other(self, slot: str, dialogue: dict[str, Any], transcript: str, rng: random.Random) -> str | None:
        used = {c.lower() for _, action in _actions(dialogue) for c in action.get("canonical_values", [])}
        lowered = transcript.lower()
        choices = sorted(
            surface
            for canonical, surface in self.values.get(slot, {}).items()
            if canonical not in used and surface.lower() not in lowered
        )
        return rng.choice(choices) if choices else None


_NOT_A_VALUE = {"dontcare", "true", "false", "none"}


def _actions(dialogue: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(speaker, action) of every dialogue act of a dialogue."""
    for turn in dialogue.get("turns", []):
        for frame in turn.get("frames", []):
            for action in frame.get("actions", []):
                yield turn.get("speaker", ""), action


class DialogueFacts:
    """Writes the facts of SGD dialogues (see the module docstring).

    Args:
        schema: Services by name (:func:`read_schema`), for slot and intent descriptions.
        values: Slot values across dialogues, the pool of ``value`` swaps.
    """

    def __init__(self, schema: dict[str, dict[str, Any]], values: SlotValues) -> None:
        self.slots = {
            (name, slot["name"]): _phrase(slot["description"])
            for name, service in schema.items()
            for slot in service["slots"]
            if not slot["description"].lower().startswith(("boolean", "whether"))
        }
        self.intents = {
            (name, intent["name"]): _phrase(intent["description"])
            for name, service in schema.items()
            for intent in service["intents"]
        }
        self.values = values
        self.other_intents = sorted(set(self.intents.values()))  # the pool of ``intent`` swaps

    def claims(self, dialogue: dict[str, Any], rng: random.Random) -> DialogueClaims:
        customer_label, agent_label = rng.choice(LABELS)
        turns = [
            f"{customer_label if t.get('speaker') == 'USER' else agent_label}: {t.get('utterance', '').strip()}"
            for t in dialogue.get("turns", [])
        ]
        transcript = "\n".join(turns)
        facts = [f for f in self._facts(dialogue, transcript, _Said.of(dialogue), rng) if f is not None]
        return DialogueClaims(
            str(dialogue.get("dialogue_id")), list(dialogue.get("services", [])), turns, facts
        )

    def _facts(
        self, dialogue: dict[str, Any], transcript: str, said: _Said, rng: random.Random
    ) -> Iterator[Fact | None]:
        seen: set[tuple[str, str, str]] = set()
        for index, turn in enumerate(dialogue.get("turns", [])):
            speaker = turn.get("speaker")
            for frame in turn.get("frames", []):
                service = frame.get("service", "")
                for action in frame.get("actions", []):
                    act, slot = action.get("act", ""), action.get("slot", "")
                    values = action.get("values", [])
                    key = (speaker or "", act, slot + "|".join(values))
                    if key in seen:
                        continue
                    seen.add(key)
                    c, a = rng.choice(CUSTOMER), rng.choice(AGENT)
                    canonical = [v.lower() for v in action.get("canonical_values", [])]
                    if canonical and canonical[0] in _NOT_A_VALUE:
                        continue
                    ctx = _Context(
                        self, dialogue, service, slot, values, canonical, transcript, said, c, a, rng
                    )
                    if speaker == "USER" and act == "INFORM_INTENT" and values:
                        yield from ctx.intent(values[0], index)
                    elif act in ("INFORM", "OFFER", "CONFIRM") and values and (service, slot) in self.slots:
                        yield from ctx.slot_value(speaker, act, index)
                    elif speaker == "SYSTEM" and act in ("NOTIFY_SUCCESS", "NOTIFY_FAILURE"):
                        yield ctx.outcome(act == "NOTIFY_SUCCESS", index)
                    elif speaker == "SYSTEM" and act == "INFORM_COUNT" and values:
                        yield ctx.count(values[0], index)
                    elif act == "REQUEST" and not values and (service, slot) in self.slots:
                        yield ctx.request(speaker, index)


@dataclass
class _Said:
    """Who said what in a dialogue, by speaker (``USER`` / ``SYSTEM``): their words (lower case), the
    canonical values they stated and the slots they asked for."""

    words: dict[str, str]
    values: dict[str, set[str]]
    requests: dict[str, set[str]]

    @classmethod
    def of(cls, dialogue: dict[str, Any]) -> _Said:
        turns = dialogue["turns"]
        words = {
            "USER": " ".join(t["utterance"] for t in turns if t.get("speaker") == "USER").lower(),
            "SYSTEM": " ".join(t["utterance"] for t in turns if t.get("speaker") != "USER").lower(),
        }
        values: dict[str, set[str]] = defaultdict(set)
        requests: dict[str, set[str]] = defaultdict(set)
        for speaker, action in _actions(dialogue):
            if action.get("act") in ("INFORM", "OFFER", "CONFIRM", "SELECT"):
                values[speaker] |= {c.lower() for c in action.get("canonical_values", [])}
            if action.get("act") == "REQUEST":
                requests[speaker].add(action.get("slot", ""))
        return cls(words, values, requests)


@dataclass
class _Context:
    """What the templates of one action need."""

    facts: DialogueFacts
    dialogue: dict[str, Any]
    service: str
    slot: str
    values: list[str]
    canonical: list[str]
    transcript: str
    said: _Said
    c: str
    a: str
    rng: random.Random

    @property
    def agent(self) -> str:
        """The agent's name at the start of a sentence ("The agent", "Support")."""
        return self.a[0].upper() + self.a[1:]

    def _intent_phrase(self, intent: str) -> str | None:
        return self.facts.intents.get((self.service, intent))

    def intent(self, intent: str, index: int) -> Iterator[Fact]:
        phrase = self._intent_phrase(intent)
        if phrase is None:
            return
        c, a, rng = self.c, self.a, self.rng
        text = rng.choice([
            f"{c} wanted to {phrase}.", f"{c} contacted {a} to {phrase}.",
            f"{c} asked for help to {phrase}.", f"The conversation was about a request to {phrase}.",
        ])  # fmt: skip
        other = [p for p in self.facts.other_intents if p != phrase]
        twins = [(f"{c} did not want to {phrase}.", "negation")]
        if other:
            twins.append((text.replace(phrase, rng.choice(other)), "intent"))
        yield Fact(text, {index}, twins)
        if other and rng.random() < 0.3:  # a true negative statement, so "not" alone decides nothing
            yield Fact(
                f"{c} did not want to {rng.choice(other)}.",
                {index},
                [(f"{c} did not want to {phrase}.", "negation")],
            )

    def _says(self, role: str, act: str, value: str, slot: str) -> list[str]:
        """Ways to say that ``role`` (``USER`` or ``SYSTEM``) stated ``value`` for ``slot``; the same
        templates make supported claims and speaker-swapped twins."""
        c, a = self.c, self.a
        C, A, c_, a_ = c, self.agent, c[0].lower() + c[1:], a
        if role == "USER":
            return [
                f"{C} gave {value} as the {slot}.", f"{C} said the {slot} is {value}.",
                f"According to {c_}, the {slot} is {value}.", f"{C} specified {value} for the {slot}.",
                f"{C} suggested {value} as the {slot}.", f"{C} was the one who said the {slot} is {value}.",
            ]  # fmt: skip
        if act == "OFFER":
            return [
                f"{A} suggested {value} as the {slot}.", f"{A} offered {value}.",
                f"{A} proposed {value} for the {slot}.", f"{C} was offered {value} by {a_}.",
            ]  # fmt: skip
        return [
            f"{A} told {c_} that the {slot} is {value}.", f"{C} learned from {a_} that the {slot} is {value}.",
            f"{A} confirmed {value} as the {slot}.", f"{A} said the {slot} is {value}.",
        ]  # fmt: skip

    def slot_value(self, speaker: str | None, act: str, index: int) -> Iterator[Fact]:
        rng = self.rng
        slot, value = self.facts.slots[self.service, self.slot], self.values[0]
        role = "USER" if speaker == "USER" else "SYSTEM"
        other_side = "SYSTEM" if role == "USER" else "USER"
        who = self.c if role == "USER" else self.agent
        text = rng.choice(self._says(role, act, value, slot))
        twins = [
            (
                rng.choice([f"{who} said the {slot} is not {value}.", f"{who} never mentioned {value}."]),
                "negation",
            )
        ]
        if (
            self.canonical
            and value.lower() not in self.said.words[other_side]
            and self.canonical[0] not in self.said.values.get(other_side, set())
        ):
            swapped = rng.choice(self._says(other_side, rng.choice(["OFFER", "INFORM"]), value, slot))
            twins.append((swapped, "speaker"))
        other = self.facts.values.other(self.slot, self.dialogue, self.transcript, rng)
        if other is not None:
            twins.append((_replace_last(text, value, other), "value"))
        invented = rng.choice(_INVENTED).format(n=rng.randint(2, 90))
        twins.append((f"{text[:-1]}, and {self.a} {invented}.", "invented"))
        yield Fact(text, {index}, twins, value)
        if other is not None and rng.random() < 0.25:  # a true negative statement about an absent value
            yield Fact(
                f"{who} never mentioned {other}.", {index}, [(f"{who} never mentioned {value}.", "negation")]
            )

    def outcome(self, success: bool, index: int) -> Fact | None:
        intents = [i for (s, i) in self.facts.intents if s == self.service]
        phrase = next(
            (self.facts.intents[self.service, i] for i in intents if i.lower() in self.transcript.lower()),
            None,
        )
        phrase = phrase or (self.facts.intents[self.service, intents[0]] if intents else None)
        if phrase is None:
            return None
        good = [
            f"The request to {phrase} went through.",
            f"{self.agent} completed the request.",
        ]
        bad = [
            f"The request to {phrase} failed.",
            f"{self.agent} could not complete the request.",
        ]
        which = self.rng.randrange(2)
        text, twin = (good[which], bad[which]) if success else (bad[which], good[which])
        return Fact(text, {index}, [(twin, "outcome")])

    def count(self, value: str, index: int) -> Fact | None:
        if not value.isdigit():
            return None
        number = int(value)
        other = str(
            number + self.rng.choice([-2, -1, 1, 2, 3]) if number > 2 else number + self.rng.randint(1, 4)
        )
        text = self.rng.choice(
            [
                f"{self.agent} found {value} options.",
                f"There were {value} matching results.",
            ]
        )
        return Fact(text, {index}, [(text.replace(value, other, 1), "value")])

    def request(self, speaker: str | None, index: int) -> Fact:
        slot = self.facts.slots[self.service, self.slot]
        a = self.agent
        asks = {
            "USER": [f"{self.c} asked about the {slot}.", f"{self.c} wanted to know the {slot}.",
                     f"{self.c} asked {self.a} about the {slot}."],
            "SYSTEM": [f"{a} asked for the {slot}.", f"{a} needed to know the {slot}.",
                       f"{a} asked the customer for the {slot}."],
        }  # fmt: skip
        role = "USER" if speaker == "USER" else "SYSTEM"
        other = "SYSTEM" if role == "USER" else "USER"
        twins = [] if self.slot in self.said.requests.get(other, set()) else [
            (self.rng.choice(asks[other]), "speaker")
        ]  # fmt: skip
        return Fact(self.rng.choice(asks[role]), {index}, twins)


def _replace_last(text: str, old: str, new: str) -> str:
    at = text.rfind(old)
    return text[:at] + new + text[at + len(old) :]


def joined(first: Fact, second: Fact, rng: random.Random) -> Fact:
    """Two facts of different turns as one summary sentence; its twins perturb one part."""
    joiner = rng.choice([", and ", "; then ", ", after which "])

    def join(x: str, y: str) -> str:
        y = y if re.match(r"[A-Z]{2}|[A-Z][a-z]+ [A-Z]", y) else y[:1].lower() + y[1:]
        return x.rstrip(".") + joiner + y

    twins = [(join(t, second.text), p) for t, p in first.twins] + [
        (join(first.text, t), p) for t, p in second.twins
    ]
    return Fact(join(first.text, second.text), first.turns | second.turns, twins, first.value or second.value)


@dataclass
class Summary:
    """A summary of a dialogue in several of its facts (in the order of their turns), and its unsupported
    twin: the same sentences with one fact's perturbed claim in place of the fact."""

    facts: list[Fact]
    wrong: int  # the fact the twin perturbs
    twin: str
    perturbation: str

    def sentences(self, supported: bool) -> list[str]:
        texts = [f.text for f in self.facts]
        if not supported:
            texts[self.wrong] = self.twin
        return texts


def summary(found: DialogueClaims, sentences: int, rng: random.Random) -> Summary | None:
    """A :class:`Summary` of ``sentences`` facts of a dialogue; ``None`` when it has fewer facts."""
    facts = list({f.text: f for f in found.facts if f.twins}.values())
    if len(facts) < sentences:
        return None
    chosen = sorted(rng.sample(facts, sentences), key=lambda f: min(f.turns))
    wrong = rng.randrange(sentences)
    twin, perturbation = rng.choice(chosen[wrong].twins)
    return Summary(chosen, wrong, twin, perturbation)


def turn_window(turns: list[str], evidence: set[int], max_words: int, rng: random.Random) -> str | None:
    """Whole turns around the evidence turns up to ``max_words`` words, the evidence at a random place;
    ``None`` when the evidence turns alone do not fit."""
    start, end = min(evidence), max(evidence)
    sizes = [len(t.split()) for t in turns]
    words = sum(sizes[start : end + 1])
    if words > max_words:
        return None
    while True:
        sides = [i for i in (start - 1, end + 1) if 0 <= i < len(turns) and words + sizes[i] <= max_words]
        if not sides:
            return "\n".join(turns[start : end + 1])
        i = rng.choice(sides)
        words += sizes[i]
        start, end = min(start, i), max(end, i)


def absent_window(turns: list[str], fact: Fact, max_words: int, rng: random.Random) -> str | None:
    """A window of turns of the same dialogue without the fact's evidence turns or its slot value; ``None``
    for facts without a value (whether other turns imply an intent or an outcome is not certain)."""
    ends = [i for i in range(len(turns)) if i < min(fact.turns) or i > max(fact.turns)]
    if fact.value is None or not ends:
        return None
    window = turn_window(turns, {rng.choice(ends)}, max_words, rng)
    if window is None or any(turns[i] in window for i in fact.turns) or fact.value.lower() in window.lower():
        return None
    return window
