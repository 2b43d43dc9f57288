"""Checkable facts of a chatbot reply, and whether the sources a reply answers from state them.

Written for the facts customer-service bots get wrong -- money, percentages, dates, times of day,
durations, phone numbers, e-mail and web addresses, order, ticket and reference ids, and the names of
people, products and plans -- from how replies and policies write them, independently of any bot's code:
the audit measures a bot, so it must not share the bot's idea of what a fact is. Each fact has a canonical
``key``, so one fact written two ways matches: ``$50`` and ``50 dollars``, ``30-day`` and ``thirty days``,
``March 3`` and ``3rd of March``, ``(415) 555-0100`` and ``+1 415 555 0100``.

A name is a run of capitalised words; the first word of a sentence is left out (it is capitalised
anyway), so ``Chen`` of ``Howard Chen will call you`` is checked, and common capitalised function words
(``The``, ``Please``, ``You``...) are never names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# fmt: off
_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_CURRENCIES = {
    "$": "usd", "us$": "usd", "usd": "usd", "dollar": "usd", "dollars": "usd", "bucks": "usd", "cents": "usd",
    "€": "eur", "eur": "eur", "euro": "eur", "euros": "eur",
    "£": "gbp", "gbp": "gbp", "pound": "gbp", "pounds": "gbp",
    "₹": "inr", "rs": "inr", "rs.": "inr", "inr": "inr", "rupee": "inr", "rupees": "inr",
    "cad": "cad", "aud": "aud",
}
_NOT_NAMES = {
    "I", "I'm", "I'll", "I've", "You", "You're", "Your", "We", "We're", "Our", "Us", "They", "Their", "He",
    "She", "It", "It's", "Its", "My", "Me", "This", "That", "These", "Those", "The", "A", "An", "And", "Or",
    "But", "If", "So", "Please", "Hi", "Hello", "Hey", "Dear", "Thanks", "Thank", "Yes", "No", "Sorry",
    "Sure", "Note",
}
"""Capitalised words that are never (part of) a name."""
# fmt: on

_WORDS = (
    rf"(?:(?:{'|'.join(_TENS)})(?:[- ](?:{'|'.join(_UNITS[1:10])}))?|(?:a |one )?hundred|{'|'.join(_UNITS)})"
)
_DIGITS = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_QUANTITY = rf"(?:{_DIGITS}|{_WORDS})"
_MONTH_NAMES = "|".join(month.capitalize() for month in _MONTHS if month != "may")
_MONTH = rf"(?:{_MONTH_NAMES}|May|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\b\.?)"
_WEEKDAY = r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day"
_MULTIPLIERS = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "bn": 1e9, "billion": 1e9}
_SHORT_UNITS = {"min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour", "yr": "year", "yrs": "year"}
_NAME_WORD = (  # O'Neill, PayPal, iPhone, Chen
    r"\b(?:[A-Z][a-z]*['’][A-Z][a-z]+|[A-Z][a-z]*[A-Z][A-Za-z]*[a-z][A-Za-z]*|[a-z]+[A-Z][A-Za-z]*"
    r"|[A-Z][a-z]+)\b"
)
_SENTENCE_BREAK = re.compile(r"[.!?:;\n]['\"”’)\]]*\s*$")


@dataclass(frozen=True)
class FactMention:
    """A checkable fact as a text mentions it (a fact of a dialogue is :class:`csml.judge.dialogues.Fact`).

    Attributes:
        kind: ``email``, ``url``, ``date``, ``time``, ``amount``, ``percentage``, ``phone``, ``identifier``,
            ``duration``, ``number`` or ``name``.
        text: The fact as written (``$1,500``, ``March 3rd``).
        key: Canonical form compared between a reply and its sources (``amount usd 1500``).
        start: Offset of ``text`` in the text it was found in.
        value: The quantity of a numeric fact (amount, percentage, duration, number), else None.
    """

    kind: str
    text: str
    key: str
    start: int
    value: float | None = None


def _number(text: str) -> float:
    """The value of a number written in digits (``1,500.25``) or words (``thirty``, ``twenty-four``)."""
    text = text.lower()
    if text[0].isdigit():
        return float(text.replace(",", ""))
    if text.endswith("hundred"):
        return 100.0
    words = re.split(r"[- ]", text)
    return float(_TENS.get(words[0], 0) + sum(_UNITS.index(w) for w in words if w in _UNITS))


def _numeric(kind: str, m: re.Match[str], value: float, key: str) -> FactMention:
    return FactMention(kind, m[0], f"{kind} {key}", m.start(), value)


def _amount(m: re.Match[str]) -> FactMention:
    written = (m["cur"] or m["cur_after"]).lower()
    value = _number(m["num"] or m["num_before"]) * _MULTIPLIERS.get(
        (m["mult"] or m["mult_after"] or "").lower(), 1
    )
    if written == "cents":
        value /= 100
    return _numeric("amount", m, value, f"{_CURRENCIES[written]} {value:g}")


def _percentage(m: re.Match[str]) -> FactMention:
    value = _number(m["num"])
    return _numeric("percentage", m, value, f"{value:g}")


def _duration(m: re.Match[str]) -> FactMention:
    value, unit = _number(m["num"]), m["unit"].lower()
    unit = _SHORT_UNITS.get(unit, unit.removesuffix("s"))
    qualifier = f"{m['qualifier'].lower()} " if m["qualifier"] else ""
    return _numeric("duration", m, value, f"{value:g} {qualifier}{unit}")


def _bare_number(m: re.Match[str]) -> FactMention:
    value = _number(m["num"])
    return _numeric("number", m, value, f"{value:g}")


def _date(m: re.Match[str]) -> FactMention:
    if m["weekday"]:
        return FactMention("date", m[0], f"date {m['weekday'].lower()}", m.start())
    if m["num_a"]:  # d/m/y or m/d/y: the order is the writer's, so the parts are compared as written
        return FactMention(
            "date", m[0], f"date {int(m['num_a'])}/{int(m['num_b'])}/{int(m['num_y'])}", m.start()
        )
    if m["iso_y"]:
        month, day, year = int(m["iso_m"]), int(m["iso_d"]), m["iso_y"]
    else:
        name = (m["mon"] or m["mon_after"] or m["mon_year"] or m["mon_alone"]).lower()[:3]
        month = next(i for i, full in enumerate(_MONTHS, start=1) if full.startswith(name))
        day = int(m["day"] or m["day_before"] or 0)
        year = m["year"] or m["year_after"] or m["year_only"] or ""
    return FactMention("date", m[0], f"date {month}-{day or ''}-{year}", m.start())


def _time(m: re.Match[str]) -> FactMention:
    if m["word"]:
        return FactMention(
            "time", m[0], "time 12:00" if m["word"].lower() == "noon" else "time 00:00", m.start()
        )
    hour, minute = int(m["hour"] or m["hour_only"]), int(m["minute"] or 0)
    meridiem = (m["ampm"] or m["ampm_only"] or "").lower().replace(".", "")
    if meridiem == "pm" and hour < 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    return FactMention("time", m[0], f"time {hour:02d}:{minute:02d}", m.start())


def _phone(m: re.Match[str]) -> FactMention | None:
    digits = re.sub(r"\D", "", m[0])
    separated = m[0].startswith("+") or bool(re.search(r"[\s().-]", m[0]))
    if not 7 <= len(digits) <= 15 or (not separated and len(digits) < 10):
        return None
    return FactMention("phone", m[0], f"phone {digits[-10:]}", m.start())  # with or without a country code


def _identifier(m: re.Match[str]) -> FactMention:
    group = "id" if "id" in m.re.groupindex else 0
    return FactMention(
        "identifier", m[group], "identifier " + re.sub(r"[-#]", "", m[group]).upper(), m.start(group)
    )


def _url(m: re.Match[str]) -> FactMention:
    text = m[0].rstrip(".,;:!?")
    return FactMention(
        "url", text, "url " + re.sub(r"^(?:https?://)?(?:www\.)?", "", text.lower()).rstrip("/"), m.start()
    )


def _opens_sentence(text: str, start: int) -> bool:
    """Whether ``text[start:]`` begins a sentence (looking back a few characters, not the whole text)."""
    before = text[max(0, start - 8) : start]
    return not before.strip() or _SENTENCE_BREAK.search(before) is not None


def _name(m: re.Match[str]) -> FactMention | None:
    words, start = m[0].split(" "), m.start()
    if _opens_sentence(m.string, start) and not re.match(r"[a-z]|[A-Z][a-z]+[A-Z]", words[0]):
        start += len(words[0]) + 1
        words = words[1:]
    edges = _NOT_NAMES | {"&"}
    while words and words[0] in edges:
        start += len(words[0]) + 1
        words = words[1:]
    while words and words[-1] in edges:
        words = words[:-1]
    if not words or any(w in _NOT_NAMES for w in words):
        return None
    text = " ".join(words)
    return FactMention("name", text, f"name {text.lower()}", start)


_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], FactMention | None]], ...] = (
    (
        re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"),
        lambda m: FactMention("email", m[0], f"email {m[0].lower()}", m.start()),
    ),
    (
        re.compile(
            r"\bhttps?://[^\s<>()\[\]\"']+|\bwww\.[^\s<>()\[\]\"']+"
            r"|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|co|gov|edu|info|biz|app|shop|store|help|us|uk|in)\b"
            r"(?:/[^\s<>()\[\]\"']*)?",
            re.IGNORECASE,
        ),
        _url,
    ),
    (
        re.compile(
            rf"\b(?P<iso_y>\d{{4}})-(?P<iso_m>\d{{1,2}})-(?P<iso_d>\d{{1,2}})\b"
            rf"|\b(?P<num_a>\d{{1,2}})[/.](?P<num_b>\d{{1,2}})[/.](?P<num_y>\d{{4}}|\d{{2}})\b"
            rf"|\b(?P<mon>{_MONTH})\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{{4}})\b)?"
            rf"|\b(?P<day_before>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon_after>{_MONTH})"
            rf"(?:,?\s+(?P<year_after>\d{{4}})\b)?"
            rf"|\b(?P<mon_year>{_MONTH})\s+(?P<year_only>\d{{4}})\b"
            rf"|\b(?P<mon_alone>{_MONTH_NAMES})\b"  # not May alone: "May I help you?"
            rf"|\b(?P<weekday>{_WEEKDAY})s?\b"
        ),
        _date,
    ),
    (
        re.compile(
            r"\b(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?:\s?(?P<ampm>[ap]\.m\.|[ap]m\b))?"
            r"|\b(?P<hour_only>1[0-2]|0?[1-9])\s?(?P<ampm_only>[ap]\.m\.|[ap]m\b)"
            r"|\b(?P<word>noon|midnight)\b",
            re.IGNORECASE,
        ),
        _time,
    ),
    (
        re.compile(
            rf"(?P<cur>US\$|[$€£₹]|\b(?:USD|EUR|GBP|INR|CAD|AUD|Rs\.?)(?=[\s\d]))\s?(?P<num>{_DIGITS})"
            rf"(?:\s?(?P<mult>k|m|bn|thousand|million|billion)\b)?"
            rf"|(?<![\w.,])(?P<num_before>{_DIGITS})\s?(?P<mult_after>thousand|million|billion)?\s?"
            rf"(?P<cur_after>USD|EUR|GBP|INR|CAD|AUD|dollars?|euros?|pounds|rupees?|cents|bucks)\b",
            re.IGNORECASE,
        ),
        _amount,
    ),
    (re.compile(rf"(?<![\w.,])(?P<num>{_QUANTITY})\s?(?:%|per\s?cent\b)", re.IGNORECASE), _percentage),
    (re.compile(r"(?<![\w+.,])\+?\(?\d{1,4}\)?(?:[\s.-]?\(?\d{2,4}\)?){1,5}(?!\w)"), _phone),
    (  # an id after the word naming it: "order number 48213", "ticket #A-17", "reference is xk42p"
        re.compile(
            r"\b(?:order|ticket|case|reference|ref|confirmation|tracking|booking|invoice|claim|transaction"
            r"|account|member(?:ship)?)(?:\s+(?:id|number|no\.?|num|code))?\s*(?:is\s+)?[:#]?\s*"
            r"(?P<id>(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{2,}[A-Za-z0-9])\b",
            re.IGNORECASE,
        ),
        _identifier,
    ),
    (  # an id by its shape: "#48213", "ORD-48213", "AB12C9", "hchen1" (not "16-digit" or "100th")
        re.compile(
            r"#\d{3,}\b"
            r"|\b(?=[A-Z0-9-]*[A-Z])(?=[A-Z0-9-]*\d)[A-Z0-9]+(?:-[A-Z0-9]+)+\b"
            r"|\b(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{5,}\b"
            r"|\b(?=[a-z]*\d)(?=\d*[a-z])(?!\d+(?:st|nd|rd|th)\b)[a-z0-9]{5,}\b"
        ),
        _identifier,
    ),
    (
        re.compile(
            rf"(?<![\w.,])(?P<num>{_QUANTITY})[\s-]+(?:(?P<qualifier>business|working|calendar|banking)\s+)?"
            r"(?P<unit>seconds?|minutes?|mins?|hours?|hrs?|days?|nights?|weeks?|months?|years?|yrs?)\b",
            re.IGNORECASE,
        ),
        _duration,
    ),
    (re.compile(rf"(?<![\w.,])(?P<num>{_DIGITS})(?:st|nd|rd|th)?(?!\w|[.,]\d)"), _bare_number),
    (re.compile(rf"{_NAME_WORD}(?: (?:& )?{_NAME_WORD})*"), _name),
)
"""(pattern, fact of a match or None) by priority: a span taken by an earlier rule is not matched again."""


def extract_facts(text: str) -> list[FactMention]:
    """The checkable facts of ``text``, in order of appearance, no two overlapping."""
    facts: list[FactMention] = []
    taken: list[tuple[int, int]] = []
    for pattern, build in _RULES:
        for match in pattern.finditer(text):
            if any(s < match.end() and match.start() < e for s, e in taken):
                continue
            if (fact := build(match)) is not None:
                facts.append(fact)
                taken.append(match.span())
    return sorted(facts, key=lambda fact: fact.start)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("’", "'").lower()).strip()


class KnownFacts:
    """What a set of source texts states: their facts' keys and numbers, and their text.

    A fact is supported when a source states a fact with the same key (``$50`` for ``50 dollars``), when its
    text occurs in a source as a whole (``Chen`` in ``Howard Chen``), or, for a bare number, when a source
    states the same quantity in any form (``30`` for ``thirty days``).

    Args:
        texts: The sources (returned contexts, reference passages, the question, the knowledge base).
    """

    def __init__(self, texts: Iterable[str]) -> None:
        texts = list(texts)
        self.text = _normalise(" \n ".join(texts))
        facts = [fact for text in texts for fact in extract_facts(text)]
        self.keys = {fact.key for fact in facts}
        self.values = {fact.value for fact in facts if fact.value is not None}

    def supports(self, fact: FactMention) -> bool:
        """Whether the sources state ``fact``."""
        if fact.key in self.keys or (fact.kind == "number" and fact.value in self.values):
            return True
        written = re.escape(_normalise(fact.text))
        return re.search(rf"(?<![\w$€£₹.,]){written}(?!\w|[.,]\d)", self.text) is not None
