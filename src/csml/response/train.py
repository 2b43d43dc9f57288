"""Response training pipelines: ``train_response(cfg)`` (``csml train-response``) runs the one that fits
``cfg.response_model``. ``train_retrieval(cfg)`` fine-tunes a bi-encoder, scores it against the untuned
encoder on the same response banks, indexes every response, and logs and registers the model; generative
models go to :func:`csml.response.generative.train.train_generative`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from omegaconf import DictConfig

from csml.models.encoder import CachedEmbedder, Embedder
from csml.pipeline.fitting import fit, load_best_weights, setup_pipeline
from csml.pipeline.results import (
    log_best_checkpoint,
    log_evaluation_metrics,
    log_samples,
    logged_model_result,
    registered_name,
)
from csml.pipeline.runs import tracked_run

log = logging.getLogger(__name__)


def train_response(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Trains ``cfg.response_model``: generative (LoRA on a generator) or retrieval (bi-encoder)."""
    from hydra.utils import get_class

    from csml.response.generative.module import GenerativeResponseModule
    from csml.response.generative.train import train_generative

    if issubclass(get_class(cfg.response_model._target_), GenerativeResponseModule):
        return train_generative(cfg)
    return train_retrieval(cfg)


def gold_sets(records: list[Any], bank: list[str]) -> list[list[int]]:
    """Per query, the bank indices of every response paired with the same (normalised) query."""
    from csml.response.data import pair_key

    position = {text: i for i, text in enumerate(bank)}
    by_query: dict[str, set[int]] = {}
    for r in records:
        by_query.setdefault(pair_key(r.text), set()).add(position[r.response])
    return [sorted(by_query[pair_key(r.text)]) for r in records]


def evaluate_split(
    records: list[Any],
    encoders: dict[str, tuple[Embedder, Embedder]],
    ks: list[int],
    top_k: int,
    similarity: Callable[[list[str]], np.ndarray] | None,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Ranks the split's own response bank for each of its queries, with every encoder.

    Args:
        records: The split's pairs; the bank is their distinct responses.
        encoders: Name -> (query embedder, response embedder); ``"model"`` is the fine-tuned one.
        ks: Cut-offs of recall@k.
        top_k: Retrievals kept per query in the per-sample rows.
        similarity: Texts -> embeddings for the embedding-similarity reply metric (``None`` skips it).

    Returns:
        Metrics per encoder (retrieval, then ``response/<metric>`` of the top-1 reply vs the reference),
        and one per-sample row per query.
    """
    from csml.response.index import top_k as best_k
    from csml.response.metrics import (
        default_response_metrics,
        gold_ranks,
        placeholder_check,
        retrieval_metrics,
    )

    bank = list(dict.fromkeys(r.response for r in records))
    gold = gold_sets(records, bank)
    references = [r.response for r in records]
    metrics: dict[str, dict[str, float]] = {}
    samples = [
        {
            "id": r.id,
            "query": r.text,
            "reference": r.response,
            "stage": r.stage.value,
            "channel": r.channel.value,
        }
        for r in records
    ]
    for name, (query_embed, response_embed) in encoders.items():
        scores = query_embed.encode([r.text for r in records]) @ response_embed.encode(bank).T
        ranks = gold_ranks(scores, gold)
        values, indices = best_k(scores, top_k)
        top1 = [bank[row[0]] for row in indices]
        metrics[name] = retrieval_metrics(ranks, ks)
        for metric in default_response_metrics(similarity):
            metrics[name][f"response/{metric.name}"] = metric.score(top1, references).value
        for sample, rank, row, row_scores, best in zip(samples, ranks, indices, values, top1, strict=True):
            check = placeholder_check(best, sample["reference"])
            sample[name] = {
                "rank": int(rank),
                "top_k": [
                    {"response": bank[j], "score": round(float(s), 4)}
                    for j, s in zip(row, row_scores, strict=True)
                ],
                "placeholders_missing": list(check.missing),
                "placeholders_invented": list(check.invented),
            }
    return metrics, samples


def train_retrieval(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fits ``cfg.response_model`` on ``cfg.response_data``, evaluates it and its untuned backbone, tracks it.

    Metrics, under each evaluated split's namespace (``val/``, ``test/``): ``recall_at_<k>``, ``mrr`` and
    ``response/<metric>`` of the fine-tuned model, the same under ``baseline/`` for the untuned backbone
    (``test/baseline/mrr``), and ``bank_size``. Each split is ranked against its own responses (held out
    from training by the group split).

    Returns:
        The metrics and the objects built (datamodule, model, trainer, run id, model folder, index,
        registered model version).
    """
    from hydra.utils import instantiate
    from transformers import AutoTokenizer

    from csml.data.splits import metric_prefix
    from csml.response.components.bi_encoder import BiEncoder, BiEncoderEmbedder
    from csml.response.index import ResponseIndex
    from csml.response.pyfunc import log_response_model

    output_dir, ckpt_path = setup_pipeline(cfg)
    backbone = str(cfg.response_model.backbone)

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    datamodule = instantiate(cfg.response_data, tokenizer=tokenizer)
    datamodule.setup()
    splits = datamodule.splits
    identity = splits.identity()
    log.info(
        "data %s: %s pairs, %d distinct responses",
        identity["name"],
        identity["rows"],
        identity["distinct_responses"],
    )
    model = instantiate(cfg.response_model)

    with tracked_run(cfg, output_dir, "response_retrieval", identity) as run:
        trainer = fit(cfg, model, datamodule, run.info.run_id, ckpt_path)
        best = load_best_weights(trainer, model)
        net = model.net.cpu().eval()
        baseline = BiEncoder.from_pretrained(backbone).eval()
        q_len, r_len = datamodule.query_max_length, datamodule.response_max_length
        encoders = {
            name: (
                CachedEmbedder(BiEncoderEmbedder(encoder, tokenizer, q_len)),
                CachedEmbedder(BiEncoderEmbedder(encoder, tokenizer, r_len)),
            )
            for name, encoder in (("model", net), ("baseline", baseline))
        }
        evaluation = cfg.evaluation
        similarity = encoders["baseline"][1].encode if evaluation.embedding_similarity else None
        metrics: dict[str, float] = {}
        evaluation_dir = output_dir / "evaluation"
        evaluation_dir.mkdir(parents=True, exist_ok=True)
        for split in evaluation.splits:
            namespace = metric_prefix(split)
            per_encoder, samples = evaluate_split(
                splits[split], encoders, list(evaluation.ks), int(evaluation.top_k), similarity
            )
            for name, values in per_encoder.items():
                prefix = namespace if name == "model" else f"{namespace}/{name}"
                metrics.update({f"{prefix}/{key}": value for key, value in values.items()})
            metrics[f"{namespace}/bank_size"] = float(len({r.response for r in splits[split]}))
            log_samples(evaluation_dir / f"{split}_retrievals.jsonl", samples)
        log_evaluation_metrics(metrics, evaluation_dir)
        log_best_checkpoint(best)

        bank = splits.responses()
        split_of = {r.response: split for split in ("train", "validation", "test") for r in splits[split]}
        index = ResponseIndex(
            encoders["model"][1].encode(bank),
            bank,
            meta=[{"source": splits.name, "split": split_of[t]} for t in bank],
        )
        card = {
            "backbone": backbone,
            "query_max_length": q_len,
            "response_max_length": r_len,
            "dataset_sha256": identity["sha256"],
            "bank_size": len(bank),
        }
        model_dir = net.save(output_dir / "model", tokenizer, card)
        index.save(model_dir / "index")
        examples = [r.text for r in splits["test"][:3]]
        registered = registered_name(cfg.tracking)
        info = log_response_model(model_dir, examples, registered)
        headline = {k: v for k, v in metrics.items() if k.startswith("test/") and "response/" not in k}
        return metrics, logged_model_result(
            run, info, registered, headline, datamodule=datamodule, model=model, trainer=trainer,
            model_dir=model_dir, index=index,
        )  # fmt: skip
