"""The simulated customer: holds a goal, talks to the bot turn by turn, and ends the conversation.

The template customer (deterministic by seed) sends the goal's scripted messages -- real utterances -- and
changes course by persona:

- ``calm``: follows the script; never asks for a person.
- ``impatient``: after ``patience`` unhelpful replies (a decline, or no progress towards the goal) asks for a
  human with a real request (Bitext ``contact_human_agent``).
- ``angry``: opens with a real angry complaint (Bitext ``complaint`` utterances with offensive language)
  before the goal's first message.
- ``switcher``: after the bot's reply to the first scripted message switches to another goal of the suite
  (which is then the one to reach), whether or not the first was reached.
- ``corrector``: after that reply corrects one detail ("Sorry, I meant ..." with another value for one of
  the goal's slots, which the goal then needs); a goal without slot values is pursued calmly.

A customer who runs out of scripted messages asks their first one again, once. With a writer
(:mod:`.writers`), a model writes the scripted messages after the first from the goal and the conversation. A conversation ends when
the goal is reached, the bot hands over, the bot fails to answer, the customer runs out of messages, or ``max_turns`` customer messages were sent. For a goal out of the bot's scope,
declining or handing over *is* reaching it; so is a hand-over once the customer asked for a human or got
angry.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from csml.audit.conversations.goals import Goal, carries, covers
from csml.audit.conversations.writers import prompt
from csml.audit.errors import AuditConfigError
from csml.audit.metrics.base import says_any
from csml.schemas import BotReply

PERSONAS = ("calm", "impatient", "angry", "switcher", "corrector")


@dataclass(frozen=True)
class Phrases:
    """Real customer utterances the personas use: requests for a human, angry complaints, and the values
    a corrector may switch to, per slot."""

    human_requests: tuple[str, ...]
    angry: tuple[str, ...]
    slot_values: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)


def bundled_phrases(data_dir: Any, goals: Sequence[Goal] = ()) -> Phrases:
    """Human requests and offensive complaints from the bundled Bitext intents (CDLA-Sharing-1.0), and
    slot values from ``goals``."""
    from pathlib import Path

    from csml.data.sources import BitextIntents

    dataset = BitextIntents(Path(data_dir) / "bitext_cs_intents").load("intent")
    records = [r for split in dataset.splits.values() for r in split]
    humans = tuple(sorted({r.text for r in records if r.intent == "contact_human_agent"}))
    angry = tuple(sorted({r.text for r in records if r.intent == "complaint" and "W" in r.meta["flags"]}))
    values: dict[str, set[str]] = {}
    for goal in goals:
        for slot, value in goal.values.items():
            values.setdefault(slot, set()).add(value)
    return Phrases(humans, angry, {slot: tuple(sorted(v)) for slot, v in values.items()})


@dataclass
class Turn:
    """One exchange: the customer's message, what it was (``script``, ``written`` by a model instead of the
    script, ``human_request``, ``angry``, ``switch``, ``correction``, ``restate``), and the bot's reply."""

    customer: str
    move: str
    reply: BotReply


@dataclass
class Transcript:
    """A finished conversation: its turns, how it ended, whether the goal was reached, and when the
    customer asked for a human, got angry, and was handed over (turn indexes, 0-based)."""

    persona: str
    goal: Goal
    turns: list[Turn]
    ended: str
    goal_reached: bool
    asked_human_at: int | None = None
    angry_at: int | None = None
    handover_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in ``samples.jsonl`` (the last reply's ``raw``)."""
        return {
            "persona": self.persona,
            "goal_id": self.goal.id,
            "goal_in_scope": self.goal.in_scope,
            "ended": self.ended,
            "goal_reached": self.goal_reached,
            "asked_human_at": self.asked_human_at,
            "angry_at": self.angry_at,
            "handover_at": self.handover_at,
            "turns": [
                {
                    "customer": t.customer,
                    "move": t.move,
                    "bot": t.reply.text,
                    "error": t.reply.error,
                    "latency_ms": t.reply.latency_ms,
                    "escalated": t.reply.escalated,
                    "abstained": t.reply.abstained,
                    "request_id": _request_id(t.reply),
                    "contexts": list(t.reply.contexts),
                }
                for t in self.turns
            ],
        }


def _request_id(reply: BotReply) -> str | None:
    """The id a bot gave its reply (a chat completion's ``id``, a message reply's ``request_id``), if any: how
    a turn is joined to the bot's own logs."""
    raw = reply.raw if isinstance(reply.raw, dict) else {}
    found = raw.get("id") or raw.get("request_id")
    return str(found) if found is not None else None


@dataclass(frozen=True)
class CustomerSettings:
    """How simulated customers behave: the longest conversation (customer messages), unhelpful replies an
    impatient customer takes before asking for a human, and the phrases that mean the bot declined or
    handed over (for bots that report no flags)."""

    max_turns: int = 8
    patience: int = 2
    abstain_patterns: tuple[str, ...] = ()
    escalate_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_turns < 1 or self.patience < 1:
            raise AuditConfigError(
                f"conversations: max_turns and patience must be >= 1, got {self.max_turns}, {self.patience}"
            )


Send = Callable[[list[dict[str, str]]], Any]
"""Sends the whole conversation so far (OpenAI-style messages, the new customer message last); returns an
awaitable :class:`BotReply`."""


class TemplateCustomer:
    """One simulated customer (module docstring).

    Args:
        goal: What the customer wants.
        persona: One of :data:`PERSONAS`.
        phrases: Utterances the personas use.
        settings: Limits and phrases.
        rng: The customer's own random generator (seeded per conversation).
        other_goal: The goal a ``switcher`` switches to.
        writer: A model writing the scripted messages after the first (:mod:`.writers`); None: the script.
    """

    def __init__(
        self,
        goal: Goal,
        persona: str,
        phrases: Phrases,
        settings: CustomerSettings,
        rng: random.Random,
        other_goal: Goal | None = None,
        writer: Any = None,
    ) -> None:
        if persona not in PERSONAS:
            raise AuditConfigError(f"unknown persona {persona!r}; known: {list(PERSONAS)}")
        self.goal, self.persona, self.phrases = goal, persona, phrases
        self.settings, self.rng, self.other_goal = settings, rng, other_goal
        self.writer = writer

    def handed_over(self, reply: BotReply) -> bool:
        return bool(reply.escalated) or says_any(reply.text, self.settings.escalate_patterns)

    def declined(self, reply: BotReply) -> bool:
        return bool(reply.abstained) or says_any(reply.text, self.settings.abstain_patterns)

    def reached(self, goal: Goal, replies: list[BotReply]) -> bool:
        """Whether the bot's replies so far reach ``goal``."""
        last = replies[-1]
        if not goal.in_scope:
            return self.handed_over(last) or self.declined(last)
        if goal.reference is not None:
            return covers(last.text, goal.reference)
        texts = [r.text for r in replies]
        return bool(goal.values) and all(carries(texts, value) for value in goal.values.values())

    def _moves(self) -> list[tuple[str, str]]:
        """The customer's planned messages (move, text), before the bot says anything."""
        script = [("script", text) for text in self.goal.turns]
        if self.persona == "angry" and self.phrases.angry:
            return [("angry", self.rng.choice(self.phrases.angry)), *script]
        return script

    async def talk(self, send: Send) -> Transcript:
        """Holds the conversation through ``send``; returns its transcript."""
        goal, moves = self.goal, self._moves()
        messages: list[dict[str, str]] = []
        record = Transcript(self.persona, goal, [], "", False)
        replies: list[BotReply] = []
        while True:
            move, text = moves.pop(0)
            index = len(record.turns)
            if self.writer is not None and move == "script" and record.turns:
                said = [(t.customer, t.reply.text) for t in record.turns]
                written = await self.writer.write(prompt(goal, self.persona, said))
                move, text = ("written", written) if written else (move, text)
            if move == "angry":
                record.angry_at = index
            if move == "human_request":
                record.asked_human_at = index
            messages.append({"role": "user", "content": text})
            reply = await send(list(messages))
            record.turns.append(Turn(text, move, reply))
            replies.append(reply)
            record.goal = goal
            if not reply.ok:
                record.ended = "bot_error"
                return record
            messages.append({"role": "assistant", "content": reply.text})
            if self.handed_over(reply):
                # a hand-over serves a goal out of the bot's scope, or a customer who asked for one or got angry
                wanted = not goal.in_scope or record.asked_human_at is not None or record.angry_at is not None
                record.ended, record.goal_reached, record.handover_at = "handover", wanted, index
                return record
            changed = False
            if move == "script" and not any(t.move in ("switch", "correction") for t in record.turns):
                changed_goal, moves = self._change_course(goal, moves)
                changed, goal = changed_goal is not goal, changed_goal
                record.goal = goal
            if not changed and move != "angry" and self.reached(goal, replies):
                record.ended, record.goal_reached = "goal_reached", True
                return record
            if len(record.turns) >= self.settings.max_turns:
                record.ended = "turn_limit"
                return record
            if (
                self.persona == "impatient"
                and record.asked_human_at is None
                and len(record.turns) >= self.settings.patience
                and self.phrases.human_requests
            ):
                moves.insert(0, ("human_request", self.rng.choice(self.phrases.human_requests)))
            if not moves and not any(t.move == "restate" for t in record.turns):
                moves.append(("restate", goal.turns[0]))  # once: the customer asks again, as people do
            if not moves:
                record.ended = "customer_gave_up"
                return record

    def _change_course(self, goal: Goal, moves: list[tuple[str, str]]) -> tuple[Goal, list[tuple[str, str]]]:
        """A switcher's new goal or a corrector's corrected one, after the bot's first reply."""
        if self.persona == "switcher" and self.other_goal is not None:
            new = self.other_goal
            return new, [("switch", new.turns[0]), *(("script", t) for t in new.turns[1:])]
        if self.persona == "corrector" and goal.values:
            options = [
                (slot, value)
                for slot, value in goal.values.items()
                for value in self.phrases.slot_values.get(slot, ())
                if value != goal.values[slot]
            ]
            if options:
                slot, value = self.rng.choice(options)
                corrected = replace(goal, values={**goal.values, slot: value})
                return corrected, [("correction", f"Sorry, I meant {value}."), *moves]
        return goal, moves
