"""FactCC-style perturbations that turn a claim a passage supports into one it does not support.

Each perturbation is a function ``(claim, rng, pool) -> str | None`` that returns a changed claim, or ``None``
when it does not apply to this claim (no number to swap, no verb to negate). They are documented here because
the judge learns exactly what they teach; ``PERTURBATIONS`` names them in the order training data uses them.

- ``number``: one number (count, amount, percentage, duration) becomes a different one.
- ``unit``: a time unit or frequency changes (days -> weeks, monthly -> annually).
- ``negation``: a modal or auxiliary verb is negated, or an existing negation removed; always <-> never.
- ``entity``: a capitalised name (product, member tier, organisation) becomes one from another passage.
- ``other_passage``: a sentence of a different, lexically similar passage (an on-topic but unsupported claim).
- ``invented_policy``: a true sentence followed by an invented policy clause (a partly supported answer is not
  supported).
- ``antonym``: one word becomes its opposite (before -> after, minimum -> maximum, approved -> declined).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from csml.registry import Registry

Perturbation = Callable[[str, random.Random, "PerturbationPool"], "str | None"]

PERTURBATIONS: Registry[Perturbation] = Registry("perturbations", "perturbation", plugins=False)
"""The perturbations by name, in the order training data uses them (no plugins: the judge's training data
must not depend on what else is installed)."""


@dataclass
class PerturbationPool:
    """What perturbations draw replacements from: sentences and entities of the other passages."""

    entities: list[str] = field(default_factory=list)
    similar_sentences: list[str] = field(default_factory=list)


_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve"]
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


@PERTURBATIONS.register("number")
def swap_number(claim: str, rng: random.Random, pool: PerturbationPool) -> str | None:
    spans = [(m.start(), m.end(), m.group(0)) for m in _NUMBER.finditer(claim)]
    spans += [(m.start(), m.end(), m.group(0)) for m in _NUMBER_WORD.finditer(claim)]
    if not spans:
        return None
    start, end, found = rng.choice(spans)
    return claim[:start] + _other_number(found, rng) + claim[end:]


def _other_number(found: str, rng: random.Random) -> str:
    if found.lower() in _NUMBER_WORDS:
        choices = [w for w in _NUMBER_WORDS if w != found.lower()]
        word = rng.choice(choices)
        return word.capitalize() if found[0].isupper() else word
    value = float(found.replace(",", ""))
    decimals = len(found.split(".")[1]) if "." in found else 0
    while True:
        factor = rng.choice([0.25, 0.5, 2, 3, 10]) if value > 10 else 1
        new = value * factor if factor != 1 else value + rng.choice([-3, -2, -1, 1, 2, 3, 5])
        if new > 0 and round(new, decimals) != value:
            break
    text = f"{new:,.{decimals}f}" if "," in found else f"{new:.{decimals}f}"
    return text


_UNITS = [
    ["hours", "days", "weeks", "months", "years"],
    ["hour", "day", "week", "month", "year"],
    ["daily", "weekly", "monthly", "quarterly", "annually"],
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ],
]  # fmt: skip


@PERTURBATIONS.register("unit")
def swap_unit(claim: str, rng: random.Random, pool: PerturbationPool) -> str | None:
    found = [(m, group) for group in _UNITS for m in re.finditer(r"\b(" + "|".join(group) + r")\b", claim)]
    if not found:
        return None
    match, group = rng.choice(found)
    other = rng.choice([unit for unit in group if unit != match.group(0)])
    return claim[: match.start()] + other + claim[match.end() :]


_NEGATIONS = [
    (r"\bcannot\b", "can"),
    (r"\bcan not\b", "can"),
    (r"\bcan't\b", "can"),
    (r"\bcan\b", "cannot"),
    (r"\b(is|are|was|were|will|should|must|may|does|do|did|would|could|has|have) not\b", r"\1"),
    (r"\b(isn't|aren't|won't|shouldn't|doesn't|don't|didn't)\b", None),
    (r"\b(is|are|will|should|must|may|would|could)\b", r"\1 not"),
    (r"\balways\b", "never"),
    (r"\bnever\b", "always"),
    (r"\bunlimited\b", "limited"),
    (r"\bno\b", "a"),
    (r"\bfree of charge\b", "charged"),
]
_CONTRACTIONS = {
    "isn't": "is", "aren't": "are", "won't": "will", "shouldn't": "should",
    "doesn't": "does", "don't": "do", "didn't": "did",
}  # fmt: skip


@PERTURBATIONS.register("negation")
def negate(claim: str, rng: random.Random, pool: PerturbationPool) -> str | None:
    for pattern, replacement in _NEGATIONS:
        match = re.search(pattern, claim, flags=re.IGNORECASE)
        if match is None:
            continue
        new = _CONTRACTIONS[match.group(0).lower()] if replacement is None else match.expand(replacement)
        if match.group(0)[0].isupper():
            new = new[0].upper() + new[1:]
        return claim[: match.start()] + new + claim[match.end() :]
    return None


_ENTITY = re.compile(r"(?<=[a-z,;:] )((?:[A-Z][A-Za-z0-9&'-]+)(?: [A-Z][A-Za-z0-9&'-]+)*)")


def entities(text: str) -> list[str]:
    """Capitalised names that are not at the start of a sentence ("Gold members", "HDFC Bank")."""
    return [m.group(1) for m in _ENTITY.finditer(text)]


@PERTURBATIONS.register("entity")
def swap_entity(claim: str, rng: random.Random, pool: PerturbationPool) -> str | None:
    found = list(_ENTITY.finditer(claim))
    candidates = [e for e in pool.entities if e not in claim]
    if not found or not candidates:
        return None
    match = rng.choice(found)
    return claim[: match.start(1)] + rng.choice(candidates) + claim[match.end(1) :]


@PERTURBATIONS.register("other_passage")
def other_passage(claim: str, rng: random.Random, pool: PerturbationPool) -> str | None:
    candidates = [s for s in pool.similar_sentences if s != claim]
    return rng.choice(candidates) if candidates else None


_INVENTED = [
    "There is no fee for this.",
    "A fee of {n} applies to this request.",
    "This is only available to premium members.",
    "You will receive a full refund within {n} business days.",
    "You can also do this by visiting any branch on Sundays.",
    "No documents are required.",
    "This offer is valid until the end of {month}.",
    "Customers get a {n}% discount on the first order.",
    "The request is processed automatically within {n} hours.",
    "You must first call our support line at 1-800-555-{n:04d}.",
    "This does not apply to accounts opened before {year}.",
    "Your manager must approve it in writing.",
]


@PERTURBATIONS.register("invented_policy")
def invented_policy(claim: str, rng: random.Random, pool: PerturbationPool) -> str | None:
    template = rng.choice(_INVENTED)
    clause = template.format(n=rng.randint(2, 90), month=rng.choice(_UNITS[4]), year=rng.randint(2010, 2024))
    return f"{claim.rstrip()} {clause}" if claim.rstrip().endswith((".", "!", "?")) else f"{claim}. {clause}"


_ANTONYMS = [
    ("increase", "decrease"), ("increases", "decreases"), ("before", "after"), ("earlier", "later"),
    ("more", "less"), ("minimum", "maximum"), ("higher", "lower"), ("allowed", "not allowed"),
    ("available", "unavailable"), ("eligible", "ineligible"), ("accepted", "rejected"), ("accept", "reject"),
    ("approve", "decline"), ("approved", "declined"), ("include", "exclude"), ("includes", "excludes"),
    ("first", "last"), ("online", "in person"), ("open", "closed"), ("full", "partial"), ("add", "remove"),
    ("enable", "disable"), ("required", "optional"), ("domestic", "international"), ("above", "below"),
    ("receive", "send"), ("buy", "sell"), ("lowest", "highest"), ("start", "end"), ("refund", "charge"),
]  # fmt: skip


@PERTURBATIONS.register("antonym")
def antonym(claim: str, rng: random.Random, pool: PerturbationPool) -> str | None:
    """One word becomes its opposite (before -> after, minimum -> maximum, approved -> declined)."""
    pairs = [(a, b) for a, b in _ANTONYMS] + [(b, a) for a, b in _ANTONYMS]
    found = [(m, b) for a, b in pairs for m in re.finditer(rf"\b{a}\b", claim, flags=re.IGNORECASE)]
    if not found:
        return None
    match, other = rng.choice(found)
    other = other.capitalize() if match.group(0)[0].isupper() else other
    return claim[: match.start()] + other + claim[match.end() :]


def perturb(
    claim: str, rng: random.Random, pool: PerturbationPool, kinds: Sequence[str] = tuple(PERTURBATIONS)
) -> tuple[str, str] | None:
    """A perturbed claim and the perturbation's name, trying ``kinds`` in random order; ``None`` if none apply."""
    for name in rng.sample(list(kinds), len(kinds)):
        changed = PERTURBATIONS[name](claim, rng, pool)
        if changed is not None and changed.strip() != claim.strip():
            return changed, name
    return None


# Meaning-preserving rewrites of supported claims, so that a supported claim is not always a copy of its
# knowledge: word and phrase synonyms, second person to third, and framings an answer or summary adds.
_SYNONYMS = [
    ("purchase", "buy"), ("receive", "get"), ("request", "ask for"), ("assist", "help"), ("obtain", "get"),
    ("customer", "client"), ("customers", "clients"), ("contact", "reach"), ("modify", "change"),
    ("cancel", "call off"), ("approximately", "about"), ("immediately", "right away"), ("require", "need"),
    ("requires", "needs"), ("provide", "give"), ("provides", "gives"), ("submit", "send in"),
    ("within", "in under"), ("additional", "extra"), ("however", "but"), ("ensure", "make sure"),
    ("verify", "check"), ("inform", "tell"), ("commence", "start"), ("terminate", "end"),
    ("sufficient", "enough"), ("prior to", "before"), ("in order to", "to"), ("utilize", "use"),
    ("account holder", "owner of the account"), ("fee", "charge"), ("fees", "charges"),
    ("shipping", "delivery"), ("item", "product"), ("items", "products"), ("agent", "representative"),
    ("quickly", "fast"), ("purchased", "bought"), ("received", "got"), ("requested", "asked for"),
]  # fmt: skip
_YOU = [
    (r"\bYou can\b", "Customers can"), (r"\bYou may\b", "Customers may"), (r"\bYou must\b", "Customers must"),
    (r"\bYou will\b", "The customer will"), (r"\bYou need to\b", "Customers need to"),
    (r"\byou can\b", "customers can"), (r"\byour\b", "their"), (r"\bYour\b", "Their"),
]  # fmt: skip
_FRAMES = [
    "The policy states that {}", "According to the guidelines, {}", "The agent explained that {}",
    "The customer was told that {}", "It was mentioned that {}", "Support confirmed that {}",
]  # fmt: skip


def paraphrase(claim: str, rng: random.Random) -> str:
    """``claim`` reworded without changing what it says: synonyms, third person and a framing, each drawn at
    random (at least one change when one applies)."""
    text = claim
    found = [(a, b) for a, b in _SYNONYMS if re.search(rf"\b{a}\b", text)]
    for a, b in rng.sample(found, min(len(found), rng.randint(1, 3))):
        text = re.sub(rf"\b{a}\b", b, text, count=1)
    if rng.random() < 0.5:
        for pattern, replacement in _YOU:
            text = re.sub(pattern, replacement, text)
    if rng.random() < 0.4 and text[:1].isupper() and not re.match(r"[A-Z]{2}|[A-Z][a-z]+ [A-Z]", text):
        text = rng.choice(_FRAMES).format(text[0].lower() + text[1:])
    return text
