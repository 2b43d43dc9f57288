"""Does anti-loop decoding make the generative reference bot worth auditing? SmolLM2 greedy vs the defaults.

Starts ``csml serve generator=smollm2`` on 127.0.0.1 twice -- plain greedy decoding (no repetition penalty,
no n-gram blocking, no stop strings, no sentence limit: the decoding before issue 15) and the shipped defaults of
``conf/generator/smollm2.yaml`` -- and runs the same ``rag_abcd`` audit against each (``--limit`` questions,
seed 0, groundedness by embedding similarity so no trained judge is needed, no cache, no MLflow). Prints per
decoding: groundedness, answer correctness, fabricated facts, unsupported sentences, p95 latency, and from the
bot's reply log the share of answers that hit the token limit and that repeat a sentence of four words or
more (a loop).

    .venv/bin/python benchmarks/bot_generative_decoding.py --limit 30
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

from csml.config import OFFLINE_ENV, compose

DECODINGS = {
    "greedy (before)": ["bot.generator.repetition_penalty=1.0", "bot.generator.no_repeat_ngram_size=0",
                        "bot.generator.stop=[]", "bot.generator.max_sentences=0"],
    "anti-loop (defaults)": [],
}  # fmt: skip
METRICS = (
    "groundedness",
    "answer_correctness",
    "fabricated_entities",
    "unsupported_sentences",
    "latency_p95_ms",
)


def loops(text: str) -> bool:
    """Whether an answer repeats a sentence (or clause) of four words or more."""
    parts = [" ".join(re.findall(r"[a-z']+", p.lower())) for p in re.split(r"[.!?\n]+", text)]
    counts = Counter(p for p in parts if len(p.split()) >= 4)
    return bool(counts) and counts.most_common(1)[0][1] >= 2


def run(name: str, overrides: list[str], limit: int, root: Path) -> None:
    from csml.audit.run import audit
    from csml.bot.app import create_app
    from csml.bot.server import BackgroundServer

    out = root / re.sub(r"\W+", "_", name)
    bot_cfg = compose(
        "serve",
        ["generator=smollm2", f"paths.run_dir={root}/runs", f"paths.output_dir={out}/bot", *overrides],
    )
    start = time.perf_counter()
    with BackgroundServer(create_app(bot_cfg)) as server:
        cfg = compose(
            "audit",
            [
                "suite=rag_abcd", f"target.url={server.url}", f"limit={limit}", "seed=0", "target.timeout_s=900",
                "target.retries=0", "target.concurrency=2", "concurrency=2", "cache_dir=null", "progress=false",
                "~tracking", f"paths.run_dir={root}/runs", f"paths.output_dir={out}/audit",
                "+metrics.groundedness.params={sentence_threshold:0.6,method:embedding}",
            ],
        )  # fmt: skip
        scorecard, _ = audit(cfg)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in Path(bot_cfg.bot.reply_log).read_text().splitlines()]
    generated = [r for r in records if r.get("generation")]
    at_limit = sum(r["generation"]["finish_reason"] == "length" for r in generated)
    looping = sum(loops(r["reply"]) for r in generated)
    values = ", ".join(
        f"{m} {scorecard['metrics'][m]['value']:.3f}"
        for m in METRICS
        if scorecard["metrics"].get(m, {}).get("value") is not None
    )
    print(
        f"{name}: {values}; generated {len(generated)} answers, at the token limit {at_limit}, looping {looping} "
        f"({wall:.0f} s, load average {os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=30, help="rag_abcd questions (stratified, seed 0)")
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in DECODINGS.items():
            run(name, overrides, args.limit, Path(tmp))


if __name__ == "__main__":
    main()
