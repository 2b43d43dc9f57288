"""Auditing a bot that returns only text: how well the audit catches a foreign bot's corrupted answers with
no returned and no reference contexts, and how fast it scores.

Starts :mod:`csml.devtools.faulty_bot` (an OpenAI-compatible bot that is not csml's reference bot, answering
from ``audits/kestrel_support/kb`` in its own words, no contexts) on 127.0.0.1, corrupting ``--rate`` of its
answers, and audits it with the ``kestrel_support`` suite (written by ``csml audit init``: no reference
contexts) through ``target=openai_chat``. Groundedness is judged against passages the audit retrieves from
the suite's knowledge base. Every scored sample is joined to the bot's truth log by completion id.

Prints, per detector (``groundedness<1``, ``fabricated_entities``, their union): recall of corrupted answers
(per fault kind) and false alarms on clean answers; how many hand-overs and declines were scored for
groundedness (goal: none); and the audit's wall time and questions/s (``--repeat`` copies the questions,
``--latency-ms`` delays every answer). Goals (issue 14): recall >= 0.90, false alarms <= 0.05, >= 10
questions/s on 1,000 questions against a bot answering in 100 ms, scoring included.

    .venv/bin/python benchmarks/audit_blackbox.py --model runs/judge_groundedness/<run>/model
    .venv/bin/python benchmarks/audit_blackbox.py --model <model> --seeds 0 1 2 --rate 0.3
    .venv/bin/python benchmarks/audit_blackbox.py --model <model> --repeat 10 --latency-ms 100   # 1,050 questions
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

import yaml

from csml.config import OFFLINE_ENV, compose

SUITE = Path(__file__).resolve().parents[1] / "audits" / "kestrel_support"
DETECTORS = {
    "groundedness<1": lambda s: (
        (s["groundedness"]["value"] if s["groundedness"]["value"] is not None else 1.0) < 1.0
    ),
    "fabricated_entities": lambda s: s["fabricated_entities"]["value"] == 1.0,
}


def suite_copy(folder: Path, repeat: int) -> Path:
    """The kestrel_support suite with its questions repeated ``repeat`` times (distinct ids and wording)."""
    spec = yaml.safe_load((SUITE / "suite.yaml").read_text())
    spec["knowledge_base"]["paths"] = [str(SUITE / p) for p in spec["knowledge_base"]["paths"]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    lines = (SUITE / "questions.jsonl").read_text().splitlines()
    with (folder / "questions.jsonl").open("w") as out:
        for copy in range(repeat):
            for line in lines:
                sample = json.loads(line)
                if copy:
                    sample["id"] = f"{sample['id']}-copy{copy}"
                    sample["question"] = f"{sample['question']} (ref {copy})"
                    sample.pop("group", None)
                out.write(json.dumps(sample) + "\n")
    return folder / "suite.yaml"


def run(
    model: str, rate: float, seed: int, repeat: int, latency_ms: float, root: Path, extra: list[str]
) -> dict:
    from csml.audit.run import audit
    from csml.bot.server import BackgroundServer
    from csml.devtools.faulty_bot import FaultyBot, create_app

    out = root / f"rate{rate}_seed{seed}"
    truth_log = out / "truth.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    suite = suite_copy(out / "suite", repeat)
    bot = FaultyBot(corrupt_rate=rate, seed=seed, truth_log=truth_log)
    with BackgroundServer(create_app(bot, latency_ms / 1000)) as server:
        cfg = compose(
            "audit",
            [
                f"paths.run_dir={root}/runs",
                f"paths.output_dir={out}/audit",
                "target=openai_chat",
                f"target.url={server.url}",
                "target.rate_limit_per_s=null",
                "target.concurrency=32",
                "concurrency=32",
                f"suite={suite}",
                f"groundedness_judge.model_uri={model}",
                "cache_dir=null",
                "progress=false",
                "~tracking",
                *extra,
            ],
        )
        start = time.perf_counter()
        _, paths = audit(cfg)
        wall = time.perf_counter() - start
    truth = {r["id"]: r for r in map(json.loads, truth_log.read_text().splitlines())}
    rows = []
    for line in paths["samples"].read_text().splitlines():
        sample = json.loads(line)
        raw = sample["reply"]["raw"]
        if isinstance(raw, dict) and raw.get("id") in truth:
            rows.append({**truth[raw["id"]], "scores": sample["scores"], "sample_id": sample["id"]})
    return {"rows": rows, "wall_s": wall, "questions": len(rows)}


def report(rows: list[dict]) -> None:
    answers = [r for r in rows if r["kind"] == "answer"]
    corrupted = [r for r in answers if r["fault"]]
    clean = [r for r in answers if not r["fault"]]
    detectors = {**DETECTORS, "union": lambda s: any(d(s) for d in DETECTORS.values())}
    for name, detect in detectors.items():
        caught = [r for r in corrupted if detect(r["scores"])]
        alarms = [r for r in clean if detect(r["scores"])]
        kinds = Counter(r["fault"] for r in corrupted)
        by_kind = Counter(r["fault"] for r in caught)
        print(
            f"{name:<20} recall {len(caught) / max(1, len(corrupted)):.3f} ({len(caught)}/{len(corrupted)})  "
            f"false alarms {len(alarms) / max(1, len(clean)):.3f} ({len(alarms)}/{len(clean)})  by kind: "
            + ", ".join(f"{k} {by_kind[k]}/{n}" for k, n in sorted(kinds.items()))
        )
    scored_answers = [r for r in answers if r["scores"]["groundedness"]["value"] is not None]
    if scored_answers and 0 < sum(bool(r["fault"]) for r in scored_answers) < len(scored_answers):
        from sklearn.metrics import roc_auc_score

        weakest = [
            min(c["score"] for c in r["scores"]["groundedness"]["data"]["claims"]) for r in scored_answers
        ]
        auroc = roc_auc_score([not r["fault"] for r in scored_answers], weakest)
        print(
            f"judge AUROC (weakest claim's score, clean vs corrupted answers): {auroc:.3f} on {len(scored_answers)}"
        )
    others = [r for r in rows if r["kind"] in ("handover", "decline")]
    scored = [r for r in others if r["scores"]["groundedness"]["value"] is not None]
    print(f"hand-overs and declines scored for groundedness: {len(scored)}/{len(others)}")
    missed = [r for r in corrupted if not detectors["union"](r["scores"])]
    for r in missed[:5]:
        print(f"  missed {r['fault']}: {r['served'][:160]!r}")
    for r in [r for r in clean if detectors["union"](r["scores"])][:5]:
        print(f"  false alarm: {r['served'][:160]!r} -- {r['scores']['groundedness']['reason'][:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="groundedness judge: model folder or MLflow URI")
    parser.add_argument("--rate", type=float, default=0.3, help="share of answers the bot corrupts")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--repeat", type=int, default=1, help="copies of the suite's questions")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the bot's delay before each answer")
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the audits here (default: a temporary folder)"
    )
    parser.add_argument("overrides", nargs="*", help="extra csml audit overrides")
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.WARNING)
    all_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        for seed in args.seeds:
            result = run(args.model, args.rate, seed, args.repeat, args.latency_ms, root, args.overrides)
            all_rows += result["rows"]
            print(
                f"seed {seed}: {result['questions']} questions in {result['wall_s']:.1f} s "
                f"({result['questions'] / result['wall_s']:.1f} questions/s, scoring included)"
            )
    report(all_rows)


if __name__ == "__main__":
    main()
