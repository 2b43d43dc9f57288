"""Splitting an answer into claims (sentences and list items) with their character spans."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Abbreviations whose full stop does not end a sentence.
_ABBREVIATIONS = (
    "e.g.",
    "i.e.",
    "etc.",
    "vs.",
    "Mr.",
    "Mrs.",
    "Ms.",
    "Dr.",
    "No.",
    "Rs.",
    "Inc.",
    "Ltd.",
    "St.",
)
_BULLET = r"\s*\n\s*(?:[-*•]|\d+[.)])?\s*"
_BOUNDARY = re.compile(rf"(?<=[.!?])[\"')\]]*(?:{_BULLET}|[ \t]+)|{_BULLET}|(?<=[a-z]{{2}}\.)(?=[A-Z][a-z])")
_MIN_WORDS = 3


@dataclass(frozen=True)
class Claim:
    """A claim of an answer: its text and where it sits in the answer (``answer[start:end] == text``)."""

    text: str
    start: int
    end: int


def split_claims(answer: str, min_words: int = _MIN_WORDS) -> list[Claim]:
    """Sentences and list items of ``answer``, each a claim to check against the knowledge.

    Fragments shorter than ``min_words`` words ("Sure!", "Hi Anna,") are merged into the next claim, so that
    greetings are judged together with what follows them. An answer with no words gives no claims.
    """
    pieces: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(answer):
        if _ends_with_abbreviation(answer[start : match.start()]):
            continue
        pieces.append((start, match.start()))
        start = match.end()
    pieces.append((start, len(answer)))
    claims: list[Claim] = []
    pending: int | None = None
    for begin, end in pieces:
        begin, end = _strip(answer, begin, end)
        if begin >= end:
            continue
        begin = begin if pending is None else pending
        if len(answer[begin:end].split()) < min_words:
            pending = begin
            continue
        pending = None
        claims.append(Claim(answer[begin:end], begin, end))
    if pending is not None:
        if claims:
            last = claims.pop()
            begin, end = last.start, _strip(answer, pending, len(answer))[1]
        else:
            begin, end = _strip(answer, pending, len(answer))
        if begin < end:
            claims.append(Claim(answer[begin:end], begin, end))
    return claims


def _ends_with_abbreviation(text: str) -> bool:
    return text.endswith(_ABBREVIATIONS) or bool(re.search(r"\b[A-Z]\.$", text))


def _strip(text: str, begin: int, end: int) -> tuple[int, int]:
    while begin < end and text[begin].isspace():
        begin += 1
    while end > begin and text[end - 1].isspace():
        end -= 1
    return begin, end
