"""Rule-based entity extraction from customer messages (emails, phone numbers, amounts, dates, ids).

The same patterns locate the facts that :mod:`csml.bot.fabrication` perturbs, so what the bot extracts
and what it can corrupt agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
NUMBER = re.compile(rf"(?<![\w.,]){_NUM}(?!\w|[.,]\d)")
"""A number as written in text: ``16``, ``1,500``, ``7.5`` (not the digits inside ``hchen1`` or ``2FA``)."""
AMOUNT = re.compile(
    rf"(?:[$€£₹]|\b(?:Rs|INR|USD|EUR|GBP)\.?)\s?{_NUM}"
    rf"|\b{_NUM}\s?(?:dollars|euros|pounds|rupees|lakhs?|crores?)\b",
    re.IGNORECASE,
)
DATE = re.compile(
    rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b"
    rf"|\b\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\b(?:,?\s+\d{{4}})?"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?"
    rf"|\b(?:{'|'.join(WEEKDAYS)})s?\b",
)
PHONE = re.compile(r"(?<![\w$€£₹])\+?\d[\d ()-]{7,}\d\b")
ORDER_ID = re.compile(
    r"\b(?:order|account|ticket|reference)\s*(?:id|number|no\.?)?\s*(?:is\s*)?[:#]?\s*"
    r"(?=[A-Z0-9-]*\d)([A-Z0-9][A-Z0-9-]{3,})\b",
    re.IGNORECASE,
)

_PATTERNS = (("email", EMAIL), ("amount", AMOUNT), ("date", DATE), ("order_id", ORDER_ID), ("phone", PHONE))


@dataclass(frozen=True)
class Entity:
    """A typed span of the message: ``type`` is email, amount, date, order_id or phone."""

    type: str
    value: str
    start: int
    end: int


def extract_entities(text: str) -> list[Entity]:
    """Non-overlapping entities in order of appearance; earlier pattern types win overlaps."""
    found: list[Entity] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            group = 1 if pattern.groups else 0
            start, end = match.span(group)
            if any(start < other.end and other.start < end for other in found):
                continue
            found.append(Entity(kind, match.group(group), start, end))
    return sorted(found, key=lambda entity: entity.start)
