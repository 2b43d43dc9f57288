"""Conversation metrics: scored on the transcripts of simulated conversations
(:mod:`csml.audit.conversations`), kept in the last reply's ``raw["conversation"]``; None on a one-question
sample.

- ``goal_completion``: the customer's goal was reached (for goals outside the bot's scope: it declined or
  handed over).
- ``turns_to_resolution``: customer messages until the goal was reached (lower is better).
- ``escalation_in_time``: once the customer asked for a human or was angry, the bot handed over within
  ``within`` of its replies.
- ``unwanted_handover``: a calm customer with an in-scope goal was handed over anyway (lower is better).
- ``bot_loops``: the bot gave the same answer to ``repeats`` (2) different messages in a row, or repeated one
  sentence (of four words or more) three times in one reply (lower is better).
- ``self_contradiction``: a bot sentence restates one of an earlier bot turn with one change of at most two
  words: another number, an added "not", an antonym (lower is better).
- ``latency_turn_p95_ms``: the 95th percentile of every bot turn's latency.
- ``turn_groundedness``: every bot turn's answer scored by ``groundedness`` (:mod:`.rag`: the judge against
  the turn's contexts or the knowledge base), averaged over the answering turns.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from csml.audit.metrics.base import METRICS, Metric, says_any, sentences
from csml.audit.metrics.rag import Groundedness
from csml.schemas import AuditSample, BotReply, MetricResult

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def transcript(reply: BotReply) -> dict[str, Any] | None:
    """The conversation a reply ends, if it ends one."""
    raw = reply.raw if isinstance(reply.raw, dict) else {}
    conversation = raw.get("conversation")
    return conversation if isinstance(conversation, dict) else None


class ConversationMetric(Metric):
    """Base: scores a conversation's transcript (:meth:`score_conversation`); None on other samples."""

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        conversation = transcript(reply)
        if conversation is None:
            return MetricResult(None, "not a conversation")
        return self.score_conversation(conversation)

    def score_conversation(self, conversation: dict[str, Any]) -> MetricResult:
        raise NotImplementedError


@METRICS.register()
class GoalCompletion(ConversationMetric):
    """1.0 when the customer's goal was reached; the reason says how the conversation ended."""

    name = "goal_completion"

    def score_conversation(self, conversation: dict[str, Any]) -> MetricResult:
        ended, turns = conversation["ended"], len(conversation["turns"])
        if ended == "bot_error":
            return MetricResult(None, f"the bot failed at turn {turns}: {conversation['turns'][-1]['error']}")
        scope = "in scope" if conversation["goal_in_scope"] else "out of scope"
        return MetricResult(
            float(conversation["goal_reached"]), f"{scope} goal; ended by {ended} after {turns} turns"
        )


@METRICS.register()
class TurnsToResolution(ConversationMetric):
    """Customer messages until the goal was reached (None when it was not). Lower is better."""

    name = "turns_to_resolution"
    better = "lower"

    def score_conversation(self, conversation: dict[str, Any]) -> MetricResult:
        if not conversation["goal_reached"]:
            return MetricResult(None, "goal not reached")
        return MetricResult(
            float(len(conversation["turns"])), f"reached in {len(conversation['turns'])} turns"
        )


@METRICS.register()
class EscalationInTime(ConversationMetric):
    """Once the customer asked for a human or got angry: 1.0 when the bot handed over within ``within`` of
    its replies (the reply to that message counts as the first), else 0.0. None when neither happened.

    Args:
        within: Bot replies allowed before the hand-over.
    """

    name = "escalation_in_time"

    def __init__(self, within: int = 1, **base: Any) -> None:
        super().__init__(**base)
        self.within = int(within)

    def score_conversation(self, conversation: dict[str, Any]) -> MetricResult:
        triggers = [t for t in (conversation["asked_human_at"], conversation["angry_at"]) if t is not None]
        if not triggers:
            return MetricResult(None, "the customer neither asked for a human nor got angry")
        trigger, handover = min(triggers), conversation["handover_at"]
        if handover is not None and handover - trigger < self.within:
            return MetricResult(1.0, f"handed over {handover - trigger + 1} replies after turn {trigger + 1}")
        if handover is not None:
            return MetricResult(
                0.0, f"handed over only {handover - trigger + 1} replies after turn {trigger + 1}"
            )
        return MetricResult(
            0.0, f"not handed over after turn {trigger + 1} (ended by {conversation['ended']})"
        )


@METRICS.register()
class UnwantedHandover(ConversationMetric):
    """For calm customers with an in-scope goal: 1.0 when the bot handed them over. Lower is better."""

    name = "unwanted_handover"
    better = "lower"

    def score_conversation(self, conversation: dict[str, Any]) -> MetricResult:
        if conversation["persona"] != "calm" or not conversation["goal_in_scope"]:
            return MetricResult(None, "only calm customers with in-scope goals")
        at = conversation["handover_at"]
        return MetricResult(
            float(at is not None), f"handed over at turn {at + 1}" if at is not None else "kept"
        )


def _normalised(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


@METRICS.register()
class BotLoops(ConversationMetric):
    """1.0 when the bot gave the same answer to ``repeats`` different customer messages in a row (declines
    and hand-overs, said again to a customer who insists, do not count), or one reply repeats a sentence
    of four words or more ``repeats`` times (a generator stuck in a loop). Lower is better.

    Args:
        repeats: How many identical answers (or sentences) make a loop.
        abstain_patterns: Phrases of a decline or hand-over (the suite's, given by the audit).
    """

    name = "bot_loops"
    better = "lower"

    def __init__(self, repeats: int = 2, abstain_patterns: Sequence[str] = (), **base: Any) -> None:
        super().__init__(**base)
        self.repeats = int(repeats)
        self.patterns = tuple(abstain_patterns)

    def _answer(self, turn: dict[str, Any]) -> str | None:
        if turn["abstained"] or turn["escalated"] or says_any(turn["bot"] or "", self.patterns):
            return None
        return _normalised(turn["bot"] or "") or None

    def score_conversation(self, conversation: dict[str, Any]) -> MetricResult:
        turns = conversation["turns"]
        for i in range(len(turns) - self.repeats + 1):
            window = turns[i : i + self.repeats]
            answers = {self._answer(t) for t in window}
            asked = {_normalised(t["customer"]) for t in window}
            if None not in answers and len(answers) == 1 and len(asked) == self.repeats:
                return MetricResult(1.0, f"the same answer at turns {i + 1}-{i + self.repeats}")
        for index, turn in enumerate(turns, start=1):
            said = [_normalised(s) for s in sentences(turn["bot"] or "")]
            counts = Counter(s for s in said if len(s.split()) >= 4)
            if counts and counts.most_common(1)[0][1] >= max(self.repeats, 3):
                return MetricResult(1.0, f"turn {index} repeats {counts.most_common(1)[0][0][:80]!r}")
        return MetricResult(0.0, "no loop")


_CONTRACTIONS = ((r"\bcan't\b|\bcannot\b", "can not"), (r"\bwon't\b", "will not"), (r"n't\b", " not"))
_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


def _tokens(sentence: str) -> list[str]:
    """Lower-case words and numbers, contractions expanded ("can't" is "can not")."""
    text = sentence.lower().replace("\u2019", "'")
    for pattern, expanded in _CONTRACTIONS:
        text = re.sub(pattern, expanded, text)
    return _TOKEN.findall(text)


_NEGATING = frozenset(("not", "no", "never", "non", "without", "none"))
_ANTONYMS = {
    frozenset(pair)
    for pair in (
        ("always", "never"), ("before", "after"), ("free", "paid"), ("free", "chargeable"), ("more", "less"),
        ("earlier", "later"), ("open", "closed"), ("required", "optional"), ("mandatory", "optional"),
        ("allowed", "forbidden"), ("included", "excluded"), ("increase", "decrease"), ("can", "must"),
        ("minimum", "maximum"), ("first", "last"), ("full", "partial"), ("all", "none"), ("yes", "no"),
    )
}  # fmt: skip
_PREFIXES = ("non", "un", "in", "im", "il", "ir", "dis")


def _opposed(removed: list[str], added: list[str]) -> bool:
    """Whether replacing ``removed`` by ``added`` changes a value or the polarity: a number, a "not" (or
    "never", "no", "non-"), an antonym, a word and its negated form (eligible / ineligible)."""
    changed = removed + added
    if any(token[0].isdigit() for token in changed) or set(changed) & _NEGATING:
        return True
    for old in removed:
        for new in added:
            if frozenset((old, new)) in _ANTONYMS:
                return True
            if any(new == p + old or old == p + new for p in _PREFIXES):
                return True
    return False


def _one_change(before: list[str], after: list[str], min_shared: int) -> bool:
    """Whether ``after`` is ``before`` with one opposing change (:func:`_opposed`) of at most two words, the
    rest -- at least ``min_shared`` words -- the same."""
    import difflib

    if before == after:
        return False
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if len(changes) != 1:
        return False
    _, i1, i2, j1, j2 = changes[0]
    shared = len(before) - (i2 - i1)
    return i2 - i1 <= 2 and j2 - j1 <= 2 and shared >= min_shared and _opposed(before[i1:i2], after[j1:j2])


@METRICS.register()
class SelfContradiction(ConversationMetric):
    """1.0 when a bot sentence restates a sentence of an earlier bot turn with one change of at most two
    words that opposes it -- another number, amount or date, an added or dropped "not", an antonym from a
    short list, a word and its negated form -- the rest (at least ``min_words`` words) the same. Lower is
    better. Contradictions in other words are not seen.

    Args:
        min_words: Fewest unchanged words.
    """

    name = "self_contradiction"
    better = "lower"

    def __init__(self, min_words: int = 4, **base: Any) -> None:
        super().__init__(**base)
        self.min_words = int(min_words)

    def score_conversation(self, conversation: dict[str, Any]) -> MetricResult:
        earlier: list[tuple[int, str, list[str]]] = []
        for index, turn in enumerate(conversation["turns"], start=1):
            said = [(sentence, _tokens(sentence)) for sentence in sentences(turn["bot"] or "")]
            for sentence, tokens in said:
                for at, before, before_tokens in earlier:
                    if _one_change(before_tokens, tokens, self.min_words):
                        return MetricResult(
                            1.0, f"turn {index} {sentence[:100]!r} vs turn {at} {before[:100]!r}"
                        )
            earlier += [(index, sentence, tokens) for sentence, tokens in said]
        return MetricResult(0.0, "no contradiction between bot turns")


@METRICS.register()
class LatencyTurnP95(ConversationMetric):
    """95th percentile of the latency of every bot turn of every conversation (ms). Lower is better."""

    name = "latency_turn_p95_ms"
    better = "lower"

    def score_conversation(self, conversation: dict[str, Any]) -> MetricResult:
        latencies = [float(t["latency_ms"]) for t in conversation["turns"]]
        return MetricResult(
            max(latencies), f"slowest of {len(latencies)} turns", data={"latencies": latencies}
        )

    def aggregate_results(self, results: Sequence[MetricResult]) -> float | None:
        latencies = [x for r in results if r.data for x in r.data["latencies"]]
        return float(np.percentile(latencies, 95)) if latencies else None


def turn_pairs(sample: AuditSample, reply: BotReply) -> list[tuple[AuditSample, BotReply]]:
    """Each bot turn of a conversation as a one-question sample and its reply (earlier turns as history)."""
    conversation = transcript(reply)
    if conversation is None:
        return []
    pairs, history = [], []
    for index, turn in enumerate(conversation["turns"]):
        turn_sample = AuditSample(
            id=f"{sample.id}#turn{index + 1}", question=turn["customer"], history=tuple(history),
            answerable=bool(conversation.get("goal_in_scope", True)),
        )  # fmt: skip
        turn_reply = BotReply(
            text=turn["bot"] or "", contexts=list(turn.get("contexts") or []), error=turn["error"],
            abstained=turn["abstained"], escalated=turn["escalated"], latency_ms=float(turn["latency_ms"]),
        )  # fmt: skip
        pairs.append((turn_sample, turn_reply))
        history += [
            {"role": "user", "content": turn["customer"]},
            {"role": "assistant", "content": turn["bot"] or ""},
        ]
    return pairs


@METRICS.register()
class TurnGroundedness(Groundedness):
    """Groundedness of every bot turn of a conversation (:class:`~csml.audit.metrics.rag.Groundedness`, same
    params: the judge by default, against the turn's returned contexts or passages of the knowledge base),
    averaged over the turns that answered; declines and hand-overs are not scored. None on one-question
    samples. The reason names the least grounded turn; ``data.turns`` keeps every turn's value."""

    name = "turn_groundedness"

    def prepare(self, pairs: Sequence[tuple[AuditSample, BotReply]]) -> None:
        super().prepare([pair for sample, reply in pairs for pair in turn_pairs(sample, reply)])

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if transcript(reply) is None:
            return MetricResult(None, "not a conversation")
        scored = [(s, super(TurnGroundedness, self).score(s, r)) for s, r in turn_pairs(sample, reply)]
        values = [(s, r) for s, r in scored if r.value is not None]
        if not values:
            return MetricResult(None, "no bot turn answered")
        worst_sample, worst = min(values, key=lambda pair: pair[1].value)
        value = float(np.mean([r.value for _, r in values]))
        turn = worst_sample.id.rsplit("#turn", 1)[1]
        reason = (
            f"{len(values)} answering turns; least grounded turn {turn} ({worst.value:.2f}): {worst.reason}"
        )
        return MetricResult(value, reason, data={"turns": [r.value for _, r in scored]})
