"""Throughput of the audit runner against a local bot that answers in a fixed time, and its overhead over
a bare async HTTP loop.

A minimal OpenAI-compatible bot (``--latency-ms``, default 100 ms, then a fixed reply with contexts) runs
on 127.0.0.1 in a background thread. The same ``--requests`` distinct questions are sent with
``--concurrency`` in flight (default 16) twice: by a bare ``httpx.AsyncClient`` loop under a semaphore,
and by :func:`csml.audit.runner.collect_replies` through the ``OpenAIChatAdapter`` (request keys, the
JSONL written as replies arrive, the progress bar off). Prints samples/s of both and the ratio of their
wall times (best of ``--rounds``). Goals (issue 5): >= 100 samples/s and a ratio <= 1.1. Scoring is not
included: it depends on the metrics, not on the runner.

    .venv/bin/python benchmarks/audit_throughput.py
    .venv/bin/python benchmarks/audit_throughput.py --requests 2000 --concurrency 32 --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


def fixed_latency_bot(latency_s: float) -> Any:
    """An ASGI app answering ``POST /v1/chat/completions`` after ``latency_s`` seconds."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        await asyncio.sleep(latency_s)
        question = body["messages"][-1]["content"]
        return JSONResponse(
            {
                "id": "chatcmpl-bench",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": f"Answer to {question}."}}
                ],
                "csml": {"contexts": ["A passage."], "abstained": False, "escalated": False},
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


async def bare_loop(url: str, questions: list[str], concurrency: int) -> float:
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def ask(question: str) -> None:
            async with semaphore:
                response = await client.post(
                    f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]}
                )
                response.json()

        start = time.perf_counter()
        await asyncio.gather(*(ask(q) for q in questions))
        return time.perf_counter() - start


async def runner(url: str, questions: list[str], concurrency: int, folder: Path) -> float:
    from csml.audit.adapters import OpenAIChatAdapter
    from csml.audit.runner import collect_replies
    from csml.schemas import AuditSample

    adapter = OpenAIChatAdapter("bench", url, concurrency=concurrency, retries=0)
    samples = [AuditSample(id=f"q{i}", question=q) for i, q in enumerate(questions)]
    start = time.perf_counter()
    rows = await collect_replies(
        adapter, samples, folder / "replies.jsonl", None, concurrency, progress=False
    )
    elapsed = time.perf_counter() - start
    errors = sum(1 for row in rows.values() if row["reply"]["error"])
    assert len(rows) == len(questions) and not errors, f"{errors} errors"
    return elapsed


def main() -> None:
    from csml.bot.server import BackgroundServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with (
        BackgroundServer(fixed_latency_bot(args.latency_ms / 1000)) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        bare, ours = [], []
        for round_ in range(args.rounds):
            questions = [f"round {round_} question {i}" for i in range(args.requests)]
            bare.append(asyncio.run(bare_loop(server.url, questions, args.concurrency)))
            ours.append(asyncio.run(runner(server.url, questions, args.concurrency, Path(tmp) / str(round_))))
    ideal = args.concurrency / (args.latency_ms / 1000)
    print(
        f"{args.requests} questions, {args.concurrency} in flight, bot latency {args.latency_ms:g} ms "
        f"(at most {ideal:.0f}/s); load average {os.getloadavg()[0]:.1f}"
    )
    print(f"bare httpx loop   {args.requests / min(bare):7.1f} samples/s  (best of {args.rounds})")
    print(f"csml audit runner {args.requests / min(ours):7.1f} samples/s  (best of {args.rounds})")
    print(f"overhead ratio    {min(ours) / min(bare):.3f}x  (runner wall time / bare loop wall time)")


if __name__ == "__main__":
    main()
