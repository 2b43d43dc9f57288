"""Builds the ``rag_abcd`` question set from the bundled ABCD policy manual (deterministic, seeded).

Answerable questions are written from each policy section (:class:`csml.knowledge.AbcdGuidelines`): a
request naming the section, and the section's first instruction rephrased in the customer's voice. Each
records its section as reference answer, context and source. Unanswerable questions are written by csml:
off-topic requests and false premises about the policy manual (fees, channels and rules it never states).

    python -m csml.audit.questions rag_abcd   # rewrites audits/rag_abcd/questions.jsonl
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from csml.knowledge import AbcdGuidelines, KBEntry
from csml.schemas import AuditSample

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


ASKS = ("Can you help me with {x}?", "I need help with {x}, what should I do?", "How does {x} work?")
"""Question templates naming a policy section."""


def _sections(abcd_root: str | Path) -> list[tuple[str, str, list[str], str, KBEntry]]:
    """``(flow, subflow, instructions, flow description, KB entry)`` of every ABCD policy section."""
    guidelines = json.loads((Path(abcd_root) / "guidelines.json").read_text(encoding="utf-8"))
    sections = [
        (flow, name, sub["instructions"], guidelines[flow]["description"])
        for flow, spec in guidelines.items()
        for name, sub in spec["subflows"].items()
    ]
    entries = AbcdGuidelines(str(abcd_root)).load()
    return [(*section, entry) for section, entry in zip(sections, entries, strict=True)]


def build_abcd_questions(abcd_root: str | Path, seed: int = 0) -> list[AuditSample]:
    """The ``rag_abcd`` question set: two questions per policy section, then the unanswerable ones."""
    rng = random.Random(seed)
    samples = []
    for flow, name, instructions, description, entry in _sections(abcd_root):
        phrasing = rng.choice(ASKS).format(x=f"{name.lower()} ({description})")
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


def build_abcd_paraphrases(abcd_root: str | Path, sections: int = 20, seed: int = 0) -> list[AuditSample]:
    """Paraphrase groups: for ``sections`` policy sections drawn with ``seed``, every :data:`ASKS`
    template and the customer-voice instruction, sharing the section id as ``group``."""
    chosen = _sections(abcd_root)
    chosen = [chosen[i] for i in sorted(random.Random(seed).sample(range(len(chosen)), sections))]
    samples = []
    for flow, name, instructions, description, entry in chosen:
        questions = [
            (f"ask{n}", ask.format(x=f"{name.lower()} ({description})")) for n, ask in enumerate(ASKS)
        ]
        if instructions and (voiced := _customer_voice(instructions[0])):
            questions.append(("voice", voiced))
        for template, question in questions:
            samples.append(
                AuditSample(
                    id=f"paraphrase:{entry.id}:{template}",
                    question=question,
                    category="paraphrase",
                    group=entry.id,
                    reference_answer=entry.answer,
                    reference_contexts=(entry.passage,),
                    reference_source=entry.id,
                    source=f"abcd/guidelines.json: {flow} > {name} (template {template}, seed {seed}; MIT)",
                )
            )
    return samples
