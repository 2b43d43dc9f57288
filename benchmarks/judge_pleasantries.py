"""Do pleasantries make the groundedness judge flag clean replies? Replies with and without courtesy sentences.

Clean replies are the supported claims of the judge's held-out test split (summary-style claims about SGD
conversations of unseen services, and sentences or paraphrases of unseen knowledge-base passages), each with
its knowledge; corrupted replies are their unsupported twins. Every reply is judged twice: as it is, and
wrapped in courtesy sentences a support bot adds (an opener, a closer or both: "Sure, happy to help!", "Is
there anything else I can help you with?", "Have a great day!"), drawn from the system turns of SGD's *dev*
dialogues whose dialogue acts are only ``REQ_MORE`` / ``GOODBYE`` / ``REQUEST`` (sentences neither the
non-claim rule nor the judge was built from), plus a few of the forms the issue names.

Prints, for clean replies, the share flagged unsupported without and with pleasantries and the share of
*flips* (flagged only because of the pleasantries; goal <= 0.05), and for corrupted replies the share still
caught with pleasantries.

    .venv/bin/python benchmarks/judge_pleasantries.py --model runs/judge_groundedness/<run>/model
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

import numpy as np

from csml.config import OFFLINE_ENV, compose

EXTRA = [
    "Happy to help!",
    "Thanks for reaching out.",
    "I'm sorry to hear that.",
    "Let me know if there is anything else I can do for you.",
    "Could you share your order number?",
]


def courtesy_turns(folder: Path, limit: int = 400) -> list[str]:
    """System turns of SGD files whose acts are only courtesy or questions."""
    from csml.judge.dialogues import COURTESY_ACTS, system_turns

    found: list[str] = []
    for turns in system_turns(folder):
        found += [utterance.strip() for utterance, acts in turns if acts and acts <= COURTESY_ACTS]
        if len(found) >= limit:
            return found
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="judge model folder or MLflow URI")
    parser.add_argument("--limit", type=int, default=600, help="most clean (and corrupted) replies")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    from hydra.utils import instantiate

    from csml.judge.judge import GroundednessJudge

    cfg = compose("train", ["experiment=judge_groundedness"])
    source = cfg.data.source.copy()
    source.begin_root = None
    records = instantiate(source).load("grounded")["test"]
    rng = random.Random(0)
    rng.shuffle(records)
    pairs = [[*r.text.split(" [SEP] ", 1), r.grounded == "supported"] for r in records]
    clean = [p for p in pairs if p[2]][: args.limit]
    corrupted = [p for p in pairs if not p[2]][: args.limit]
    polite = courtesy_turns(Path(cfg.paths.external_data_dir) / "sgd_schema_guided" / "dev") + EXTRA

    def wrap(reply: str) -> str:
        draw = rng.random()
        opener = rng.choice(polite) + " " if draw < 0.7 else ""
        closer = " " + rng.choice(polite) if draw > 0.3 else ""
        return opener + reply + closer

    judge = GroundednessJudge.load(args.model, cfg.tracking.uri, cfg.tracking.get("registry_uri"))
    results = {}
    for name, rows in (("clean", clean), ("corrupted", corrupted)):
        knowledge = [[k] for _, k, _ in rows]
        plain = judge.judge_many([c for c, _, _ in rows], knowledge)
        wrapped_texts = [wrap(c) for c, _, _ in rows]
        wrapped = judge.judge_many(wrapped_texts, knowledge)
        flagged = np.array([v.supported is False for v in plain])
        flagged_wrapped = np.array([v.supported is False for v in wrapped])
        results[name] = {
            "replies": len(rows),
            "flagged_plain": round(float(flagged.mean()), 4),
            "flagged_with_pleasantries": round(float(flagged_wrapped.mean()), 4),
            "flips_to_flagged": round(float((flagged_wrapped & ~flagged).mean()), 4),
            "non_claims_per_reply": round(float(np.mean([len(v.non_claims) for v in wrapped])), 2),
        }
        if name == "clean":
            flips = [
                t for t, a, b in zip(wrapped_texts, flagged, flagged_wrapped, strict=True) if b and not a
            ]
            results[name]["examples_of_flips"] = flips[:8]
    print(json.dumps(results, indent=2))
    print(f"courtesy sentences drawn from {len(polite)}; shipped threshold {judge.threshold}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
