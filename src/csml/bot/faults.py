"""Seeded fault injection for the reference bot, and the reply log that records every corruption.

Per request the injector draws a :class:`FaultPlan` (the same five random draws whatever the rates, so a
seed gives the same plan sequence under any configuration; the safety and conversation faults draw six
more from a second generator, so adding them left the earlier plans of a seed unchanged). The app applies latency, HTTP 500 and
malformed bodies; the bot applies fabricated facts and answers to unanswerable questions. Every reply,
corrupted or not, is written to the JSONL reply log with its request id (also sent as the
``X-Request-ID`` header), so an audit can join its own records to the bot's and score its detection.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from csml.bot.settings import FaultSettings


@dataclass(frozen=True)
class FaultPlan:
    """The faults drawn for one request.

    Attributes:
        latency_ms: Added latency.
        error: Answer with HTTP 500.
        malformed: Send a truncated, invalid JSON body.
        fabricate: Change one fact of the answer.
        answer_unanswerable: Answer even below the abstain threshold.
        follow_injection: Obey an instruction injected into the conversation.
        leak_record: Read another customer's record out when asked for it.
        overpromise: End the answer with a promise no policy allows.
        ignore_handover: Answer a message that should go to a human.
        loop: Repeat the previous answer of the conversation.
        contradict: Restate a sentence of the previous answer with a fact changed.
        seed: Seed of the request's own generator (which fact is fabricated, and how).
    """

    latency_ms: float = 0.0
    error: bool = False
    malformed: bool = False
    fabricate: bool = False
    answer_unanswerable: bool = False
    follow_injection: bool = False
    leak_record: bool = False
    overpromise: bool = False
    ignore_handover: bool = False
    loop: bool = False
    contradict: bool = False
    seed: int = 0

    def rng(self) -> random.Random:
        """A generator for this request's content corruption."""
        return random.Random(self.seed)


class FaultInjector:
    """Draws a :class:`FaultPlan` per request from a generator seeded by ``settings.seed``."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self._safety_rng = random.Random(f"{settings.seed}-safety")

    def draw(self) -> FaultPlan:
        """The next request's plan."""
        s, draws = self.settings, [self._rng.random() for _ in range(5)]
        safety = [self._safety_rng.random() for _ in range(6)]
        return FaultPlan(
            latency_ms=s.latency_ms + draws[0] * s.latency_jitter_ms,
            error=draws[1] < s.error_rate,
            malformed=draws[2] < s.malformed_rate,
            fabricate=draws[3] < s.fabricate_rate,
            answer_unanswerable=draws[4] < s.answer_unanswerable_rate,
            follow_injection=safety[0] < s.follow_injection_rate,
            leak_record=safety[1] < s.leak_record_rate,
            overpromise=safety[2] < s.overpromise_rate,
            ignore_handover=safety[3] < s.ignore_handover_rate,
            loop=safety[4] < s.loop_rate,
            contradict=safety[5] < s.contradict_rate,
            seed=self._rng.getrandbits(64),
        )


def malformed_body(body: bytes, rng: random.Random) -> bytes:
    """Truncates a JSON body somewhere in its second half: what a crashed or cut-off backend sends."""
    return body[: rng.randint(max(1, len(body) // 2), max(1, len(body) - 1))]


class ReplyLog:
    """Appends one JSON object per reply to a JSONL file (line-buffered; null path = no log).

    Records carry the request id, endpoint, question, final text, the uncorrupted answer, the injected
    faults and the corruption edits; never request headers, so tokens stay out of the log.
    """

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self._file: TextIO | None = None

    def write(self, record: dict[str, Any]) -> None:
        """Writes ``record`` with a UTC timestamp."""
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8", buffering=1)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._file.write(json.dumps({"time": stamp, **record}, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Closes the file (reopened on the next write)."""
        if self._file is not None:
            self._file.close()
            self._file = None
