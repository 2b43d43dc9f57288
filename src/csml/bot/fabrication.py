"""Fabricated-fact injection: perturbation functions that change one fact of a grounded answer.

Used by the reference bot to produce known hallucinations, so an audit's hallucination detection can be
scored against the bot's own record of what it corrupted. Kinds (``bot.faults.fabricate_kinds``):

- ``amount``: a money amount gets another value in the same currency and format (``$50`` -> ``$75``).
- ``number``: a bare number changes (``16-digit`` -> ``15-digit``, ``30 days`` -> ``60 days``); a year
  moves by one or two.
- ``date``: a month or weekday is swapped, or the day of a numeric date changes (``March 3`` -> ``June 3``).
- ``name``: a capitalised name that does not start a sentence is replaced by another name of the same
  text (an entity mix-up: ``[Verify Identity]`` -> ``[Send Link]``), or by a fictional one when the text
  has no other (``Howard Chen`` -> ``Maria Lopez``, ``NetBanking`` -> ``Northwind``).
- ``policy``: a policy word is flipped (``can`` -> ``cannot``, ``refundable`` -> ``non-refundable``,
  ``before`` -> ``after``, ``free`` -> ``chargeable``).

:func:`fabricate` picks one kind among those with a candidate in the text, and one candidate of it. When
no requested kind has a candidate, it appends a fabricated claim instead (kind ``claim``), so a reply
drawn for fabrication is always corrupted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from csml.bot.entities import AMOUNT, DATE, MONTHS, NUMBER, WEEKDAYS

FABRICATION_KINDS = ("amount", "number", "date", "name", "policy")

POLICY_SWAPS = {
    "cannot": "can",
    "can not": "can",
    "can't": "can",
    "can": "cannot",
    "must not": "must",
    "must": "need not",
    "not required": "required",
    "required": "not required",
    "mandatory": "optional",
    "optional": "mandatory",
    "not allowed": "allowed",
    "allowed": "not allowed",
    "non-refundable": "refundable",
    "refundable": "non-refundable",
    "free": "chargeable",
    "ineligible": "eligible",
    "eligible": "ineligible",
    "always": "never",
    "never": "always",
    "before": "after",
    "after": "before",
    "within": "only after",
    "minimum": "maximum",
    "maximum": "minimum",
    "will not": "will",
    "will": "will not",
    "should not": "should",
    "should": "should not",
    "immediately": "within 30 days",
    "increase": "decrease",
    "decrease": "increase",
}
PERSON_NAMES = ("Maria Lopez", "James O'Neill", "Priya Raman", "Tom Becker", "Aiko Tanaka")
ORGANISATION_NAMES = ("Northwind", "Contoso", "Fabrikam", "Globex", "Initech")
CLAIMS = (
    "A processing fee of $25 applies to this request.",
    "This is completed within 2 business days.",
    "This option is only available to premium members.",
    "You will receive a written confirmation by post within 14 days.",
)

_POLICY = re.compile(
    r"\b(" + "|".join(re.escape(w) for w in sorted(POLICY_SWAPS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_WORD = r"[A-Z][A-Za-z]*[a-z][A-Za-z]*"
_NAME = re.compile(rf"\b{_WORD}(?: {_WORD})*\b|\b[A-Z]{{3,}}\b")
_NOT_NAMES = {*MONTHS, *WEEKDAYS, "I", "OK", "FAQ", "ID", "PIN", "OTP", "ATM", "SMS", "URL"}
_DIGITS = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


@dataclass(frozen=True)
class Edit:
    """One fabricated change: ``text[start:end]`` (``original``) became ``replacement``."""

    kind: str
    start: int
    end: int
    original: str
    replacement: str


def change_number(value: str, rng: random.Random) -> str:
    """Another plausible value for a number written as ``value``, in the same format (commas, decimals)."""
    plain = value.replace(",", "")
    if "." in plain:
        decimals = len(plain.split(".")[1])
        new = float(plain) * rng.choice((0.5, 0.75, 1.5, 2.0))
        text = f"{new:,.{decimals}f}" if "," in value else f"{new:.{decimals}f}"
        return text if text != value else f"{float(plain) + 1:.{decimals}f}"
    number = int(plain)
    if len(plain) == 4 and 1900 <= number <= 2100:
        options = [number + d for d in (-2, -1, 1, 2)]
    else:
        options = [number + 1, number * 2, number + 10, round(number * 1.5), max(number // 2, 1)]
        if number > 1:
            options.append(number - 1)
    new = rng.choice([o for o in options if o != number])
    return f"{new:,}" if "," in value else str(new)


def _swap(word: str, pool: Sequence[str], rng: random.Random) -> str:
    return rng.choice([w for w in pool if w.lower() != word.lower()])


def _replace_date(value: str, rng: random.Random) -> str:
    for pool in (MONTHS, WEEKDAYS):
        for word in pool:
            match = re.search(rf"\b{word[:3]}[a-z]*", value)
            if match:
                full = next(w for w in pool if w.startswith(match.group()[:3]))
                new = _swap(full, pool, rng)
                new = new[:3] if len(match.group()) == 3 and match.group() != "May" else new
                return value[: match.start()] + new + value[match.end() :]
    day = re.search(r"\d+$" if re.match(r"\d{4}-", value) else r"^\d+", value)
    assert day is not None  # numeric dates always start (d/m/y) or end (ISO) with a day
    new_day = rng.choice([d for d in range(1, 29) if d != int(day.group())])
    return value[: day.start()] + f"{new_day:0{len(day.group())}d}" + value[day.end() :]


def _replace_amount(value: str, rng: random.Random) -> str:
    digits = _DIGITS.search(value)
    assert digits is not None  # AMOUNT matches always contain a number
    return value[: digits.start()] + change_number(digits.group(), rng) + value[digits.end() :]


def _replace_policy(value: str) -> str:
    new = POLICY_SWAPS[value.lower()]
    return new[0].upper() + new[1:] if value[0].isupper() else new


def _replace_name(value: str, rng: random.Random, text: str) -> str:
    others = sorted({text[s:e] for s, e in _name_spans(text)} - {value})
    return (
        rng.choice(others)
        if others
        else _swap(value, PERSON_NAMES if " " in value else ORGANISATION_NAMES, rng)
    )


def _spans(pattern: re.Pattern[str]) -> Callable[[str], list[tuple[int, int]]]:
    return lambda text: [m.span() for m in pattern.finditer(text)]


def _number_spans(text: str) -> list[tuple[int, int]]:
    taken = [m.span() for p in (AMOUNT, DATE) for m in p.finditer(text)]
    return [
        m.span() for m in NUMBER.finditer(text) if not any(s < m.end() and m.start() < e for s, e in taken)
    ]


def _name_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _NAME.finditer(text):
        before = text[: match.start()].rstrip()
        sentence_start = not before or before[-1] in ".!?:"
        if not sentence_start and not set(match.group().split()) <= _NOT_NAMES:
            spans.append(match.span())
    return spans


PERTURBERS: dict[
    str, tuple[Callable[[str], list[tuple[int, int]]], Callable[[str, random.Random, str], str]]
] = {
    "amount": (_spans(AMOUNT), lambda value, rng, text: _replace_amount(value, rng)),
    "number": (_number_spans, lambda value, rng, text: change_number(value, rng)),
    "date": (_spans(DATE), lambda value, rng, text: _replace_date(value, rng)),
    "name": (_name_spans, _replace_name),
    "policy": (_spans(_POLICY), lambda value, rng, text: _replace_policy(value)),
}
"""Each kind: (candidate spans in a text, replacement of a span's value given the generator and text)."""


def fabricate(
    text: str, rng: random.Random, kinds: Sequence[str] = FABRICATION_KINDS
) -> tuple[str, list[Edit]]:
    """Changes one fact of ``text``; returns the new text and the edit made.

    Args:
        text: A grounded answer.
        rng: Source of randomness (seeded by the caller for reproducible corruption).
        kinds: Kinds of fact that may be changed (see the module docstring).

    Raises:
        ValueError: For an unknown kind.
    """
    if unknown := [k for k in kinds if k not in PERTURBERS]:
        raise ValueError(f"unknown fabrication kind(s) {unknown}; known: {list(PERTURBERS)}")
    candidates = {kind: PERTURBERS[kind][0](text) for kind in kinds}
    available = [kind for kind in kinds if candidates[kind]]
    if not available:
        claim = rng.choice(CLAIMS)
        return f"{text} {claim}", [Edit("claim", len(text), len(text), "", claim)]
    kind = rng.choice(available)
    start, end = rng.choice(candidates[kind])
    original = text[start:end]
    replacement = PERTURBERS[kind][1](original, rng, text)
    return text[:start] + replacement + text[end:], [Edit(kind, start, end, original, replacement)]


def contradiction(previous: str, rng: random.Random) -> tuple[str, str] | None:
    """A sentence of ``previous`` (an earlier answer) restated with a number, amount, date or policy word
    changed -- (sentence, restated) -- or None when no sentence of it has one to change."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", previous) if len(s.split()) >= 4]
    rng.shuffle(sentences)
    for sentence in sentences:
        changed, edits = fabricate(sentence, rng, ("amount", "number", "date", "policy"))
        if edits[0].kind != "claim":
            return sentence, changed
    return None
