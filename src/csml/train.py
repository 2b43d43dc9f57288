"""Classifier pipeline: ``train(cfg)`` fits a classifier, scores it, and logs and registers it in MLflow."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from csml.pipeline.fitting import fit, is_rank_zero, load_best_weights, setup_pipeline
from csml.pipeline.results import (
    log_best_checkpoint,
    log_classifier_evaluation,
    logged_model_result,
    registered_name,
)
from csml.pipeline.runs import tracked_run

if TYPE_CHECKING:
    from csml.data.splits import DatasetSplits
    from csml.evaluation import Evaluation
    from csml.records import Record

log = logging.getLogger(__name__)


def train(
    cfg: DictConfig, callbacks: list[Any] | None = None, run_tags: dict[str, str] | None = None
) -> tuple[dict[str, float], dict[str, Any]]:
    """Fits ``cfg.model`` on ``cfg.data``, evaluates on validation and test, and tracks everything.

    Under a multi-process launcher every rank trains, and rank 0 alone opens the MLflow run, evaluates,
    saves and registers the model (other ranks return empty metrics after fitting).

    Args:
        cfg: The composed ``train`` config.
        callbacks: Lightning callbacks added to ``cfg.callbacks`` (a sweep's pruning callback).
        run_tags: Extra MLflow run tags (a sweep's parent run and trial number).

    Returns:
        The metrics (``val/…``, ``test/…``) and the objects built (datamodule, model, trainer, run id,
        model folder, registered model version).
    """
    from hydra.utils import instantiate

    from csml.evaluation import check_positive_label, evaluate
    from csml.models.components.encoder_classifier import load_tokenizer, sigmoid
    from csml.models.components.oos_scorers import softmax
    from csml.scoring import fit_oos_scorer
    from csml.tracking.pyfunc import log_classifier

    output_dir, ckpt_path = setup_pipeline(cfg)
    tokenizer = load_tokenizer(cfg.model.backbone, cfg.model.get("gguf_file"))
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    check_pair_separator(getattr(datamodule, "source", None), tokenizer)
    datamodule.setup()
    identity = datamodule.splits.identity()
    log.info("data %s: %s rows, %d labels", identity["name"], identity["rows"], identity["num_labels"])
    check_multi_label(cfg, datamodule)  # before any training
    check_positive_label(datamodule.labels, cfg.evaluation.get("positive_label"))
    model = build_model(cfg, datamodule)
    check_max_length(datamodule.max_length, model.net.encoder.config)

    if not is_rank_zero():
        trainer = fit(cfg, model, datamodule, None, ckpt_path, callbacks)
        return {}, {"datamodule": datamodule, "model": model, "trainer": trainer}

    with tracked_run(cfg, output_dir, "classifier", identity, run_tags) as run:
        trainer = fit(cfg, model, datamodule, run.info.run_id, ckpt_path, callbacks)
        if "FSDP" in type(trainer.strategy).__name__:
            # FSDP sharded the trained module's parameters in place: evaluate a fresh one with the best
            # checkpoint's (full) weights.
            if not getattr(trainer, "checkpoint_callback", None):
                raise ValueError(
                    "trainer=fsdp needs callbacks.model_checkpoint: evaluation reloads its weights"
                )
            model = build_model(cfg, datamodule)
        best = load_best_weights(trainer, model)
        scorer = fit_oos_scorer(
            cfg.evaluation.get("oos_score") or "softmax",
            cfg.evaluation.get("oos_score_params"),
            datamodule.labels,
            datamodule.oos_label,
            datamodule.splits["train"],
            datamodule.label_field,
            lambda: model.predict_outputs(datamodule.eval_dataloader("train"))[0],
        )
        outputs = {  # (features, logits)
            split: model.predict_outputs(datamodule.eval_dataloader(split))
            for split in ("validation", "test")
        }
        probabilities = sigmoid if datamodule.multi_label else softmax
        evaluation = evaluate(
            {
                split: (datamodule.splits[split], probabilities(logits))
                for split, (_, logits) in outputs.items()
            },
            datamodule.labels,
            datamodule.label_field,
            oos_label=datamodule.oos_label,
            oos_threshold=cfg.evaluation.oos_threshold,
            oos_min_recall=cfg.evaluation.get("oos_min_recall"),
            oos_scores_by_split={split: scorer.score(*out) for split, out in outputs.items()},
            oos_score=scorer.name,
            oos_in_scope_acceptance=cfg.evaluation.get("oos_in_scope_acceptance"),
            positive_label=cfg.evaluation.get("positive_label"),
            threshold_domain_field=cfg.evaluation.get("threshold_domain_field"),
            threshold_answer_field=cfg.evaluation.get("threshold_answer_field"),
            label_separator=datamodule.splits.label_separator,
        )
        metrics = evaluation.metrics
        log_classifier_evaluation(evaluation, output_dir / "evaluation")
        log_best_checkpoint(best)

        card = {
            "labels": datamodule.labels,
            "label_field": datamodule.label_field,
            "max_length": datamodule.max_length,
            "oos_label": datamodule.oos_label,
            "oos_threshold": evaluation.oos_threshold,
            "decision_threshold": evaluation.decision_threshold,
            "positive_label": cfg.evaluation.get("positive_label"),  # the label decision_threshold is for
            **(label_set_card(evaluation) if evaluation.multi_label else {}),
            "backbone": cfg.model.backbone,
            "dataset_sha256": identity["sha256"],
        }
        model_dir = model.net.cpu().save(output_dir / "model", tokenizer, card, oos_scorer=scorer)
        examples = [r.text for r in example_records(datamodule.splits)]
        registered = registered_name(cfg.tracking)
        info = log_classifier(model_dir, examples, registered)
        headline = {k: v for k, v in metrics.items() if k.count("/") == 1}
        return metrics, logged_model_result(
            run, info, registered, headline, datamodule=datamodule, model=model, trainer=trainer,
            model_dir=model_dir,
        )  # fmt: skip


def build_model(cfg: DictConfig, datamodule: Any) -> Any:
    """Instantiates ``cfg.model`` for the data's labels; with ``model.class_weighting`` set, also hands it
    the training rows per label its loss weights come from (the model never reads the data module)."""
    from hydra.utils import instantiate

    extra = {"label_counts": datamodule.label_counts("train")} if cfg.model.get("class_weighting") else {}
    if datamodule.multi_label:
        extra |= {"multi_label": True, "train_rows": len(datamodule.splits["train"])}
    return instantiate(cfg.model, labels=datamodule.labels, **extra)


def check_multi_label(cfg: DictConfig, datamodule: Any) -> None:
    """Fails fast, before any training, on options multi-label data (``data.source.multi_label``) has no
    meaning for: out-of-scope detection and a two-label decision threshold need one label per text."""
    if not datamodule.multi_label:
        return
    problems = []
    if datamodule.oos_label is not None:
        problems.append(f"data.oos_label={datamodule.oos_label!r} (set data.oos_label=null)")
    if cfg.evaluation.get("oos_score") not in (None, "softmax"):
        problems.append(f"evaluation.oos_score={cfg.evaluation.oos_score!r} (set evaluation.oos_score=null)")
    if cfg.evaluation.get("positive_label") is not None:
        problems.append(
            f"evaluation.positive_label={cfg.evaluation.positive_label!r} (a multi-label model has a "
            "threshold per label; set evaluation.positive_label=null)"
        )
    if problems:
        raise ValueError(
            "multi-label data (data.source.multi_label=true) has a set of labels per text; out-of-scope "
            "detection and two-label decision thresholds need one. Not applicable: " + "; ".join(problems)
        )


def label_set_card(evaluation: Evaluation) -> dict[str, Any]:
    """The model-card entries of a multi-label model: its label separator and each label's threshold
    (chosen on validation), read back by :class:`csml.scoring.Classifier`."""
    thresholds = dict(zip(evaluation.labels, evaluation.label_thresholds, strict=True))
    return {
        "multi_label": True,
        "label_separator": evaluation.label_separator,
        "label_thresholds": thresholds,
    }


def example_records(splits: DatasetSplits, count: int = 3) -> list[Record]:
    """The test records shown as the registered model's input example: the first ``count``, or for
    multi-label data those with the most labels first, so the example output shows a label set."""
    test = splits["test"]
    if splits.multi_label:
        test = sorted(test, key=lambda record: -len(splits.label_set(record)))  # stable: file order within
    return test[:count]


def check_pair_separator(source: Any, tokenizer: Any) -> None:
    """Fails fast when a pair source's ``separator`` (``data.source.separator`` of the groundedness data)
    differs from the one the judge will join claim and knowledge with at inference: the saved tokenizer's
    ``sep_token``, or the plain text ``[SEP]`` when it has none (decoders such as SmolLM2)."""
    separator = getattr(source, "separator", None)
    if separator is None:
        return
    expected = tokenizer.sep_token or "[SEP]"
    if separator != expected:
        raise ValueError(
            f"data.source.separator={separator!r} but the backbone's tokenizer separates pairs with "
            f"{expected!r} (its sep_token, or '[SEP]' as plain text when it has none), which the groundedness "
            f"judge uses at inference; set data.source.separator={expected!r}"
        )


def check_max_length(max_length: int, backbone_config: Any) -> None:
    """Fails fast when ``data.max_length`` exceeds the backbone's positions (512 for BERT-style encoders,
    8192 for SmolLM2), which would otherwise fail mid-training on the first long batch."""
    limit = getattr(backbone_config, "max_position_embeddings", None)
    if isinstance(limit, int) and max_length > limit:
        raise ValueError(
            f"data.max_length={max_length} exceeds the backbone's {limit} positions; set data.max_length<={limit} "
            "or pick a longer-context backbone (model=smollm2_lora_classifier reads 8192 tokens)"
        )
