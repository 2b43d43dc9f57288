"""Conversation audits against the reference bot: the clean bot's goal completion and escalation timing with
95% intervals, detection of its conversation faults, and throughput.

Starts the reference bot on 127.0.0.1 (``report_in_response=false``) clean, then with
``bot.faults.ignore_handover_rate``, ``loop_rate`` and ``contradict_rate`` (``--rate`` each), and runs the
``conversations`` suite (155 goals x 2 personas = 310 simulated conversations; SGD goals read from
``paths.external_data_dir``) through ``--target`` (the conversation API, or ``reference_bot``: OpenAI-compatible
chat completions with the whole history in every request). Every conversation is joined to the bot's reply
log through the request ids of its turns, and per fault the precision and recall of the metric that should
catch it are printed (``escalation_in_time`` = 0, ``bot_loops`` = 1, ``self_contradiction`` = 1), with each
metric's false alarms on the clean bot. Goals (issue 15): >= 0.90 precision and recall per fault mode,
<= 0.05 false alarms; >= 200 conversations for the clean bot's figures. ``--latency-ms 100`` adds latency to
every reply and reports conversations per second (goal >= 20 with the template simulator, 2 cores).
``--throughput-bot`` times the suite instead against the second fake bot (:mod:`csml.devtools.faulty_bot`),
which answers in ``--latency-ms`` without using the cores the auditor runs on (the reference bot's MiniLM
shares them), through the OpenAI-compatible adapter with the whole history in every request.

    .venv/bin/python benchmarks/audit_conversations.py
    .venv/bin/python benchmarks/audit_conversations.py --target reference_bot --seeds 0 1
    .venv/bin/python benchmarks/audit_conversations.py --throughput-only --latency-ms 100
    .venv/bin/python benchmarks/audit_conversations.py --throughput-bot --latency-ms 100
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from csml.config import OFFLINE_ENV, compose

# per-turn groundedness by embedding similarity: no trained judge needed
EMBEDDING_TURNS = "+metrics.turn_groundedness.params={method:embedding}"
MODES = {  # bot fault -> (its rate, the metric that must catch it, the value that flags it)
    "ignored_handover": ("ignore_handover_rate", "escalation_in_time", 0.0),
    "looped": ("loop_rate", "bot_loops", 1.0),
    "contradicted": ("contradict_rate", "self_contradiction", 1.0),
}


def run(rate: float, seed: int, target: str, latency_ms: float, root: Path) -> tuple[dict, list[dict], float]:
    """One conversation audit; returns the scorecard, rows joined to the bot's log, and the wall time."""
    from csml.audit.run import audit
    from csml.bot.app import create_app
    from csml.bot.server import BackgroundServer

    out = root / f"rate{rate}_seed{seed}_{target}"
    bot_cfg = compose(
        "serve",
        [
            f"paths.run_dir={root}/runs",
            f"paths.output_dir={out}/bot",
            f"bot.faults.seed={seed}",
            f"bot.faults.latency_ms={latency_ms}",
            "bot.faults.report_in_response=false",
            *(f"bot.faults.{setting}={rate}" for setting, _, _ in MODES.values()),
        ],
    )
    with BackgroundServer(create_app(bot_cfg)) as server:
        cfg = compose(
            "audit",
            [
                "suite=conversations",
                f"target={target}",
                f"target.url={server.url}",
                "target.concurrency=64",
                "concurrency=64",
                f"paths.run_dir={root}/runs",
                f"paths.output_dir={out}/audit",
                "cache_dir=null",
                "progress=false",
                "~tracking",
                EMBEDDING_TURNS,
            ],
        )
        start = time.perf_counter()
        scorecard, paths = audit(cfg)
        wall = time.perf_counter() - start
    truth = {
        r["request_id"]: r for r in map(json.loads, Path(bot_cfg.bot.reply_log).read_text().splitlines())
    }
    rows = []
    for sample in map(json.loads, paths["samples"].read_text().splitlines()):
        turns = sample["reply"]["raw"]["conversation"]["turns"]
        kinds = {
            c["kind"] for t in turns for c in (truth.get(t["request_id"] or "", {}).get("corruptions") or [])
        }
        rows.append({"id": sample["id"], "kinds": kinds, "scores": sample["scores"]})
    return scorecard, rows, wall


def throughput(latency_ms: float, root: Path) -> None:
    """Times the suite against the fake Kestrel bot answering in ``latency_ms``."""
    from csml.audit.run import audit
    from csml.bot.server import BackgroundServer
    from csml.devtools.faulty_bot import FaultyBot, create_app

    with BackgroundServer(create_app(FaultyBot(corrupt_rate=0.0), latency_ms / 1000)) as server:
        cfg = compose(
            "audit",
            [
                "suite=conversations",
                "target=openai_chat",
                f"target.url={server.url}",
                "target.rate_limit_per_s=null",
                "target.concurrency=64",
                "concurrency=64",
                f"paths.run_dir={root}/runs",
                f"paths.output_dir={root}/throughput",
                "cache_dir=null",
                "progress=false",
                "~tracking",
                EMBEDDING_TURNS,
            ],
        )
        start = time.perf_counter()
        _, paths = audit(cfg)
        wall = time.perf_counter() - start
    rows = [json.loads(line) for line in paths["samples"].read_text().splitlines()]
    turns = sum(len(r["reply"]["raw"]["conversation"]["turns"]) for r in rows)
    print(
        f"fake bot answering in {latency_ms:g} ms, OpenAI-compatible, history in every request: {len(rows)} "
        f"conversations ({turns} turns) in {wall:.1f} s = {len(rows) / wall:.1f} conversations/s, "
        f"{turns / wall:.0f} turns/s (load average {os.getloadavg()[0]:.1f})"
    )


def flagged(row: dict, metric: str, value: float) -> bool:
    return row["scores"][metric]["value"] == value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=0.3, help="rate of each conversation fault")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="bot.faults.seed values")
    parser.add_argument("--target", default="reference_conversation", help="conf/target/ entry")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every reply")
    parser.add_argument("--throughput-only", action="store_true", help="only the clean bot, timed")
    parser.add_argument("--throughput-bot", action="store_true", help="time the suite against the fake bot")
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.throughput_bot:
            throughput(args.latency_ms, root)
            return
        scorecard, clean, wall = run(0.0, args.seeds[0], args.target, args.latency_ms, root)
        print(
            f"clean reference bot through {args.target}, latency +{args.latency_ms:g} ms: {len(clean)} conversations "
            f"in {wall:.1f} s = {len(clean) / wall:.1f} conversations/s (load average {os.getloadavg()[0]:.1f})"
        )
        for name, entry in scorecard["metrics"].items():
            interval = entry["ci95"] and f"[{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]"
            value = "-" if entry["value"] is None else f"{entry['value']:.3f}"
            print(f"  {name:<22} {value:>9}  95% interval {interval}  n={entry['n']}")
        for persona, values in (scorecard.get("by_persona") or {}).items():
            cells = ", ".join(
                f"{m} {values[m]:.3f}"
                for m in ("goal_completion", "escalation_in_time")
                if values.get(m) is not None
            )
            print(f"  persona {persona:<10} {values['samples']:>3} conversations: {cells}")
        if args.throughput_only:
            return
        rows = [r for seed in args.seeds for r in run(args.rate, seed, args.target, 0.0, root)[1]]
    print(
        f"faulty bot, each conversation fault at rate {args.rate}, seeds {args.seeds}: {len(rows)} conversations"
    )
    for kind, (_, metric, value) in MODES.items():
        hits = [r for r in rows if flagged(r, metric, value)]
        faulty = [r for r in rows if kind in r["kinds"]]
        tp = sum(kind in r["kinds"] for r in hits)
        alarms = sum(flagged(r, metric, value) for r in clean)
        missed = [r["id"] for r in faulty if not flagged(r, metric, value)][:4]
        false = [r["id"] for r in hits if kind not in r["kinds"]][:4]
        print(
            f"{kind:<17} {metric:<19} precision {tp / max(len(hits), 1):.3f} ({tp}/{len(hits)})  "
            f"recall {tp / max(len(faulty), 1):.3f} ({tp}/{len(faulty)})  clean false alarms "
            f"{alarms / max(len(clean), 1):.3f} ({alarms}/{len(clean)})"
            + (f"  missed e.g. {missed}" if missed else "")
            + (f"  false e.g. {false}" if false else "")
        )


if __name__ == "__main__":
    main()
