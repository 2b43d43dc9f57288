"""Latency and throughput of the reference bot (``csml serve``) under a bounded local load.

Starts the bot as its own process on a free 127.0.0.1 port, sends ``--requests`` one-turn questions taken
from its knowledge base (FAQ questions for ``bot=bank_faq``, section titles for ``bot=abcd``; distinct
while the KB has enough) to ``POST /v1/chat/completions`` with ``--concurrency`` requests in flight, and
prints p50/p95/p99 latency measured by the client, requests/s, and the server's CPU time per request
(which, unlike latency, barely depends on what else the machine runs; the 1-minute load average is
printed to show that). Goal: p95 < 50 ms on 2 CPU cores.

    .venv/bin/python benchmarks/bot_latency.py                       # bank FAQ if present, else ABCD
    .venv/bin/python benchmarks/bot_latency.py --bot abcd --requests 1000 --concurrency 16
    .venv/bin/python benchmarks/bot_latency.py --bot abcd bot.retrieval.workers=1   # serve overrides
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from hydra.utils import instantiate

from csml.config import OFFLINE_ENV, compose

JSON_HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_bot() -> str:
    cfg = compose("serve", ["bot=bank_faq", "paths.output_dir=/tmp"])
    return "bank_faq" if Path(cfg.bot.kb.path).is_file() else "abcd"


def questions(bot: str, count: int, seed: int) -> list[str]:
    """``count`` KB questions (titles), shuffled; distinct while the KB has enough."""
    cfg = compose("serve", [f"bot={bot}", "paths.output_dir=/tmp"])
    titles = [entry.title for entry in instantiate(cfg.bot.kb).load()]
    rng = random.Random(seed)
    picked: list[str] = []
    while len(picked) < count:
        rng.shuffle(titles)
        picked += titles[: count - len(picked)]
    return picked


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """CPU time (user + system) of a process so far: (its main thread, all threads). Linux ``/proc``;
    None elsewhere. The bot's main thread runs the event loop (HTTP, JSON, routing); the encoder runs in
    worker threads."""

    def read(stat: Path) -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    try:
        return read(Path(f"/proc/{pid}/task/{pid}/stat")), read(Path(f"/proc/{pid}/stat"))
    except OSError:
        return None


def cpu_per_request(before: tuple | None, after: tuple | None, requests: int) -> dict[str, float | None]:
    """Server CPU milliseconds per request: event-loop thread, and all threads."""
    if before is None or after is None:
        return {"server_cpu_ms_per_request": None, "event_loop_cpu_ms_per_request": None}
    return {
        "server_cpu_ms_per_request": round((after[1] - before[1]) * 1000 / requests, 2),
        "event_loop_cpu_ms_per_request": round((after[0] - before[0]) * 1000 / requests, 2),
    }


def start_server(bot: str, port: int, workdir: str, overrides: list[str]) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "csml",
        "serve",
        f"bot={bot}",
        f"server.port={port}",
        "server.log_level=warning",
        f"hydra.run.dir={workdir}",
        *overrides,
    ]
    server = subprocess.Popen(command, env={**OFFLINE_ENV, **os.environ})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the bot exited with code {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("the bot did not answer /healthz within 300 s")


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol to POST JSON and read the reply.

    The load generator shares the two cores with the bot it measures, so it must be cheap: this costs about a
    tenth of httpx's client CPU per request (``--client httpx`` measures with httpx for comparison).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        """Sends ``body`` as JSON to ``path``; returns the status code once the whole reply is read."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"{path}: a reply without Content-Length (status {status})")
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(url: str, texts: list[str], concurrency: int, client: str) -> tuple[list[float], int, float]:
    """Sends every text once with ``concurrency`` in flight; returns latencies (s), errors, wall time."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    latencies: list[float] = []
    errors = 0
    path = "/v1/chat/completions"
    target = httpx.URL(url)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as session:

        async def worker() -> None:
            nonlocal errors
            connection = Connection(target.host, target.port)
            try:
                while not queue.empty():
                    body = json.dumps({"messages": [{"role": "user", "content": queue.get_nowait()}]})
                    start = time.perf_counter()
                    if client == "httpx":
                        status = (await session.post(path, content=body, headers=JSON_HEADERS)).status_code
                    else:
                        status = await connection.post(path, body.encode())
                    latencies.append(time.perf_counter() - start)
                    errors += status != 200
            finally:
                connection.close()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bot", default=None, help="bot config (default: bank_faq if present, else abcd)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load generator's HTTP client (raw: cheapest)",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides for csml serve")
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)

    bot = args.bot or default_bot()
    texts = questions(bot, args.warmup + args.requests, args.seed)
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        server = start_server(bot, port, workdir, args.overrides)
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(load(url, texts[: args.warmup], args.concurrency, args.client))
            cpu_before, client_cpu = cpu_seconds(server.pid), time.process_time()
            latencies, errors, wall = asyncio.run(
                load(url, texts[args.warmup :], args.concurrency, args.client)
            )
            cpu_after, client_cpu = cpu_seconds(server.pid), time.process_time() - client_cpu
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = np.array(latencies) * 1000
    result = {
        "bot": bot,
        "overrides": args.overrides,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "client": args.client,
        "errors": errors,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "requests_per_s": round(args.requests / wall, 1),
        **cpu_per_request(cpu_before, cpu_after, args.requests),
        "client_cpu_ms_per_request": round(client_cpu * 1000 / args.requests, 2),
        "cpu_cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
