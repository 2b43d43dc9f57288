"""The groundedness judge on BEGIN's Wizard-of-Wikipedia test split, beside two judge-free baselines.

Every method scores each (knowledge, response) pair of ``begin_test_wow.tsv`` -- a source the judge is not
trained on (``conf/data/groundedness.yaml`` trains on CMU-DoG and TopicalChat) -- and predicts "supported"
when its score reaches a threshold chosen, for each method alike, to maximise balanced accuracy on the
validation split of the judge's training data (WoW dev plus held-out knowledge-base passages), and again on
its WoW dev part alone (the same source as the test, which favours the baselines). Methods:

- ``judge``: csml's cross-encoder through :class:`csml.judge.judge.GroundednessJudge` (claim splitting,
  knowledge windows, weakest-claim answer score), as the audits use it;
- ``embedding_similarity``: cosine of the packaged MiniLM's embeddings of response and knowledge;
- ``lexical_overlap``: share of the response's content words found in the knowledge.

Also scores the held-out knowledge-base pairs of the test split (unseen passages with perturbed claims).
Prints balanced accuracy, F1 of each class, AUROC, and CPU speed in (knowledge, response) pairs/s.
Goals (issue 6): judge balanced accuracy >= 0.75; >= 50 pairs/s on 2 CPU cores.

    .venv/bin/python benchmarks/judge_begin.py --model runs/judge_groundedness/<run folder>/model
    .venv/bin/python benchmarks/judge_begin.py --model models:/csml-judge-groundedness@champion
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from csml.config import OFFLINE_ENV, compose


def pairs_of(records: list, origins: set[str]) -> tuple[list[str], list[str], np.ndarray]:
    """(claims, knowledge, supported) of the records of some origins, split back out of the pair text."""
    from csml.judge.data import SUPPORTED

    rows = [r for r in records if r.meta.get("origin") in origins]
    claims, knowledge = zip(*(r.text.split(" [SEP] ", 1) for r in rows), strict=True)
    return list(claims), list(knowledge), np.array([r.grounded == SUPPORTED for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models:/csml-judge-groundedness@champion")
    parser.add_argument("--int8", action="store_true", help="score with the int8-quantised judge")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for the speed figure")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)

    import torch
    from hydra.utils import instantiate
    from sentence_transformers import SentenceTransformer

    from csml.config import minilm_path
    from csml.judge.baselines import embedding_similarity, figures, lexical_overlap
    from csml.judge.judge import GroundednessJudge
    from csml.metrics.binary import choose_decision_threshold

    torch.set_num_threads(args.threads)
    cfg = compose("train", ["experiment=judge_groundedness"])
    splits = instantiate(cfg.data.source).load("grounded")
    val = [r for r in splits["validation"]]
    val_claims, val_knowledge = zip(*(r.text.split(" [SEP] ", 1) for r in val), strict=True)
    val_positive = np.array([r.grounded == "supported" for r in val])
    tests = {
        "begin_wow": pairs_of(splits["test"], {"begin_wow"}),
        "kb_heldout": pairs_of(splits["test"], {"bank_faq", "abcd"}),
    }
    for name, (claims, _, positive) in tests.items():
        print(f"{name} test pairs {len(claims)} ({positive.mean():.1%} supported)")
    print(f"validation pairs {len(val)}")

    judge = GroundednessJudge.load(
        args.model, cfg.tracking.uri, cfg.tracking.get("registry_uri"), int8=args.int8
    )
    encoder = SentenceTransformer(minilm_path(), device="cpu")
    methods = {
        "judge": lambda c, k: np.array(
            [v.score if v.score is not None else 0.0 for v in judge.judge_many(c, [[x] for x in k])]
        ),
        "embedding_similarity": lambda c, k: embedding_similarity(c, k, encoder),
        "lexical_overlap": lexical_overlap,
    }
    wow_dev = np.array([r.meta.get("origin") == "begin_wow" for r in val])
    results = []
    for name, score in methods.items():
        val_scores = score(list(val_claims), list(val_knowledge))
        for test_set, (claims, knowledge, positive) in tests.items():
            start = time.perf_counter()
            scores = score(claims, knowledge)
            speed = len(claims) / (time.perf_counter() - start)
            calibrations = {"validation": np.ones_like(wow_dev)}
            if test_set == "begin_wow":
                calibrations["wow_dev"] = wow_dev
            for calibration, mask in calibrations.items():
                threshold = choose_decision_threshold(val_scores[mask], val_positive[mask])
                row = {"test_set": test_set, "calibrated_on": calibration}
                results.append(
                    row
                    | {"method": name}
                    | figures(scores, positive, threshold)
                    | {"pairs_per_s": round(speed, 1)}
                )
    header = list(results[0])
    print(" | ".join(header))
    for row in results:
        print(" | ".join(str(row[h]) for h in header))
    print(f"judge card threshold {judge.threshold}; torch threads {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"results": results, "model": args.model}, f, indent=2)


if __name__ == "__main__":
    main()
