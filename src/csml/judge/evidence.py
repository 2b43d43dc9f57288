"""Evidence selection: the pieces of knowledge a claim is judged against.

Knowledge of any length and shape is cut into *units* -- speaker turns when the text is a transcript
("Customer: ..." lines), fields of a JSON record (flattened to "order.status: shipped" lines), else
sentences -- and the units are packed into *windows* of whole units up to a word
budget that fits the judge's encoder (the budget follows the model's ``max_length``). Windows overlap by
about half, so a claim whose evidence sits at the edge of one window is whole in the next. A unit longer than
the budget (a very long sentence or turn) is cut into overlapping word chunks.

Evidence spread over several windows (a summary sentence drawing on the first and the last turns of a call)
is covered by one more candidate, the *assembled* evidence: the units that share most content words with the
claim, in their original order, up to the same budget. A claim is scored against every candidate and keeps its
best score (see :class:`csml.judge.judge.GroundednessJudge`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from csml.judge.baselines import content_words
from csml.judge.claims import split_claims

# A speaker turn: a short label of at most four words, then a colon ("Agent:", "Customer 2:", "Mary Jones:").
_TURN = re.compile(r"^\s*[A-Za-z][\w.'[\]-]*(?: [\w.'-]+){0,3}\s*:\s+\S")
_MIN_TURN_LINES = 2


def is_transcript(text: str) -> bool:
    """Whether ``text`` looks like a conversation: at least two lines open with a speaker label."""
    return sum(bool(_TURN.match(line)) for line in text.splitlines()) >= _MIN_TURN_LINES


def flatten_json(text: str) -> str:
    """A JSON object or list as one ``path: value`` line per field; other text as it is."""
    if not text.lstrip().startswith(("{", "[")):
        return text
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    return "\n".join(f"{path}: {value}" for path, value in _fields(data, "")) or text


def _fields(data: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _fields(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _fields(value, f"{path}[{index}]" if path else f"[{index}]")
    else:
        yield path or "value", str(data)


def units(text: str) -> list[str]:
    """Speaker turns of a transcript (a line without a label continues the turn before it), fields of a JSON
    record, else sentences."""
    text = flatten_json(text)
    if not is_transcript(text):
        return [c.text for c in split_claims(text, min_words=1)]
    turns: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if _TURN.match(line) or not turns:
            turns.append(line)
        else:
            turns[-1] += " " + line
    return turns


def _chunks(unit: str, max_words: int) -> list[str]:
    """A unit cut into word chunks of at most ``max_words`` that overlap by half."""
    words = unit.split()
    if len(words) <= max_words:
        return [unit]
    stride = max(1, max_words // 2)
    return [" ".join(words[i : i + max_words]) for i in range(0, len(words) - max_words + stride, stride)]


def windows(text: str, max_words: int, overlap: float = 0.5) -> list[str]:
    """``text`` packed into windows of whole units of at most ``max_words`` words, each next window starting
    ``overlap`` of the way back into the one before (turns of a transcript stay on their own lines)."""
    pieces = [chunk for unit in units(text) for chunk in _chunks(unit, max_words)]
    if not pieces:
        return []
    joiner = "\n" if is_transcript(flatten_json(text)) else " "
    sizes = [len(p.split()) for p in pieces]
    out: list[str] = []
    start = 0
    while True:
        end, words = start, 0
        while end < len(pieces) and (end == start or words + sizes[end] <= max_words):
            words += sizes[end]
            end += 1
        out.append(joiner.join(pieces[start:end]))
        if end >= len(pieces):
            return out
        # the next window starts where the last `overlap` share of this one's words begins
        back, next_start = 0, end
        while next_start - 1 > start and back + sizes[next_start - 1] <= overlap * words:
            next_start -= 1
            back += sizes[next_start]
        start = next_start


def assembled(claim: str, knowledge: Sequence[str], max_words: int) -> str | None:
    """The units of ``knowledge`` sharing most content words with ``claim``, in order, up to ``max_words``.

    ``None`` when no unit shares a content word with the claim.
    """
    wanted = set(content_words(claim))
    pieces = [(t, u) for t, text in enumerate(knowledge) for u in units(text)]
    ranked = sorted(
        range(len(pieces)),
        key=lambda i: (
            -len(wanted & set(content_words(pieces[i][1]))) / (1 + len(pieces[i][1].split()) ** 0.5)
        ),
    )
    chosen, words = [], 0
    for i in ranked:
        if not wanted & set(content_words(pieces[i][1])):
            break
        size = len(pieces[i][1].split())
        if words + size > max_words:
            continue
        chosen.append(i)
        words += size
    if not chosen:
        return None
    joiner = "\n" if any(is_transcript(flatten_json(text)) for text in knowledge) else " "
    return joiner.join(pieces[i][1] for i in sorted(chosen))


def candidates(claim: str, knowledge: Sequence[str], max_words: int) -> list[str]:
    """Every piece of evidence ``claim`` is judged against: the windows of each knowledge text, and the
    assembled evidence when the knowledge does not fit in one window."""
    found = [w for text in knowledge for w in windows(text, max_words)]
    if len(found) > 1:
        extra = assembled(claim, knowledge, max_words)
        if extra is not None and extra not in found:
            found.append(extra)
    return found


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NEGATIONS = frozenset(
    ("not", "no", "never", "cannot", "can't", "don't", "doesn't", "didn't", "isn't", "aren't", "won't",
     "wasn't", "weren't", "nor", "none", "nothing", "without")
)  # fmt: skip
# Words a conversational reply adds around a quote ("yes, I think ..."), never facts on their own.
_FILLER = frozenset(
    ("yes", "yeah", "i", "think", "know", "well", "so", "oh", "actually", "really", "also", "it", "that",
     "this", "you", "me", "my", "we", "believe", "guess", "heard", "read", "sure", "right", "and", "but",
     "the", "a", "an", "of", "to", "is", "are", "was", "were", "its", "it's", "there", "they", "he", "she",
     "his", "her", "their", "in", "on", "at", "for", "with", "as", "by", "be", "been", "did", "do", "does",
     "have", "has", "had", "very", "just", "too", "like")
)  # fmt: skip
_MIN_QUOTE_TOKENS = 5
_MAX_FILLER = 3


def quoting_unit(claim: str, knowledge: Sequence[str]) -> str | None:
    """The sentence or turn of ``knowledge`` that ``claim`` quotes, if any: every word of the claim is in it
    except at most three conversational filler words ("yes", "I think"), and both say "not", "no", "never"
    alike. Number, name and antonym changes add a word the unit lacks; a dropped or added negation differs.
    Claims under five words are never taken as quotes."""
    words = _TOKEN.findall(claim.lower())
    if len(words) < _MIN_QUOTE_TOKENS:
        return None
    negations = {w for w in words if w in _NEGATIONS}
    for text in knowledge:
        for unit in units(text):
            known = set(_TOKEN.findall(unit.lower()))
            extra = [w for w in words if w not in known]
            if (
                len(extra) <= _MAX_FILLER
                and all(w in _FILLER for w in extra)
                and negations == {w for w in known if w in _NEGATIONS}
            ):
                return unit
    return None
