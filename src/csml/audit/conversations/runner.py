"""Runs simulated conversations against a bot: concurrently, with a progress bar and the audit's reply cache
(stateless sessions), each finished conversation appended to ``conversations.jsonl`` as it ends, so an
interrupted audit resumes without re-running them.

A conversation is a suite sample expanded with a persona (:func:`conversation_samples`); its row has the
same shape as a one-question audit's (``{"id", "request_key", "messages", "reply", "cached"}``), the reply
being the bot's last one with the transcript in ``raw["conversation"]``, so the scorecard, intervals,
report and ``csml audit compare`` treat conversations as they treat questions. A conversation cut off by
an interruption is run again from its first turn; one that ended on a bot error is run again too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from csml.audit.adapters import BotAdapter
from csml.audit.conversations.goals import goal_of
from csml.audit.conversations.simulator import PERSONAS, CustomerSettings, Phrases, TemplateCustomer
from csml.audit.errors import AuditConfigError
from csml.audit.runner import ReplyCache, check_configuration, resume, write_rows
from csml.schemas import AuditSample, BotReply

log = logging.getLogger(__name__)
SPEC_KEYS = {"personas", "personas_per_goal", "max_turns", "patience", "seed"}


def conversation_samples(samples: list[AuditSample], spec: dict[str, Any]) -> list[AuditSample]:
    """Each goal sample once per persona it is given: ``personas_per_goal`` of ``personas`` drawn per goal
    with ``seed`` (``<goal id>|<persona>``; ``metadata.persona`` is set, ``metadata.switch_to`` names the
    goal a switcher switches to).

    Raises:
        AuditConfigError: unknown keys or personas in the suite's ``conversations``.
    """
    if unknown := sorted(set(spec) - SPEC_KEYS):
        raise AuditConfigError(f"conversations: unknown keys {unknown}; known {sorted(SPEC_KEYS)}")
    personas = list(spec.get("personas") or PERSONAS)
    if bad := sorted(set(personas) - set(PERSONAS)):
        raise AuditConfigError(f"conversations.personas: unknown {bad}; known {list(PERSONAS)}")
    per_goal = min(int(spec.get("personas_per_goal", 1)), len(personas))
    rng = random.Random(int(spec.get("seed", 0)))
    out = []
    for sample in samples:
        for persona in rng.sample(personas, per_goal):
            metadata = {**(sample.metadata or {}), "persona": persona}
            if persona == "switcher" and len(samples) > 1:
                metadata["switch_to"] = rng.choice([s.id for s in samples if s.id != sample.id])
            out.append(replace(sample, id=f"{sample.id}|{persona}", metadata=metadata))
    return out


def customers(
    samples: list[AuditSample], goals_by_id: dict[str, AuditSample], phrases: Phrases, settings: CustomerSettings,
    seed: int, writer: Any = None,
) -> dict[str, TemplateCustomer]:  # fmt: skip
    """The simulated customer of each conversation sample (its own generator, seeded by ``seed`` and the
    sample id; ``writer``: the model writing its later messages, shared)."""
    out = {}
    for sample in samples:
        meta = sample.metadata or {}
        other = goals_by_id.get(meta.get("switch_to", ""))
        rng = random.Random(f"{seed}|{sample.id}")
        out[sample.id] = TemplateCustomer(
            goal_of(sample),
            meta["persona"],
            phrases,
            settings,
            rng,
            goal_of(other) if other else None,
            writer,
        )
    return out


def _key(adapter: BotAdapter, sample: AuditSample, settings: CustomerSettings, seed: int, writer: str) -> str:
    text = json.dumps(
        {
            "bot": adapter.identity(),
            "sample": sample.to_dict(),
            "settings": repr(settings),
            "seed": seed,
            "writer": writer,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


async def run_conversations(
    adapter: BotAdapter,
    samples: list[AuditSample],
    talkers: dict[str, TemplateCustomer],
    path: Path,
    settings: CustomerSettings,
    seed: int,
    concurrency: int = 8,
    progress: bool = True,
    cache: ReplyCache | None = None,
) -> dict[str, dict[str, Any]]:
    """Holds every conversation, resuming from ``path``; returns rows keyed by sample id (module docstring).
    With a ``cache``, each turn of a stateless session (the whole history in every request) is looked up
    and stored by its request key, as the questions of a one-question audit are; sessions the server keeps
    are never served from the cache.

    Raises:
        AuditConfigError: The first conversation's first reply says the target is misconfigured.
    """
    from tqdm.auto import tqdm

    writer = next((t.writer for t in talkers.values() if t.writer is not None), None)
    keys = {s.id: _key(adapter, s, settings, seed, writer.name if writer else "") for s in samples}
    done, _ = resume(path, keys)
    pending = [s for s in samples if s.id not in done]
    if done:
        log.info("resuming: %d of %d conversations already held in %s", len(done), len(samples), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    semaphore = asyncio.Semaphore(max(1, int(concurrency)))
    bar = tqdm(total=len(samples), initial=len(done), desc="conversations", unit="conv", disable=not progress)

    async def hold(sample: AuditSample) -> dict[str, Any]:
        async with semaphore:
            session = adapter.session()
            send = session.send
            if cache is not None and session.stateless:

                async def send(messages: list[dict[str, str]]) -> BotReply:
                    key = adapter.request_key(messages)
                    return (await cache.through(key, lambda: session.send(messages)))[0]

            transcript = await talkers[sample.id].talk(send)
        last = transcript.turns[-1].reply
        last.raw = {"conversation": transcript.to_dict(), "last": last.raw}
        messages = []
        for turn in transcript.turns:
            messages += [
                {"role": "user", "content": turn.customer},
                {"role": "assistant", "content": turn.reply.text},
            ]
        return {"id": sample.id, "request_key": keys[sample.id], "messages": messages, "reply": last.to_dict(),
                "cached": False}  # fmt: skip

    def check(first: dict[str, Any]) -> None:
        if first["reply"]["raw"]["conversation"]["turns"][0]["error"]:
            check_configuration(adapter, BotReply.from_dict(first["reply"]))

    try:
        await write_rows(path, pending, hold, done, bar, check)
    finally:
        bar.close()
        await adapter.aclose()
        if writer is not None:
            await writer.aclose()
    return done
