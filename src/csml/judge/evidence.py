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
best score (see :class:`csml.judge.judge.GroundednessJudge`). :class:`Knowledge` cuts an answer's knowledge
once and serves all of the answer's claims.
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


def _units(flat: str) -> list[str]:
    """Speaker turns of a transcript (a line without a label continues the turn before it), else sentences,
    of a text already flattened by :func:`flatten_json` (so JSON records come as ``path: value`` turns)."""
    if not is_transcript(flat):
        return [c.text for c in split_claims(flat, min_words=1)]
    turns: list[str] = []
    for line in flat.splitlines():
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


def _windows(text_units: list[str], joiner: str, max_words: int, overlap: float = 0.5) -> list[str]:
    """Units packed into windows of whole units of at most ``max_words`` words, each next window starting
    ``overlap`` of the way back into the one before (a longer unit is cut into overlapping chunks)."""
    pieces = [chunk for unit in text_units for chunk in _chunks(unit, max_words)]
    if not pieces:
        return []
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
# Words a negation brings along ("does not cover" states "cover" negated): left out when a claim's words are
# matched against a unit's regardless of polarity.
_NEGATION_SUPPORT = frozenset(("do", "does", "did", "is", "are", "was", "were", "will", "be", "can", "could"))
# "No," or "Yes." opening an answer: a reply to a question, not a negation of what follows.
_ANSWER_PARTICLE = re.compile(r"^\s*(?:no|yes)\s*[,.!;:]\s*")
# Clauses of a sentence, each with its own polarity ("X does not apply; Y applies", "A, but not B").
_CLAUSE_BREAK = re.compile(r"\s*[;:]\s*|,?\s+(?:but|whereas|while|although|except)\s+", re.IGNORECASE)


def _normalise(text: str) -> str:
    """Lower case, single spaces, no surrounding punctuation: how verbatim quotes are recognised."""
    return " ".join(text.lower().split()).strip(" .,;:!?\"'")


class Knowledge:
    """The knowledge of one answer, cut once: its units, windows and their words, shared by its claims.

    Args:
        texts: Knowledge texts (passages, transcripts, JSON records); empty ones are left out.
        max_words: Window size in words.
    """

    def __init__(self, texts: Sequence[str], max_words: int) -> None:
        self.texts = [text for text in texts if text and text.strip()]
        self.max_words = max_words
        flat = [flatten_json(text) for text in self.texts]
        transcript = [is_transcript(text) for text in flat]
        per_text = [_units(text) for text in flat]
        self.windows = [
            window
            for text_units, turns in zip(per_text, transcript, strict=True)
            for window in _windows(text_units, "\n" if turns else " ", max_words)
        ]
        self.units = [unit for text_units in per_text for unit in text_units]
        self._joiner = "\n" if any(transcript) else " "
        self._sizes = [len(unit.split()) for unit in self.units]
        self._content = [set(content_words(unit)) for unit in self.units]
        self._tokens = [set(_TOKEN.findall(unit.lower())) for unit in self.units]
        self._normalised = [_normalise(text) for text in self.texts]

    def __bool__(self) -> bool:
        return bool(self.texts)

    def candidates(self, claim: str) -> list[str]:
        """Every piece of evidence ``claim`` is judged against: the windows of each knowledge text, and the
        assembled evidence when the knowledge does not fit in one window."""
        found = list(self.windows)
        if len(found) > 1:
            extra = self.assembled(claim)
            if extra is not None and extra not in found:
                found.append(extra)
        return found

    def assembled(self, claim: str) -> str | None:
        """The units sharing most content words with ``claim``, in order, up to ``max_words`` words.

        ``None`` when no unit shares a content word with the claim.
        """
        wanted = set(content_words(claim))
        shared = [len(wanted & words) for words in self._content]
        ranked = sorted(range(len(self.units)), key=lambda i: -shared[i] / (1 + self._sizes[i] ** 0.5))
        chosen, words = [], 0
        for i in ranked:
            if not shared[i]:
                break
            if words + self._sizes[i] > self.max_words:
                continue
            chosen.append(i)
            words += self._sizes[i]
        if not chosen:
            return None
        return self._joiner.join(self.units[i] for i in sorted(chosen))

    def contradicted(self, claim: str) -> str | None:
        """The sentence or turn ``claim`` restates with the opposite polarity, if any: one clause of the unit
        (clauses end at ";", ":", "but", "whereas"...) and the claim have the same words -- plural and
        third-person "s" aside, and but for negations, the auxiliaries they bring ("does not") and filler
        words ("sure", "the"; at most three in the claim) -- and one of the two is negated an odd number of
        times more than the other ("The warranty covers accidental damage." against "The warranty does not
        cover accidental damage."). A leading "No," or "Yes." answers a question and is left out; claims under
        five words are never contradicted."""
        words = _TOKEN.findall(_ANSWER_PARTICLE.sub("", claim.lower()))
        if len(words) < _MIN_QUOTE_TOKENS:
            return None
        stems = {_stem(w) for w in words if w not in _NEGATIONS and w not in _NEGATION_SUPPORT}
        polarity = sum(w in _NEGATIONS for w in words) % 2
        for unit in self.units:
            for clause in _CLAUSE_BREAK.split(unit):
                clause_words = _TOKEN.findall(_ANSWER_PARTICLE.sub("", clause.lower()))
                if sum(w in _NEGATIONS for w in clause_words) % 2 == polarity:
                    continue
                known = {_stem(w) for w in clause_words if w not in _NEGATIONS and w not in _NEGATION_SUPPORT}
                extra, missing = stems - known, known - stems
                if len(extra) <= _MAX_FILLER and extra <= _FILLER and missing <= _FILLER:
                    return unit
        return None

    def quote(self, claim: str) -> str | None:
        """What ``claim`` quotes, if anything: the knowledge text holding it verbatim (up to case, spacing and
        surrounding punctuation), else the sentence or turn holding every word of it except at most three
        conversational filler words ("yes", "I think") and saying "not", "no", "never" alike. Number, name and
        antonym changes add a word the unit lacks; a dropped or added negation differs. Claims under five
        words are quoted only verbatim."""
        normalised = _normalise(claim)
        for text, norm in zip(self.texts, self._normalised, strict=True):
            if normalised in norm:
                return text
        words = _TOKEN.findall(claim.lower())
        if len(words) < _MIN_QUOTE_TOKENS:
            return None
        negations = {w for w in words if w in _NEGATIONS}
        for unit, known in zip(self.units, self._tokens, strict=True):
            extra = [w for w in words if w not in known]
            if (
                len(extra) <= _MAX_FILLER
                and all(w in _FILLER for w in extra)
                and negations == {w for w in known if w in _NEGATIONS}
            ):
                return unit
        return None


def _stem(word: str) -> str:
    """``covers`` and ``cover`` alike (a trailing "s" of words over three letters dropped)."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
