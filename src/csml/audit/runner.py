"""The audit runner: asks the bot every selected question, concurrently, and writes each reply as it
arrives, so an interrupted audit resumes where it stopped.

``replies.jsonl`` (in the audit's output folder) gets one line per answered question --
``{"id", "request_key", "messages", "reply", "cached"}`` -- flushed as soon as the reply arrives. On a
rerun into the same folder, a question whose id and request key (adapter identity + conversation) are
already there with a usable reply is not asked again; errors and timeouts are asked again. The first
question is asked alone: an HTTP 401, 403 or 404 (or a 400 naming the model) there is a misconfigured target
-- wrong URL, model or key -- and stops the audit with the server's message before asking the rest.
Independently, a :class:`ReplyCache` keyed by request alone lets any later audit of the same bot reuse
successful replies (``cache_dir``; failed requests are never cached).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from csml.audit.adapters import BotAdapter
from csml.audit.errors import AuditConfigError
from csml.schemas import AuditSample, BotReply

log = logging.getLogger(__name__)


class ReplyCache:
    """Successful bot replies keyed by request key, in ``<folder>/replies.jsonl`` (append-only).

    Args:
        folder: Where the cache lives; None disables it.
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.path = Path(folder) / "replies.jsonl" if folder else None
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path and self.path.is_file():
            self.entries = {row["request_key"]: row["reply"] for row in read_jsonl(self.path)}

    def get(self, key: str) -> BotReply | None:
        """The cached reply for ``key``, or None."""
        return BotReply.from_dict(self.entries[key]) if key in self.entries else None

    async def through(self, key: str, send: Callable[[], Awaitable[BotReply]]) -> tuple[BotReply, bool]:
        """The cached reply for ``key``, else ``send()``'s (stored when it succeeded); whether it was cached."""
        if (cached := self.get(key)) is not None:
            return cached, True
        reply = await send()
        self.put(key, reply)
        return reply, False

    def put(self, key: str, reply: BotReply) -> None:
        """Stores a successful reply (failed ones are retried next time, not cached)."""
        if self.path is None or not reply.ok or key in self.entries:
            return
        self.entries[key] = reply.to_dict()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"request_key": key, "reply": self.entries[key]}, ensure_ascii=False) + "\n")


def check_configuration(adapter: BotAdapter, reply: BotReply) -> None:
    """Raises when a reply says the target is misconfigured: HTTP 401 / 403 (key), 404 (URL or model), or
    400 naming the model."""
    error = reply.error or ""
    named_model = reply.status == 400 and "model" in error.lower()
    if reply.status not in (401, 403, 404) and not named_model:
        return
    hint = (
        "the key (target.api_key_env)"
        if reply.status in (401, 403)
        else "target.url, target.path and target.model"
    )
    raise AuditConfigError(
        f"target {adapter.name}: the first question got HTTP {reply.status} ({error}); check {hint}. "
        "Nothing else was asked; rerun in the same folder once fixed."
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipping a truncated line (an interrupted write)", path)
    return rows


def resume(path: Path, keys: dict[str, str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Rows of earlier runs in ``path`` to keep -- the newest row of each id whose request key still matches
    ``keys`` and whose reply succeeded -- and the ids whose newest matching row failed (to ask again)."""
    done: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for row in read_jsonl(path):
            if keys.get(row.get("id")) == row.get("request_key"):
                done[row["id"]] = row
    failed = [i for i, row in done.items() if not BotReply.from_dict(row["reply"]).ok]
    for sample_id in failed:
        del done[sample_id]
    return done, failed


async def write_rows(
    path: Path,
    pending: list[AuditSample],
    work: Callable[[AuditSample], Awaitable[dict[str, Any]]],
    done: dict[str, dict[str, Any]],
    bar: Any,
    check_first: Callable[[dict[str, Any]], None],
) -> None:
    """Runs ``work`` on every pending sample and appends each row to ``path`` (flushed) as it completes,
    into ``done`` and the progress ``bar``; the first sample runs alone so that ``check_first`` can stop a
    misconfigured audit before the rest are sent."""
    with path.open("a", encoding="utf-8") as out:

        def keep(row: dict[str, Any]) -> None:
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            out.flush()
            done[row["id"]] = row
            bar.update(1)

        if pending:
            first = await work(pending[0])
            keep(first)
            check_first(first)
        for next_done in asyncio.as_completed([work(s) for s in pending[1:]]):
            keep(await next_done)


async def collect_replies(
    adapter: BotAdapter,
    samples: list[AuditSample],
    replies_path: Path,
    cache: ReplyCache | None = None,
    concurrency: int = 8,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Gets a reply for every sample, resuming from ``replies_path``; returns rows keyed by sample id.

    Every row written is ``{"id", "request_key", "messages", "reply", "cached"}``; rows of earlier runs
    whose request key no longer matches (another bot, an edited question) or whose reply failed are asked
    again (the newest row of an id is the one kept).

    Raises:
        AuditConfigError: The first question asked got an answer that says the target is misconfigured.
    """
    from tqdm.auto import tqdm

    keys = {s.id: adapter.request_key(s.messages()) for s in samples}
    done, failed = resume(replies_path, keys)
    pending = [s for s in samples if s.id not in done]
    if done or failed:
        log.info(
            "resuming: %d of %d questions already answered in %s; asking %d that failed again",
            len(done), len(samples), replies_path, len(failed),
        )  # fmt: skip
    replies_path.parent.mkdir(parents=True, exist_ok=True)
    semaphore = asyncio.Semaphore(max(1, int(concurrency)))
    bar = tqdm(total=len(samples), initial=len(done), desc="audit", unit="q", disable=not progress)

    replies = cache or ReplyCache(None)

    async def ask(sample: AuditSample) -> dict[str, Any]:
        async def send() -> BotReply:
            async with semaphore:
                return await adapter.send(sample.messages())

        reply, cached = await replies.through(keys[sample.id], send)
        return {
            "id": sample.id,
            "request_key": keys[sample.id],
            "messages": sample.messages(),
            "reply": reply.to_dict(),
            "cached": cached,
        }

    def check(first: dict[str, Any]) -> None:
        check_configuration(adapter, BotReply.from_dict(first["reply"]))

    try:
        await write_rows(replies_path, pending, ask, done, bar, check)
    finally:
        bar.close()
        await adapter.aclose()
    return done
