"""Builds the ``rag_abcd`` question set from the bundled ABCD policy manual (deterministic, seeded).

Answerable questions are written from each policy section (:class:`csml.bot.kb.AbcdGuidelines`): a
request naming the section, and the section's first instruction rephrased in the customer's voice. Each
records its section as reference answer, context and source. Unanswerable questions are written by csml:
off-topic requests and false premises about the policy manual (fees, channels and rules it never states).

    python -m csml.audit.questions            # rewrites audits/rag_abcd/questions.jsonl
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from csml.audit.suite import AuditSample

OFF_TOPIC = (
    "What is the capital of Australia?",
    "Can you recommend a good recipe for vegetable lasagna?",
    "Who won the football World Cup in 2014?",
    "How many moons does Jupiter have?",
    "What's the best way to learn to play the guitar?",
    "Can you write me a poem about the ocean?",
    "What will the weather be like in Paris tomorrow?",
    "How do I change the oil in my car?",
    "What is the square root of 1,764?",
    "Which programming language should I learn first?",
)
FALSE_PREMISE = (
    "Why do I have to pay a $200 fee to reset my two-factor authentication?",
    "Can I get my refund paid out in bitcoin, like your policy says?",
    "Your store promised a lifetime warranty on every jacket, how do I claim mine?",
    "Since membership gives everyone free flights, how do I book mine?",
    "Why does AcmeCorp charge me for talking to a customer service agent?",
    "How do I get the 90% discount that gold members get on every order?",
    "Which of your physical stores in Tokyo can I visit to return my boots?",
    "Can I pay my subscription with a cheque sent by fax as the manual requires?",
)
_VOICE = (
    (r"^(The )?customer’s\b", "My"),
    (r"^(The )?customers?\b", "I"),
    (r"\bthey (want|have|meant|are|never)\b", r"I \1"),
    (r"\btheir\b", "my"),
    (r"\bthemselves\b", "myself"),
)
_FIX = (
    ("I is", "I am"),
    ("I has", "I have"),
    ("I believes", "I believe"),
    ("I wants", "I want"),
    ("I thinks", "I think"),
    ("and wants", "and want"),
)


def _customer_voice(instruction: str) -> str | None:
    """The first sentence of an instruction about "the customer", rewritten as the customer saying it."""
    sentence = re.split(r"(?<=[.!?])\s+", " ".join(instruction.split()))[0].rstrip(".:")
    if not re.match(r"^(The )?[Cc]ustomer", sentence):
        return None
    text = sentence[0].upper() + sentence[1:]
    for pattern, repl in _VOICE:
        text = re.sub(pattern, repl, text, flags=re.IGNORECASE)
    for wrong, right in _FIX:
        text = text.replace(wrong, right)
    return text + "."


def build_abcd_questions(abcd_root: str | Path, seed: int = 0) -> list[AuditSample]:
    """The ``rag_abcd`` question set: two questions per policy section, then the unanswerable ones."""

    from csml.bot.kb import AbcdGuidelines

    rng = random.Random(seed)
    guidelines = json.loads((Path(abcd_root) / "guidelines.json").read_text(encoding="utf-8"))
    sections = [
        (flow, name, sub["instructions"])
        for flow, spec in guidelines.items()
        for name, sub in spec["subflows"].items()
    ]
    entries = AbcdGuidelines(str(abcd_root)).load()
    asks = ("Can you help me with {x}?", "I need help with {x}, what should I do?", "How does {x} work?")
    samples = []
    for (flow, name, instructions), entry in zip(sections, entries, strict=True):
        description = guidelines[flow]["description"]
        phrasing = rng.choice(asks).format(x=f"{name.lower()} ({description})")
        questions = [("ask", phrasing)]
        if instructions and (voiced := _customer_voice(instructions[0])):
            questions.append(("voice", voiced))
        for template, question in questions:
            samples.append(
                AuditSample(
                    id=f"{entry.id}:{template}",
                    question=question,
                    category="policy",
                    reference_answer=entry.answer,
                    reference_contexts=(entry.passage,),
                    reference_source=entry.id,
                    source=f"abcd/guidelines.json: {flow} > {name} (template {template}, seed {seed})",
                )
            )
    for category, questions in (("off_topic", OFF_TOPIC), ("false_premise", FALSE_PREMISE)):
        for index, question in enumerate(questions):
            samples.append(
                AuditSample(
                    id=f"{category}:{index}",
                    question=question,
                    answerable=False,
                    category=category,
                    source="csml-written",
                )
            )
    return samples


def write_questions(samples: list[AuditSample], path: str | Path) -> None:
    """Writes a question set as JSONL (one :class:`AuditSample` a line)."""
    text = "".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in samples)
    Path(path).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    from csml.config import project_root

    root = project_root()
    write_questions(
        build_abcd_questions(root / "data" / "abcd"), root / "audits" / "rag_abcd" / "questions.jsonl"
    )
