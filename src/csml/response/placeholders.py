"""Template placeholders in agent responses, such as ``{{Order Number}}``.

Customer-service corpora (Bitext among them) write the parts of a reply that depend on the customer or the
business as ``{{Name}}`` placeholders. A response model must neither learn the braces as noise nor invent
values for them, so csml handles them explicitly:

- :func:`find_placeholders` lists the placeholders of a text (what a reply asks the caller to fill in);
- :func:`to_slot_tokens` rewrites each one to a typed slot token (``{{Order Number}}`` -> ``[order_number]``)
  before tokenisation, so every order number looks the same to the encoder;
- :func:`restore_placeholders` turns slot tokens back into the original placeholders, and
  :func:`fill_placeholders` substitutes values the caller knows.

Only innermost ``{{...}}`` pairs are placeholders: in the malformed ``{{Upgrade to {{Account Type}}`` of the
Bitext data, ``{{Account Type}}`` is one and the dangling ``{{Upgrade to`` stays text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
"""An innermost ``{{Name}}`` placeholder; group 1 is the name without surrounding spaces."""

SLOT_TOKEN = re.compile(r"\[([a-z0-9]+(?:_[a-z0-9]+)*)\]")


def slot_name(placeholder: str) -> str:
    """The typed slot of a placeholder name: ``"Order Number"`` -> ``"order_number"``."""
    return "_".join(re.findall(r"[a-z0-9]+", placeholder.lower())) or "slot"


def find_placeholders(text: str) -> list[str]:
    """Names of the placeholders in ``text``, in order of first appearance, without duplicates.

    >>> find_placeholders("Order {{Order Number}} ships to {{ Address }}; see {{Order Number}}")
    ['Order Number', 'Address']
    """
    return list(dict.fromkeys(match.group(1) for match in PLACEHOLDER.finditer(text)))


def to_slot_tokens(text: str) -> str:
    """``text`` with every placeholder replaced by its slot token (``{{Order Number}}`` -> ``[order_number]``)."""
    return PLACEHOLDER.sub(lambda match: f"[{slot_name(match.group(1))}]", text)


def restore_placeholders(text: str, names: list[str]) -> str:
    """Inverse of :func:`to_slot_tokens` for the placeholder ``names`` the original text had.

    Slot tokens that match none of ``names`` (or brackets that were in the text already) are left alone.
    """
    by_slot = {slot_name(name): name for name in names}

    def restore(match: re.Match[str]) -> str:
        name = by_slot.get(match.group(1))
        return "{{" + name + "}}" if name is not None else match.group(0)

    return SLOT_TOKEN.sub(restore, text)


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    """``text`` with the placeholders named in ``values`` replaced by their value; others stay as they are.

    Names match after normalisation, so ``{"order number": "A-1"}`` fills ``{{Order Number}}``.
    """
    by_slot = {slot_name(name): str(value) for name, value in values.items()}

    def fill(match: re.Match[str]) -> str:
        return by_slot.get(slot_name(match.group(1)), match.group(0))

    return PLACEHOLDER.sub(fill, text)
