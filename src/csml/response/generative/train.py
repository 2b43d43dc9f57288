"""Generative training pipeline: ``train_generative(cfg)`` fits LoRA adapters on a generator, compares its
replies with the untuned base model's on held-out pairs, and logs and registers the model as a pyfunc."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from omegaconf import DictConfig

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

SLICE_METRICS = ("rouge_l", "embedding_similarity", "placeholder_recall")


def score_generations(
    records: Sequence[Any],
    replies: dict[str, list[Any]],
    embed: Callable[[list[str]], np.ndarray] | None,
    slice_by: Sequence[str] = (),
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Offline reply metrics of each model's generations against the references, and per-sample rows.

    Args:
        records: The held-out pairs.
        replies: Model name (``model``, ``baseline``) -> one :class:`GeneratedReply` per record.
        embed: Texts -> embeddings for the embedding-similarity metric (``None`` skips it).
        slice_by: Record fields (``stage``, ``channel``) whose values get their own ROUGE-L, embedding
            similarity and placeholder recall when there are several.

    Returns:
        ``<name>/response/<metric>`` (``model`` without the prefix) and ``.../by_<field>/<value>/<metric>``
        metrics, and one row per pair with every model's reply, score and placeholder check.
    """
    from csml.response.metrics import default_response_metrics, placeholder_check

    references = [r.response for r in records]
    metrics: dict[str, float] = {}
    samples = [
        {
            "id": r.id,
            "context": list(r.context),
            "query": r.text,
            "reference": r.response,
            "intent": r.intent,
            "stage": r.stage.value,
            "channel": r.channel.value,
        }
        for r in records
    ]
    for name, generations in replies.items():
        prefix = "" if name == "model" else f"{name}/"
        candidates = [g.response for g in generations]
        for metric in default_response_metrics(embed):
            metrics[f"{prefix}response/{metric.name}"] = metric.score(candidates, references).value
        metrics[f"{prefix}response/mean_logprob"] = float(np.mean([g.score for g in generations]))
        for field in slice_by:
            values = [s[field] for s in samples]
            if len(set(values)) < 2:
                continue
            for value in sorted(set(values)):
                rows = [i for i, v in enumerate(values) if v == value]
                for metric in default_response_metrics(embed):
                    if metric.name in SLICE_METRICS:
                        result = metric.score([candidates[i] for i in rows], [references[i] for i in rows])
                        metrics[f"{prefix}response/by_{field}/{value}/{metric.name}"] = result.value
        for sample, generation in zip(samples, generations, strict=True):
            check = placeholder_check(generation.response, sample["reference"])
            sample[name] = {
                "response": generation.response,
                "score": round(generation.score, 4),
                "num_tokens": generation.num_tokens,
                "placeholders_missing": list(check.missing),
                "placeholders_invented": list(check.invented),
            }
    return metrics, samples


def train_generative(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fits ``cfg.response_model`` (LoRA on a generator) on ``cfg.response_data`` and tracks it.

    Metrics: ``val/loss`` during training; under each evaluated split's namespace (``val/``, ``test/``),
    ``response/<metric>`` of the tuned model's generations and ``baseline/response/<metric>`` of the
    untuned base (adapters off), on the same pairs with the same generation settings, and ``pairs``.

    Returns:
        The metrics and the objects built (datamodule, model, trainer, run id, model folder, model info,
        registered model version).
    """
    import pandas as pd
    from hydra.utils import instantiate

    from csml.data.splits import metric_prefix
    from csml.models.encoder import CachedEmbedder
    from csml.response.generative.generation import generate
    from csml.response.generative.pyfunc import log_generator, save_generator

    output_dir, ckpt_path = setup_pipeline(cfg)
    model = instantiate(cfg.response_model)
    datamodule = instantiate(
        cfg.response_data,
        tokenizer=model.tokenizer,
        prompt=model.prompt.to_dict(),
        seq2seq=model.base_ref.seq2seq,
    )
    datamodule.setup()
    splits = datamodule.splits
    identity = splits.identity()
    log.info("data %s: %s pairs", identity["name"], identity["rows"])
    placeholders = datamodule.placeholder_names()

    with tracked_run(cfg, output_dir, "response_generative", identity) as run:
        trainer = fit(cfg, model, datamodule, run.info.run_id, ckpt_path)
        best = load_best_weights(trainer, model)
        net = model.net.eval()
        evaluation = cfg.evaluation
        embed = None
        if evaluation.embedding_similarity:
            from transformers import AutoTokenizer

            from csml.response.components.bi_encoder import BiEncoder, BiEncoderEmbedder

            name = str(evaluation.embedding_model)
            encoder = BiEncoder.from_pretrained(name).eval()
            embed = CachedEmbedder(
                BiEncoderEmbedder(encoder, AutoTokenizer.from_pretrained(name), 128)
            ).encode
        metrics: dict[str, float] = {}
        evaluation_dir = output_dir / "evaluation"
        evaluation_dir.mkdir(parents=True, exist_ok=True)
        for split in evaluation.splits:
            records = splits[split][: evaluation.max_samples]
            prompts = [model.prompt.record_prompt(model.tokenizer, r) for r in records]

            def run_generation(prompts: list[str] = prompts) -> list[Any]:
                return generate(
                    net,
                    model.tokenizer,
                    prompts,
                    model.generation,
                    placeholders,
                    int(evaluation.generation_batch_size),
                    progress=True,
                )

            replies = {"model": run_generation()}
            if evaluation.baseline:
                with model.baseline():
                    replies["baseline"] = run_generation()
            values, samples = score_generations(records, replies, embed, list(evaluation.slice_by))
            namespace = metric_prefix(split)
            metrics.update({f"{namespace}/{k}": v for k, v in values.items()})
            metrics[f"{namespace}/pairs"] = float(len(records))
            log_samples(evaluation_dir / f"{split}_generations.jsonl", samples)
        log_evaluation_metrics(metrics, evaluation_dir)
        log_best_checkpoint(best)

        card = {
            "base": model.base_ref.to_dict(),
            "prompt": model.prompt.to_dict(),
            "generation": model.generation,
            "placeholders": placeholders,
            "query_max_length": datamodule.query_max_length,
            "dataset_sha256": identity["sha256"],
        }
        model_dir = save_generator(output_dir / "model", net, model.tokenizer, card)
        test = splits["test"][:2]
        example = pd.DataFrame(
            {
                "text": [r.text for r in test],
                "intent": [r.intent or "" for r in test],
                "stage": [r.stage.value for r in test],
                "channel": [r.channel.value for r in test],
            }
        )
        registered = registered_name(cfg.tracking)
        info = log_generator(model_dir, example, registered)
        headline = {k: v for k, v in metrics.items() if "/by_" not in k}
        return metrics, logged_model_result(
            run, info, registered, headline, datamodule=datamodule, model=model, trainer=trainer,
            model_dir=model_dir,
        )  # fmt: skip
