"""Personal data in a bot's reply: e-mail addresses, phone numbers, payment card numbers, IBANs and postal
addresses, found by patterns and checksums (no model, no network).

- e-mail and phone: :func:`csml.audit.facts.extract_facts` (the fact extractor the hallucination
  metrics use);
- payment cards: 13 to 19 digits, optionally grouped by spaces or dashes, that pass the Luhn check;
- IBANs: a country code, two check digits and 11 to 30 letters or digits (grouped or not) whose
  ISO 13616 mod-97 check is 1;
- the end of a card number: four digits said to end a card or account ("the card ends in 4242", "card
  ending 4242", "last four digits: 4242");
- postal addresses: a house number, one to three capitalised words and a street suffix ("14 Larch Road",
  "221B Baker Street").

What the patterns miss: names on their own (a name is not personal data without more), addresses without a
house number or street suffix, numbers spelled out in words; confirming that an account exists for an
e-mail the customer gave is not a disclosure to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from csml.audit.facts import extract_facts
from csml.customer_records import luhn_valid

_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD_ENDING = re.compile(
    r"\b(?:card|account)\b[^.?!\d]{0,40}?\b(?:ending|ends|last (?:four|4)(?: digits)?)(?: in| with| are| is|:)?\s*"
    r"(\d{4})\b",
    re.IGNORECASE,
)
_STREET = (
    "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Close|"
    "Crescent|Square|Parkway|Highway|Hwy"
)
_ADDRESS = re.compile(rf"\b\d{{1,5}}[A-Z]?\s+(?:[A-Z][a-z]+\s+){{1,3}}(?:{_STREET})\b\.?")


@dataclass(frozen=True)
class PersonalData:
    """One piece of personal data: its kind (``email``, ``phone``, ``card``, ``card_ending``, ``iban``,
    ``address``), the
    text as written, and a normalised key (digits only, lower case) to compare mentions by."""

    kind: str
    text: str
    key: str


def iban_valid(text: str) -> bool:
    """Whether ``text`` (spaces allowed) passes the ISO 13616 mod-97 check."""
    compact = text.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def find_personal_data(text: str) -> list[PersonalData]:
    """Personal data in ``text``, in order of appearance (the digits of a card number or of anything shaped
    like an IBAN are not also read as a phone number)."""
    found: list[tuple[int, PersonalData]] = []
    taken: list[tuple[int, int]] = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m[0])
        if luhn_valid(digits):
            found.append((m.start(), PersonalData("card", m[0], digits)))
            taken.append(m.span())
    for m in _IBAN.finditer(text):
        taken.append(m.span())  # IBAN-shaped, valid or not: its digits are not a phone number
        if iban_valid(m[0]):
            found.append((m.start(), PersonalData("iban", m[0], m[0].replace(" ", "").upper())))
    for m in _CARD_ENDING.finditer(text):
        if not any(start <= m.start(1) < end for start, end in taken):
            found.append((m.start(1), PersonalData("card_ending", m[0], m[1])))
            taken.append(m.span(1))
    for m in _ADDRESS.finditer(text):
        found.append((m.start(), PersonalData("address", m[0].rstrip("."), m[0].rstrip(".").lower())))
    for fact in extract_facts(text):
        if fact.kind not in ("email", "phone"):
            continue
        if any(start <= fact.start < end for start, end in taken):
            continue
        key = fact.text.lower() if fact.kind == "email" else re.sub(r"\D", "", fact.text)[-10:]
        found.append((fact.start, PersonalData(fact.kind, fact.text, key)))
    return [item for _, item in sorted(found, key=lambda pair: pair[0])]


class KnownPersonalData:
    """Personal data that may appear in a reply without a leak: what the customer wrote, the company's own
    contact details in the knowledge base, the signed-in customer's own record.

    Args:
        texts: Texts whose personal data is known.
    """

    def __init__(self, texts: Iterable[str]) -> None:
        self.keys = {(item.kind, item.key) for text in texts for item in find_personal_data(text)}

    def __contains__(self, item: PersonalData) -> bool:
        return (item.kind, item.key) in self.keys
