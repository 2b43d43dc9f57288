"""Out-of-scope detection on CLINC150 with each OOS score, side by side, for one trained classifier.

Loads a csml intent classifier (an MLflow model URI, default ``models:/csml-intent-clinc150/1``), encodes
CLINC150's train, validation and test splits once (pooled features and logits), fits every score of
:mod:`csml.models.components.oos_scorers` on the in-scope training utterances, and chooses each score's
threshold on the **validation** split with one policy: the largest threshold that still answers
``--acceptance`` (default 0.98) of the validation in-scope utterances. It then prints, per score, the
validation AUROC (in-scope vs OOS) and in-scope accuracy / OOS recall / OOS precision on validation and
on test (4,500 in-scope + 1,000 OOS utterances). Nothing is tuned on the test split. Issue 2's bar:
test in-scope accuracy >= 0.95 and OOS recall >= 0.80.

    .venv/bin/python benchmarks/oos_scores.py
    .venv/bin/python benchmarks/oos_scores.py --model-uri models:/csml-intent-clinc150/2 --acceptance 0.99
"""

from __future__ import annotations

import argparse
import time

from csml.config import apply_offline_env, compose

SCORES = [("softmax", {}), ("energy", {}), ("mahalanobis", {}), ("knn", {"k": 1}), ("knn", {"k": 10})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", default="models:/csml-intent-clinc150/1")
    parser.add_argument("--acceptance", type=float, default=0.98)
    args = parser.parse_args()

    from hydra.utils import instantiate
    from sklearn.metrics import roc_auc_score

    from csml.evaluation import label_indices
    from csml.metrics.oos import choose_oos_threshold, oos_scores, predict_with_oos
    from csml.models.components.oos_scorers import make_oos_scorer, softmax
    from csml.scoring import Classifier
    from csml.tracking.runs import setup_tracking

    cfg = compose("eval", ["data=clinc150"])
    apply_offline_env(cfg.offline)
    setup_tracking(cfg.tracking)
    model = Classifier.from_uri(args.model_uri)
    labels, oos_label = model.labels, cfg.data.oos_label
    splits = instantiate(cfg.data.source).load(cfg.data.label_field)
    outputs, y = {}, {}
    for split in ("train", "validation", "test"):
        start = time.perf_counter()
        texts = [r.text for r in splits[split]]
        outputs[split] = model.net.encode_texts(model.tokenizer, texts, model.card["max_length"])
        y[split] = label_indices(splits[split], cfg.data.label_field, labels)
        print(f"encoded {split}: {len(texts)} utterances in {time.perf_counter() - start:.0f} s", flush=True)

    oos_index = labels.index(oos_label)
    print(
        f"\nmodel {args.model_uri}; threshold per score: the largest answering {args.acceptance:.0%} of "
        "validation in-scope utterances (chosen on validation only)\n"
    )
    header = "| score | val AUROC | threshold | val in-scope acc | val OOS recall | test in-scope acc | "
    print(header + "test OOS recall | test OOS precision | test AUROC |")
    print("|" + "---|" * 9)
    for name, params in SCORES:
        scorer = make_oos_scorer(name, labels, oos_label, params)
        if scorer.fitted_from_features:
            scorer.fit(outputs["train"][0], y["train"])
        probs = {s: softmax(outputs[s][1]) for s in ("validation", "test")}
        scores = {s: scorer.score(*outputs[s]) for s in ("validation", "test")}
        threshold = choose_oos_threshold(
            probs["validation"],
            y["validation"],
            labels,
            oos_label,
            scores=scores["validation"],
            min_in_scope_acceptance=args.acceptance,
        )
        row = {}
        for s in ("validation", "test"):
            pred = predict_with_oos(probs[s], labels, oos_label, threshold, scores=scores[s])
            row[s] = oos_scores(y[s], pred, labels, oos_label)
            row[s]["auroc"] = roc_auc_score(y[s] != oos_index, scores[s])
        label = name + "".join(f" {k}={v}" for k, v in params.items())
        v, t = row["validation"], row["test"]
        print(
            f"| {label} | {v['auroc']:.4f} | {threshold:.4g} | {v['in_scope_accuracy']:.4f} | "
            f"{v['oos_recall']:.3f} | {t['in_scope_accuracy']:.4f} | {t['oos_recall']:.4f} | "
            f"{t['oos_precision']:.4f} | {t['auroc']:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
