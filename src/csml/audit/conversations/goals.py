"""What a simulated customer wants: a :class:`Goal`, built from real task dialogues or from a suite's
questions about the bot's own knowledge base.

- **Schema-Guided Dialogue** (:func:`sgd_goals`; CC BY-SA 4.0, read from ``paths.external_data_dir``): a
  dialogue's user turns, in order, are the customer's messages (real utterances that already carry the
  goal's slot values); the goal is the user's intents and final slot values. A support bot that does not
  serve the dialogue's services should say so or hand over: such goals are *out of scope* unless the suite
  lists their services in ``in_scope_services``; in scope, the goal is reached when the bot's replies carry
  or confirm every slot value.
- **The bot's knowledge base** (:func:`kb_goals`): questions of a suite about one entry (``reference_source``)
  -- the first opens the conversation, the others are follow-ups -- with the entry's reference answer; the goal
  is reached when a reply covers the reference answer (:func:`covers`). ``audits/conversations/kb_goals.jsonl``
  holds the goals of the ``rag_abcd`` questions (:func:`bundled_kb_goals`).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csml.audit.errors import AuditConfigError
from csml.judge.baselines import content_words
from csml.schemas import AuditSample


@dataclass(frozen=True)
class Goal:
    """One customer's goal.

    Attributes:
        id: Unique within the suite.
        kind: ``kb`` (a question about the bot's knowledge base) or ``sgd:<Service>`` (a service task).
        turns: The customer's scripted messages, in order (the first opens the conversation).
        in_scope: Whether the bot should serve it (else it should decline or hand over).
        values: What the bot's replies must carry or confirm to reach an in-scope service goal
            (slot name -> value).
        reference: What a reply must cover to reach a knowledge-base goal.
        intent: The customer's intent, if known (SGD's ``FindRestaurants``, the KB entry id).
        stage: Journey stage; channel is ``chat``.
        source: Where the goal comes from (dataset, file, dialogue id, licence).
    """

    id: str
    kind: str
    turns: tuple[str, ...]
    in_scope: bool
    values: dict[str, str] = field(default_factory=dict, hash=False)
    reference: str | None = None
    intent: str | None = None
    stage: str | None = None
    source: str = ""


def covers(reply: str, reference: str, share: float = 0.6, enough: int = 8) -> bool:
    """Whether ``reply`` says what the reference answer says: they share at least ``enough`` content words
    (or ``share`` of the reference's, for a short one), and at least ``share`` of the reply's content words
    are the reference's (a reply drawn from the answer, not a long one that happens to hold its words)."""
    wanted, said = set(content_words(reference)), set(content_words(reply))
    shared = wanted & said
    return (
        bool(shared) and len(shared) >= min(enough, share * len(wanted)) and len(shared) >= share * len(said)
    )


def carries(replies: Sequence[str], value: str) -> bool:
    """Whether one of the bot's ``replies`` says ``value`` (case-insensitive, as whole words)."""
    pattern = rf"(?<!\w){re.escape(value.lower())}(?!\w)"
    return any(re.search(pattern, reply.lower()) for reply in replies)


def kb_goals(samples: Sequence[AuditSample], limit: int | None = None, seed: int = 0) -> list[Goal]:
    """One goal per knowledge-base entry that answerable ``samples`` ask about (``reference_source`` and
    ``reference_answer`` set): its first question opens, the others follow up; ``limit`` entries drawn with
    ``seed`` (all when None), in suite order."""
    by_entry: dict[str, list[AuditSample]] = defaultdict(list)
    for sample in samples:
        if sample.answerable and sample.reference_source and sample.reference_answer:
            by_entry[sample.reference_source].append(sample)
    entries = list(by_entry)
    if limit is not None and limit < len(entries):
        chosen = set(random.Random(seed).sample(entries, limit))
        entries = [e for e in entries if e in chosen]
    return [
        Goal(
            id=f"kb:{entry}",
            kind="kb",
            turns=tuple(s.question for s in by_entry[entry]),
            in_scope=True,
            reference=by_entry[entry][0].reference_answer,
            intent=entry,
            stage=by_entry[entry][0].stage or "support",
            source=f"questions of the suite about {entry} ({by_entry[entry][0].source})",
        )
        for entry in entries
    ]


def bundled_kb_goals(data_dir: str | Path) -> list[AuditSample]:
    """The conversation suite's bundled goals: one per ABCD entry the ``rag_abcd`` questions ask about."""
    import json

    path = Path(data_dir).parent / "audits" / "rag_abcd" / "questions.jsonl"
    samples = [
        AuditSample.from_dict(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()
    ]
    return [goal_sample(goal) for goal in kb_goals(samples)]


def sgd_goals(
    external_data_dir: str | Path,
    split: str = "test",
    limit: int = 100,
    seed: int = 0,
    services: Sequence[str] | None = None,
    in_scope_services: Sequence[str] = (),
    max_turns: int = 8,
) -> list[AuditSample]:
    """Conversation samples (one per goal, :func:`goal_sample`) from SGD dialogues of ``split`` (``dev`` or
    ``test``): ``limit`` single-service dialogues drawn with ``seed``, optionally only of ``services``
    (``Restaurants``, ``Banks``...), their first ``max_turns`` user turns scripted.

    Raises:
        AuditConfigError: the SGD folder is missing (name the folder and where to get it).
    """
    from csml.data.journey import load_journey_map
    from csml.response.sgd import active_intent, read_dialogues

    folder = Path(external_data_dir) / "sgd_schema_guided" / split
    files = sorted(folder.glob("dialogues_*.json*"))
    if not files:
        raise AuditConfigError(
            f"no SGD dialogues in {folder}: Schema-Guided Dialogue (CC BY-SA 4.0, "
            "github.com/google-research-datasets/dstc8-schema-guided-dialogue) is read from "
            "paths.external_data_dir/sgd_schema_guided/{dev,test}"
        )
    wanted = {s.split("_")[0] for s in services} if services else None
    in_scope = {s.split("_")[0] for s in in_scope_services}
    journey = load_journey_map().entry("sgd_schema_guided")
    candidates = []
    for path in files:
        for dialogue in read_dialogues(path):
            kinds = {s.split("_")[0] for s in dialogue.get("services", [])}
            if len(kinds) == 1 and (wanted is None or kinds & wanted):
                candidates.append((path.name, dialogue))
    rng = random.Random(seed)
    chosen = rng.sample(candidates, min(limit, len(candidates)))
    goals = []
    for file, dialogue in sorted(chosen, key=lambda pair: pair[1]["dialogue_id"]):
        user_turns = [t for t in dialogue["turns"] if t.get("speaker") == "USER"]
        service = dialogue["services"][0].split("_")[0]
        values: dict[str, str] = {}
        for turn in user_turns:
            for frame in turn.get("frames", []):
                for slot, found in (frame.get("state", {}).get("slot_values") or {}).items():
                    if found:
                        values[slot] = str(found[0])
        intent = next((i for t in user_turns if (i := active_intent(t))), None)
        goals.append(
            Goal(
                id=f"sgd:{split}:{dialogue['dialogue_id']}",
                kind=f"sgd:{service}",
                turns=tuple(str(t["utterance"]) for t in user_turns[:max_turns]),
                in_scope=service in in_scope,
                values=values,
                intent=intent,
                stage=journey.stage_for(intent).value,
                source=f"Schema-Guided Dialogue {split}/{file}, dialogue {dialogue['dialogue_id']} (CC BY-SA 4.0)",
            )
        )
    return [goal_sample(goal) for goal in goals]


def goal_sample(goal: Goal) -> AuditSample:
    """A goal as a suite question: the opening message, with the goal in ``metadata["goal"]``."""
    return AuditSample(
        id=goal.id,
        question=goal.turns[0],
        answerable=goal.in_scope,
        category=goal.kind,
        reference_answer=goal.reference,
        reference_source=goal.intent if goal.kind == "kb" else None,
        source=goal.source,
        stage=goal.stage,
        channel="chat",
        metadata={"goal": goal_to_dict(goal)},
    )


def goal_to_dict(goal: Goal) -> dict[str, Any]:
    """JSON form of a goal."""
    return {
        "id": goal.id, "kind": goal.kind, "turns": list(goal.turns), "in_scope": goal.in_scope,
        "values": dict(goal.values), "reference": goal.reference, "intent": goal.intent, "stage": goal.stage,
        "source": goal.source,
    }  # fmt: skip


def goal_of(sample: AuditSample) -> Goal:
    """The goal a conversation sample carries (``metadata["goal"]``), or one built from a plain question:
    its question and reference answer, in scope when answerable.

    Raises:
        AuditConfigError: a ``goal`` that is not a goal object (the sample id and field at fault).
    """
    data = (sample.metadata or {}).get("goal")
    if data is None:
        return Goal(
            id=sample.id, kind=sample.category, turns=(sample.question,), in_scope=sample.answerable,
            reference=sample.reference_answer, intent=sample.reference_source, stage=sample.stage,
            source=sample.source,
        )  # fmt: skip
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list) or not data["turns"]:
        raise AuditConfigError(f"question {sample.id!r}: metadata.goal needs a non-empty list 'turns'")
    return Goal(
        id=str(data.get("id", sample.id)),
        kind=str(data.get("kind", sample.category)),
        turns=tuple(str(t) for t in data["turns"]),
        in_scope=bool(data.get("in_scope", sample.answerable)),
        values={str(k): str(v) for k, v in (data.get("values") or {}).items()},
        reference=data.get("reference"),
        intent=data.get("intent"),
        stage=data.get("stage") or sample.stage,
        source=str(data.get("source", sample.source)),
    )
