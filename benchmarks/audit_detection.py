"""How well the audit's hallucination checks catch the reference bot's injected fabrications.

Starts the reference bot twice on 127.0.0.1 -- with ``bot.faults.fabricate_rate`` (default 0.3) and clean
-- both with ``report_in_response=false`` so the audit sees only what a real bot would return. Runs the
``rag_abcd`` suite against each (``csml.audit.run.audit``, no cache, no MLflow), then joins every scored
sample to the bot's ``replies.jsonl`` record by request id (the completion ``id``) and prints, per
detector and for their union, precision and recall of flagging the corrupted replies, recall per
corruption kind, and the false-alarm rate on the clean bot. Goals (issue 5): precision and recall
>= 0.90, clean false-alarm rate <= 0.05. ``groundedness`` uses the suite's method (the offline judge by
default, ``groundedness_judge.model_uri`` resolved in the project's MLflow store unless
``MLFLOW_TRACKING_URI`` is set) or ``--groundedness-method embedding``.

    .venv/bin/python benchmarks/audit_detection.py
    .venv/bin/python benchmarks/audit_detection.py --rate 0.5 --seeds 0 1 2
    .venv/bin/python benchmarks/audit_detection.py --seeds 0 1 2 --groundedness-method embedding
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from csml.config import OFFLINE_ENV, compose

DETECTORS = {
    "fabricated_entities": lambda scores: scores["fabricated_entities"]["value"] == 1.0,
    "groundedness<1": lambda scores: (scores["groundedness"]["value"] or 1.0) < 1.0,
    "unsupported_sentences": lambda scores: (scores["unsupported_sentences"]["value"] or 0.0) > 0.0,
}


def run_audit(rate: float, seed: int, root: Path, extra: list[str]) -> list[dict]:
    """One audit of the whole suite against a bot fabricating at ``rate``; rows joined to the bot's log."""
    from csml.audit.run import audit
    from csml.bot.app import create_app
    from csml.bot.server import BackgroundServer

    out = root / f"rate{rate}_seed{seed}"
    bot_cfg = compose(
        "serve",
        [
            f"paths.run_dir={root}/runs",
            f"paths.output_dir={out}/bot",
            f"bot.faults.fabricate_rate={rate}",
            f"bot.faults.seed={seed}",
            "bot.faults.report_in_response=false",
        ],
    )
    with BackgroundServer(create_app(bot_cfg)) as server:
        cfg = compose(
            "audit",
            [
                f"paths.run_dir={root}/runs",
                f"paths.output_dir={out}/audit",
                f"target.url={server.url}",
                "cache_dir=null",
                "progress=false",
                "~tracking",
                *extra,
            ],
        )
        _, paths = audit(cfg)
    truth = {}
    for line in Path(bot_cfg.bot.reply_log).read_text().splitlines():
        record = json.loads(line)
        truth[record["request_id"]] = record
    rows = []
    for line in paths["samples"].read_text().splitlines():
        sample = json.loads(line)
        raw = sample["reply"]["raw"]
        if not isinstance(raw, dict) or raw.get("id") not in truth:
            continue
        record = truth[raw["id"]]
        kinds = [c.get("kind") for c in record.get("corruptions") or []]
        rows.append(
            {
                "id": sample["id"],
                "corrupted": bool(record.get("corrupted")),
                "kinds": kinds,
                "scores": sample["scores"],
            }
        )
    return rows


def report(name: str, rows: list[dict], clean: list[dict]) -> None:
    flagged = [r for r in rows if DETECTORS[name](r["scores"])] if name in DETECTORS else []
    if name == "union":
        flagged = [r for r in rows if any(d(r["scores"]) for d in DETECTORS.values())]
    corrupted = [r for r in rows if r["corrupted"]]
    tp = sum(r["corrupted"] for r in flagged)
    precision = tp / len(flagged) if flagged else float("nan")
    recall = tp / len(corrupted) if corrupted else float("nan")
    detect = (lambda s: any(d(s) for d in DETECTORS.values())) if name == "union" else DETECTORS[name]
    false_alarms = sum(detect(r["scores"]) for r in clean)
    by_kind = Counter(k for r in corrupted for k in r["kinds"])
    caught = Counter(k for r in corrupted if detect(r["scores"]) for k in r["kinds"])
    kinds = ", ".join(f"{k} {caught[k]}/{n}" for k, n in sorted(by_kind.items()))
    print(
        f"{name:<22} precision {precision:.3f} ({tp}/{len(flagged)})  recall {recall:.3f} ({tp}/{len(corrupted)})  "
        f"clean false alarms {false_alarms / len(clean):.3f} ({false_alarms}/{len(clean)})  caught by kind: {kinds}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=0.3, help="bot.faults.fabricate_rate")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="bot.faults.seed values (one audit each)"
    )
    parser.add_argument(
        "--groundedness-method",
        choices=["judge", "embedding"],
        default=None,
        help="metrics.groundedness.params.method (default: the suite's, i.e. the judge)",
    )
    parser.add_argument(
        "--judge-uri", default=None, help="groundedness_judge.model_uri (default: conf/audit.yaml's)"
    )
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    extra = [f"groundedness_judge.model_uri={args.judge_uri}"] if args.judge_uri else []
    if args.groundedness_method:
        extra.append(f"+metrics.groundedness.params.method={args.groundedness_method}")
    if "MLFLOW_TRACKING_URI" not in os.environ:
        # The audits run with a temporary run_dir and no tracking, so a models:/ judge URI would otherwise be
        # looked up in MLflow's default store (./mlflow.db), not the project's runs/mlflow.db.
        import mlflow

        tracking = compose("audit").tracking
        mlflow.set_tracking_uri(str(tracking.uri))
        mlflow.set_registry_uri(str(tracking.get("registry_uri") or tracking.uri))
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = [r for seed in args.seeds for r in run_audit(args.rate, seed, root, extra)]
        clean = run_audit(0.0, args.seeds[0], root, extra)
    print(
        f"rag_abcd against the reference bot, fabricate_rate={args.rate}, seeds {args.seeds}: {len(rows)} replies, "
        f"{sum(r['corrupted'] for r in rows)} corrupted; clean bot: {len(clean)} replies "
        f"({time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.1f}); groundedness method "
        f"{args.groundedness_method or 'suite default (judge)'}{', judge ' + args.judge_uri if args.judge_uri else ''}"
    )
    for name in [*DETECTORS, "union"]:
        report(name, rows, clean)


if __name__ == "__main__":
    main()
