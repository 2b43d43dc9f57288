"""The groundedness judge on every held-out labelled test set, beside lexical overlap and embedding similarity.

Test sets are the test split of the judge's own training config, so each model is scored on the sources it
never trained on (the default config holds out BEGIN's Wizard-of-Wikipedia test set; pass the overrides a
model was trained with to rebuild its test split -- for instance with CMU-DoG and TopicalChat held out):

- ``begin_wow`` / ``begin_cmu`` / ``begin_tc``: BEGIN's human labels of knowledge-grounded dialogue responses
  (attributable = supported; not fully attributable and generic = unsupported), and the same without BEGIN's
  *generic* responses (``..._no_generic``: "that sounds fun, have you been?"), which make no claim for the
  judge to check -- an audit never calls them unsupported, by design -- so scoring them as unsupported counts
  the judge's non-claim rule as an error. The share of generic responses the judge finds no claim in is
  printed too;
- ``sgd_unseen_services``: summary-style claims about Schema-Guided Dialogue conversations whose services
  never occur in training, judged against a window of turns around the evidence;
- ``sgd_full_transcript``: the same kind of claims against the *whole* transcript (evidence selection:
  windows of turns plus assembled evidence);
- ``sgd_summaries``: summaries of such conversations in several sentences, as an auditor judges a summary of
  a call -- supported, or with one sentence's fact perturbed -- against the whole transcript (answer level:
  the weakest sentence decides);
- ``kb_heldout``: sentences of unseen knowledge-base passages and their perturbations;
- ``delucionqa_test`` / ``delucionqa_test_sentences``: DelucionQA's test split (Sadat et al. 2023, CC BY 4.0;
  read from ``<external data>/delucionqa`` when it is there): people's labels of ChatGPT answers about a car
  manual against the retrieved manual passages -- whole answers (hallucinated or not) and each answer
  sentence (Supported, or Conflicted / Neither). Real and human-labelled; the default judge trains on its
  train split and validates on its dev split (``data.source.delucionqa_root``), so its test split holds new
  questions about the same manual (``data.source.delucionqa_root=null`` trains a judge that never saw it). The
  contexts are decoded from the release's token ids (:mod:`csml.judge.delucionqa`: lower-cased, about
  3% of context tokens unrecoverable and dropped). Beside the shipped threshold, the judge is also scored at
  the threshold ``csml calibrate-judge`` chooses on DelucionQA's *dev* split (``judge_calibrated_dev``), the
  workflow of an auditor with a small labelled sample of their own bot.

The judge runs as audits run it (:class:`csml.judge.judge.GroundednessJudge`: claims, evidence windows,
weakest claim) and is scored at its **shipped threshold** (the model card's, chosen on the validation mix of
domains); beside it, the balanced accuracy at the test set's own best threshold shows what the shipped one
gives away on that domain. Each baseline gets the threshold with the best balanced accuracy on the same
validation split. Prints, per test set and method: rows, balanced accuracy, AUROC, F1 of each class; and the
judge's speed in answers per second (all of an answer's claims and windows).

    .venv/bin/python benchmarks/judge_cross_domain.py --model runs/judge_groundedness/<run>/model
    .venv/bin/python benchmarks/judge_cross_domain.py --model <folder> --override \
        'data.source.begin_files={train:[begin_dev_wow.tsv],validation:[],test:[begin_dev_cmu.tsv,begin_dev_tc.tsv]}'
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from csml.config import OFFLINE_ENV, compose

SEPARATOR = " [SEP] "
GENERIC = "Generic"  # BEGIN's label of responses without checkable content


def split_pairs(records: list) -> dict[str, tuple[list[str], list[str], np.ndarray]]:
    """(claims, knowledge, supported) per test set, from pair records (``origin`` names the set)."""
    groups: dict[str, list] = defaultdict(list)
    for record in records:
        origin = record.meta.get("origin", "")
        groups["kb_heldout" if origin in ("bank_faq", "abcd") else origin].append(record)
        if origin.startswith("begin_") and record.meta.get("begin_label") != GENERIC:
            groups[f"{origin}_no_generic"].append(record)
    out = {}
    for name, rows in groups.items():
        claims, knowledge = zip(*(r.text.split(SEPARATOR, 1) for r in rows), strict=True)
        out[name] = (list(claims), list(knowledge), np.array([r.grounded == "supported" for r in rows]))
    return out


def contradicted(answer: str, knowledge: str, window_words: int) -> bool:
    """Whether the judge's contradiction rule fires on some claim of ``answer`` (quotes are supported first)."""
    from csml.judge.claims import split_claims
    from csml.judge.evidence import Knowledge

    known = Knowledge([knowledge], window_words)
    claims = [claim.text for claim in split_claims(answer)]
    return any(known.quote(claim) is None and known.contradicted(claim) is not None for claim in claims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="judge model folder or MLflow URI")
    parser.add_argument("--override", action="append", default=[], help="train-config override of the model")
    parser.add_argument("--limit", type=int, default=None, help="most rows per test set (seeded sample)")
    parser.add_argument(
        "--window-words", type=int, default=None, help="judge evidence window (default: card)"
    )
    parser.add_argument("--summary-sentences", type=int, default=3, help="facts per SGD summary")
    parser.add_argument("--only", nargs="+", default=None, help="score only these test sets (names above)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)

    import torch
    from hydra.utils import instantiate
    from sentence_transformers import SentenceTransformer

    from csml.config import minilm_path
    from csml.judge.baselines import embedding_similarity, figures, lexical_overlap
    from csml.judge.calibration import choose_threshold
    from csml.judge.judge import GroundednessJudge
    from csml.metrics.binary import choose_decision_threshold

    torch.set_num_threads(args.threads)
    cfg = compose("train", ["experiment=judge_groundedness", *args.override])
    splits = instantiate(cfg.data.source).load("grounded")
    tests = split_pairs(splits["test"])
    full = cfg.data.source.copy()
    full.knowledge_bases, full.begin_root, full.delucionqa_root = [], None, None
    full.dialogues_per_split = {"test": cfg.data.source.dialogues_per_split.test}
    full.window_words = 100_000  # the whole transcript is the knowledge
    transcripts = split_pairs([row.record for row in instantiate(full)._read()["test"]])
    tests["sgd_full_transcript"] = transcripts["sgd_unseen_services"]
    tests |= split_pairs(instantiate(cfg.data.source).summary_records("test", args.summary_sentences))
    delucionqa_root = Path(cfg.paths.external_data_dir) / "delucionqa"
    calibration_sets: dict[str, tuple[list[str], list[str], np.ndarray]] = {}
    if delucionqa_root.is_dir():
        from csml.judge import delucionqa

        samples, vocabulary = delucionqa.load(delucionqa_root)
        print(
            f"DelucionQA contexts decoded: {delucionqa.coverage(samples['test'], vocabulary):.3f} of tokens"
        )
        for sentences, suffix in ((False, ""), (True, "_sentences")):
            tests[f"delucionqa_test{suffix}"] = delucionqa.labelled_pairs(
                samples["test"], vocabulary, sentences
            )
            calibration_sets[f"delucionqa_test{suffix}"] = delucionqa.labelled_pairs(
                samples["validation"], vocabulary, sentences
            )
    else:
        print(f"DelucionQA not found at {delucionqa_root}: its test sets are skipped")
    if args.only:
        if unknown := sorted(set(args.only) - set(tests)):
            parser.error(f"--only: no test sets {unknown}; this model's are {sorted(tests)}")
        tests = {name: tests[name] for name in args.only}
    if args.limit:
        rng = np.random.default_rng(0)
        for name, (claims, knowledge, positive) in tests.items():
            if len(claims) > args.limit:
                keep = np.sort(rng.choice(len(claims), args.limit, replace=False))
                tests[name] = ([claims[i] for i in keep], [knowledge[i] for i in keep], positive[keep])
    generic = [r.text.split(SEPARATOR, 1) for r in splits["test"] if r.meta.get("begin_label") == GENERIC]
    val = split_pairs(splits["validation"])
    val_claims = [c for claims, _, _ in val.values() for c in claims]
    val_knowledge = [k for _, knowledge, _ in val.values() for k in knowledge]
    val_positive = np.concatenate([p for _, _, p in val.values()])

    judge = GroundednessJudge.load(
        args.model, cfg.tracking.uri, cfg.tracking.get("registry_uri"), window_words=args.window_words
    )
    encoder = SentenceTransformer(minilm_path(), device="cpu")

    def judge_scores(claims: list[str], knowledge: list[str]) -> np.ndarray:
        verdicts = judge.judge_many(claims, [[k] for k in knowledge])
        return np.array(
            [1.0 if v.score is None else v.score for v in verdicts]
        )  # no claim: nothing unsupported

    baselines = {
        "lexical_overlap": lexical_overlap,
        "embedding_similarity": lambda c, k: embedding_similarity(c, k, encoder),
    }
    thresholds = {
        name: choose_decision_threshold(f(val_claims, val_knowledge), val_positive)
        for name, f in baselines.items()
    }
    results = []
    for name, (claims, knowledge, positive) in tests.items():
        start = time.perf_counter()
        scores = judge_scores(claims, knowledge)
        speed = len(claims) / (time.perf_counter() - start)
        best = choose_decision_threshold(
            scores, positive
        )  # the test set's own best: what the shipped one loses
        # the judge's contradiction rule (a near-quote with the opposite polarity): how often, how rightly
        fired = np.array(
            [contradicted(c, k, judge.window_words) for c, k in zip(claims, knowledge, strict=True)]
        )
        rule_counts = {
            "contradicted": int(fired.sum()),
            "contradicted_unsupported": int((fired & ~positive.astype(bool)).sum()),
        }
        rows = [
            {"method": "judge"}
            | figures(scores, positive, judge.threshold)
            | rule_counts
            | {"best_threshold": round(best, 4)}
            | {"best_balanced_accuracy": figures(scores, positive, best)["balanced_accuracy"]}
            | {"pairs_per_s": round(speed, 1)}
        ]
        if name in calibration_sets:
            dev_claims, dev_knowledge, dev_positive = calibration_sets[name]
            calibrated = choose_threshold(judge_scores(dev_claims, dev_knowledge), dev_positive)[0]
            rows.append({"method": "judge_calibrated_dev"} | figures(scores, positive, calibrated))
        for method, score in baselines.items():
            rows.append({"method": method} | figures(score(claims, knowledge), positive, thresholds[method]))
        for row in rows:
            results.append(
                {"test_set": name, "rows": len(claims), "supported": round(float(positive.mean()), 3)} | row
            )
            print(json.dumps(results[-1]), flush=True)
    if generic:
        verdicts = judge.judge_many([c for c, _ in generic], [[k] for _, k in generic])
        no_claim = sum(v.score is None for v in verdicts)
        called = sum(v.supported is False for v in verdicts)
        print(
            f"BEGIN generic responses: {len(generic)}; no claim found {no_claim} ({no_claim / len(generic):.3f}), "
            f"called unsupported {called}, supported {len(generic) - no_claim - called}"
        )
    header = list(results[0])
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in results:
        print("| " + " | ".join(str(row.get(h, "")) for h in header) + " |")
    print(
        f"\nmodel {args.model}; shipped threshold {judge.threshold}; window {judge.window_words} words; "
        f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f}"
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"model": args.model, "overrides": args.override, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
