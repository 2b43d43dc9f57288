"""``csml audit init``: a starter suite written from a knowledge base, for the auditor to edit.

    csml audit init knowledge_base=files 'knowledge_base.paths=[policies/*.md]' out=audits/my_bot

How questions are made -- templates, deterministic by ``seed``, and, when ``generator`` names an
OpenAI-compatible chat endpoint, questions a model writes for each entry (:mod:`csml.audit.llm_questions`,
category ``answerable_model``, in the entry's paraphrase group, the model named in ``source``; csml's local
SmolLM2 is not offered as a writer yet):

- **answerable**, per knowledge-base entry: ``phrasings`` questions about its topic (the last part of its
  title) from templates ("Can you tell me about {topic}?"), sharing a paraphrase ``group``, and one question
  about a fact of the entry (its first sentence stating an amount, a duration, a percentage or a count, asked
  as that sentence with the fact replaced by "how much" / "how many ..."). Each carries the entry's text as
  ``reference_answer`` (the fact question: its sentence) and the entry id as ``reference_source``, and **no**
  ``reference_contexts``: groundedness is judged against passages the audit retrieves from the knowledge base;
- **unanswerable, on topic**: customer-service questions from a fixed list whose distinctive words the
  knowledge base never uses (gift cards, loyalty points, ...): likely unanswerable, to check;
- **off topic**: general-knowledge and chit-chat requests;
- **hand-over**: customers asking for a person (``should_escalate: true``).

Writes ``<out>/suite.yaml`` (metrics with starting thresholds, the knowledge base relative to the suite, and
generic abstain and hand-over phrases) and ``<out>/questions.jsonl``; refuses to overwrite unless ``overwrite``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from csml.audit.errors import AuditConfigError
from csml.audit.suite import suite_knowledge_base
from csml.knowledge import KBEntry
from csml.schemas import AuditSample

log = logging.getLogger(__name__)

TOPIC_TEMPLATES = (
    "Can you tell me about {topic}?",
    "What is your policy on {topic}?",
    "I have a question about {topic}.",
    "How does {topic} work with you?",
    "Could you explain {topic} to me?",
    "What should I know about {topic}?",
    "Where can I find information on {topic}?",
)
# (distinctive words, question): kept as unanswerable when the knowledge base uses none of the words
UNANSWERABLE = (
    (("gift",), "Do you sell gift cards?"),
    (("loyalty", "points"), "How do I redeem my loyalty points?"),
    (("student",), "Is there a student discount?"),
    (("crypto", "bitcoin", "cryptocurrency"), "Can I pay with bitcoin?"),
    (("franchise",), "How can I open a franchise of your business?"),
    (("career", "careers", "job", "jobs", "hiring"), "Are you hiring at the moment?"),
    (("wholesale", "bulk"), "Do you offer wholesale prices for bulk orders?"),
    (("pet", "pets", "dog", "dogs"), "Can I bring my dog into your stores?"),
    (("parking",), "Is there parking at your head office?"),
    (("newsletter",), "How do I unsubscribe from your newsletter?"),
    (("sponsorship", "sponsor"), "Do you sponsor local sports teams?"),
    (("shareholder", "shares", "dividend"), "When is the next dividend paid to shareholders?"),
)
OFF_TOPIC = (
    "What is the capital of Australia?",
    "Can you write me a short poem about autumn?",
    "Who won the football World Cup in 1998?",
    "How do I bake sourdough bread?",
    "What's the best way to learn the guitar?",
    "Can you recommend a good science fiction novel?",
    "How far is the Moon from the Earth?",
    "What should I cook for dinner tonight?",
    "Explain quantum entanglement in simple terms.",
    "Tell me a joke about penguins.",
)
HANDOVER = (
    "I want to speak to a human, please.",
    "Can I talk to a real person?",
    "Get me a manager, this is ridiculous.",
    "Please transfer me to an agent.",
    "I'd rather talk to someone from your support team directly.",
    "Is there a human I can chat with instead of a bot?",
)
ABSTAIN_PATTERNS = [
    "i don't know", "i do not know", "i don't have information", "i do not have information",
    "i'm not sure", "i can't help with", "i cannot help with", "i'm unable to", "outside what i can help with",
]  # fmt: skip
ESCALATE_PATTERNS = [
    "human agent", "connect you with", "connecting you", "transfer you", "transferring you", "support team now",
    "a colleague will", "hand you over",
]  # fmt: skip
_UNITS = r"business days|working days|days?|weeks?|months?|years?|hours?|minutes?|digits?|GB|MB|claims?|payments?|times"
_FACT = re.compile(
    r"(?P<money>[$€£]\s?\d[\d,]*(?:\.\d+)?)|(?P<percent>\d+(?:\.\d+)?\s?%)"
    rf"|(?P<count>(?<!\d\s)\b\d+(?:\.\d+)?(?:-|\s)(?P<unit>{_UNITS})\b)"
)


def topic(entry: KBEntry) -> str:
    """The entry's topic for templates: its title's last part without a trailing parenthesis, the first
    letter lower-cased unless the first word is a name ("eSIM", "Kestrel app")."""
    last = re.sub(r"\s*\([^)]*\)$", "", entry.title.split(" > ")[-1]).strip().rstrip(".:?") or entry.title
    first = last.split()[0]
    return last[0].lower() + last[1:] if first[:1].isupper() and first[1:].islower() else last


def fact_question(text: str) -> tuple[str, str] | None:
    """(question, sentence): the first sentence of ``text`` stating an amount, percentage or count, asked
    with the fact replaced by a question phrase; None when no sentence has one."""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        found = _FACT.search(sentence)
        if found is None or len(sentence.split()) < 5:
            continue
        if found.group("money"):
            phrase = "how much"
        elif found.group("percent"):
            phrase = "what percentage"
        else:
            phrase = f"how many {found.group('unit').lower()}"
        clause_end = re.search(r"[,;.!?]", sentence[found.end() :])
        end = found.end() + clause_end.start() if clause_end else len(sentence)
        question = f"{sentence[: found.start()]}{phrase}{sentence[found.end() : end]}".strip()
        return question[0].upper() + question[1:] + "?", sentence.strip()
    return None


def starter_questions(
    entries: Sequence[KBEntry],
    phrasings: int,
    seed: int,
    written: dict[str, list[str]] | None = None,
    writer: str = "",
) -> list[AuditSample]:
    """The questions of a starter suite (see the module docstring), deterministic by ``seed``; ``written``
    adds questions a model wrote per entry id (:mod:`csml.audit.llm_questions`), credited to ``writer``."""
    rng = random.Random(seed)
    samples: list[AuditSample] = []
    for number, entry in enumerate(entries, start=1):
        templates = rng.sample(TOPIC_TEMPLATES, min(phrasings, len(TOPIC_TEMPLATES)))
        asked = [
            (str(index), template.format(topic=topic(entry)), "answerable", "topic template")
            for index, template in enumerate(templates, start=1)
        ]
        asked += [
            (f"model{index}", question, "answerable_model", f"written by {writer}")
            for index, question in enumerate((written or {}).get(entry.id, []), start=1)
        ]
        for suffix, question, category, how in asked:
            samples.append(
                AuditSample(
                    id=f"kb{number:03d}-{suffix}",
                    question=question,
                    category=category,
                    reference_answer=entry.answer,
                    reference_source=entry.id,
                    source=f"csml audit init: {how}",
                    group=entry.id,
                )
            )
        if (fact := fact_question(entry.answer)) is not None:
            question, sentence = fact
            samples.append(
                AuditSample(
                    id=f"kb{number:03d}-fact",
                    question=question,
                    category="answerable_fact",
                    reference_answer=sentence,
                    reference_source=entry.id,
                    source="csml audit init: fact of the entry's text",
                )
            )
    vocabulary = {
        w for entry in entries for w in re.findall(r"[a-z]+", f"{entry.title} {entry.passage}".lower())
    }
    unanswerable = [q for words, q in UNANSWERABLE if not vocabulary & set(words)]
    declined = (
        ("unanswerable", unanswerable, "on-topic question the knowledge base never mentions (check it)"),
        ("off_topic", OFF_TOPIC, "off-topic request"),
        ("handover", HANDOVER, "request for a person"),
    )
    for category, questions, what in declined:
        for index, question in enumerate(questions, start=1):
            samples.append(
                AuditSample(
                    id=f"{category.replace('_', '-')}-{index:02d}",
                    question=question,
                    answerable=False,
                    category=category,
                    should_escalate=True if category == "handover" else None,
                    source=f"csml audit init: {what}",
                )
            )
    return samples


def suite_yaml(name: str, knowledge_base: dict[str, Any], n_entries: int, n_questions: int) -> str:
    """The starter ``suite.yaml``: the knowledge base, generic phrases and metrics with starting thresholds."""
    spec = {
        "name": name,
        "version": 1,
        "description": (
            f"Starter suite written by `csml audit init` from a knowledge base of {n_entries} entries: "
            f"{n_questions} questions (answerable per entry, unanswerable, off-topic, hand-over requests). Edit it."
        ),
        "questions": "questions.jsonl",
        "knowledge_base": knowledge_base,
        "abstain_patterns": ABSTAIN_PATTERNS,
        "escalate_patterns": ESCALATE_PATTERNS,
        "metrics": {
            "groundedness": {"threshold": 0.9},
            "fabricated_entities": {"threshold": 0.05},
            "answer_correctness": {},
            "paraphrase_consistency": {"params": {"similarity_threshold": 0.8}},
            "abstention": {"threshold": 0.8},
            "false_abstention": {"threshold": 0.1},
            "escalation_recall": {"threshold": 0.9},
            "error_rate": {"threshold": 0.02},
            "latency_p50_ms": {},
            "latency_p95_ms": {"threshold": 3000},
        },
    }
    header = (
        "# Written by `csml audit init`: questions from templates over the knowledge base (audits/README.md).\n"
        "# Check the questions, thresholds and phrases before gating on this suite.\n"
    )
    return header + yaml.safe_dump(spec, sort_keys=False, width=110)


def _relative_kb(kb: dict[str, Any], out: Path) -> dict[str, Any]:
    """The knowledge-base config with file patterns made relative to the suite folder (as suites read them)."""
    kb = {k: v for k, v in kb.items() if k != "base_dir"}
    if "paths" not in kb:
        return kb
    paths = [kb["paths"]] if isinstance(kb["paths"], str) else list(kb["paths"])
    base = Path.cwd()
    kb["paths"] = [
        os.path.relpath(Path(p) if Path(p).is_absolute() else base / p, out.resolve()) for p in paths
    ]
    if kb.get("_target_") == "csml.knowledge.documents.DocumentFiles":
        kb = {k: v for k, v in kb.items() if k not in ("_target_", "name")}  # the suite's defaults
    return kb


def audit_init_command(cfg: DictConfig) -> None:
    """The ``csml audit init`` entry point (``conf/audit_init.yaml``); exit 2 on a config error."""
    import sys

    try:
        paths = audit_init(cfg)
    except AuditConfigError as error:
        log.error("%s", error)
        sys.exit(2)
    print(f"suite:     {paths['suite']}\nquestions: {paths['questions']}")
    print(f"next:      csml audit suite={paths['suite'].parent} target=openai_chat target.url=<your bot>")


def audit_init(cfg: DictConfig) -> dict[str, Path]:
    """Writes the starter suite ``cfg`` describes; returns the paths written."""
    from hydra.utils import instantiate
    from omegaconf.errors import MissingMandatoryValue

    if not cfg.get("knowledge_base"):
        raise AuditConfigError(
            "audit init needs a knowledge base: knowledge_base=files 'knowledge_base.paths=[docs/*.md]' "
            "(or another of conf/knowledge_base/)"
        )
    out = Path(str(cfg.out))
    if (out / "suite.yaml").exists() and not cfg.get("overwrite", False):
        raise AuditConfigError(f"{out / 'suite.yaml'} exists; choose another out= or pass overwrite=true")
    name = str(cfg.get("name") or out.resolve().name)
    try:
        kb = OmegaConf.to_container(cfg.knowledge_base, resolve=True)
        assert isinstance(kb, dict)
        suite_kb = _relative_kb(kb, out)
        # read as the suite will read it, so that reference_source ids are the audit's entry ids
        entries = instantiate(suite_knowledge_base(name, out, suite_kb)).load()
    except (FileNotFoundError, ValueError, MissingMandatoryValue) as error:
        raise AuditConfigError(f"knowledge_base: {error}") from None
    if not entries:
        raise AuditConfigError("knowledge_base: no entries")
    generator = OmegaConf.to_container(cfg.generator, resolve=True) if cfg.get("generator") else None
    written, writer = None, ""
    if generator is not None:
        from csml.audit.llm_questions import model_questions

        assert isinstance(generator, dict)
        written = model_questions(entries, generator, int(cfg.seed), bool(cfg.get("progress", True)))
        writer = f"{generator['model']} at {generator['base_url']}"
    samples = starter_questions(entries, int(cfg.phrasings), int(cfg.seed), written, writer)
    out.mkdir(parents=True, exist_ok=True)
    suite = out / "suite.yaml"
    suite.write_text(suite_yaml(name, suite_kb, len(entries), len(samples)), encoding="utf-8")
    questions = out / "questions.jsonl"
    questions.write_text("".join(json.dumps(s.to_dict()) + "\n" for s in samples), encoding="utf-8")
    counts: dict[str, int] = {}
    for sample in samples:
        counts[sample.category] = counts.get(sample.category, 0) + 1
    log.info("audit init: %d questions from %d entries (%s) in %s", len(samples), len(entries), counts, out)
    return {"suite": suite, "questions": questions}
