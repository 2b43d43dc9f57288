"""Training pipeline: ``train(cfg)`` fits a classifier, scores it, and logs and registers it in MLflow."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from csml.config import apply_offline_env

log = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run.json"


def resolve_checkpoint(ckpt_path: str | None, output_dir: Path) -> str | None:
    """``"last"`` means the last checkpoint of this run folder (resuming an interrupted run)."""
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise FileNotFoundError(
                f"ckpt_path=last but {last} does not exist; to resume, pass the interrupted run's folder "
                "as hydra.run.dir=<folder> (it holds checkpoints/last.ckpt)"
            )
        return str(last)
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
    return ckpt_path


def is_rank_zero() -> bool:
    """Whether this is the first (or only) process of a training run. torchrun sets ``RANK``, srun
    ``SLURM_PROCID``; the processes Lightning's own launcher starts carry ``LOCAL_RANK`` and ``NODE_RANK``."""
    for variable in ("RANK", "SLURM_PROCID"):
        if variable in os.environ:
            return int(os.environ[variable]) == 0
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


@contextmanager
def tracked_run(
    cfg: DictConfig,
    output_dir: Path,
    model_kind: str,
    identity: dict[str, Any],
    extra_tags: dict[str, str] | None = None,
) -> Iterator[Any]:
    """Opens (or, when ``output_dir`` holds one, resumes) the MLflow run of a training pipeline: tags it
    with the task, model kind and git commit, logs the config and the dataset identity, yields the run."""
    from csml.tracking.runs import log_config, log_dataset_identity, mlflow_run

    tags = {
        "csml.task": cfg.task_name,
        "csml.model_kind": model_kind,
        "csml.git_commit": git_commit(),
        **(extra_tags or {}),
    }
    resumed = (output_dir / RUN_ID_FILE).is_file()
    with mlflow_run(cfg.tracking, cfg.get("run_name"), output_dir / RUN_ID_FILE, tags) as run:
        log_config(cfg, resumed=resumed)
        log_dataset_identity(identity)
        yield run


def log_samples(path: Path, samples: list[dict[str, Any]]) -> None:
    """Writes per-sample evaluation rows as JSON Lines and logs the file to the active run's ``evaluation/``."""
    import mlflow

    path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples), encoding="utf-8")
    mlflow.log_artifact(str(path), "evaluation")


def log_evaluation(metrics: dict[str, float], evaluation_dir: Path, best_checkpoint: str | None) -> None:
    """Logs a pipeline's evaluation metrics to the active run and ``metrics.json``, and its best checkpoint."""
    import mlflow

    mlflow.log_metrics(metrics)
    (evaluation_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if best_checkpoint:
        mlflow.log_artifact(best_checkpoint, "checkpoints")


def logged_model_result(
    run: Any, info: Any, registered: str | None, headline: dict[str, float], **objects: Any
) -> dict[str, Any]:
    """Logs a finished pipeline's headline metrics and where its model went; returns the pipeline's objects
    with the run id, the model info and the registered version."""
    log.info("metrics: %s", {k: round(v, 4) for k, v in headline.items()})
    log.info(
        "MLflow run %s; model %s%s",
        run.info.run_id,
        info.model_uri,
        f" registered as {registered} version {info.registered_model_version}" if registered else "",
    )
    return {
        **objects,
        "run_id": run.info.run_id,
        "model_info": info,
        "registered_version": info.registered_model_version,
    }


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
    import lightning as L
    import mlflow
    from hydra.utils import instantiate

    from csml.evaluation import check_positive_label, evaluate, write_reports
    from csml.models.components.encoder_classifier import load_tokenizer
    from csml.models.components.oos_scorers import softmax
    from csml.tracking.pyfunc import log_classifier

    apply_offline_env(cfg.offline)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), output_dir)

    tokenizer = load_tokenizer(cfg.model.backbone, cfg.model.get("gguf_file"))
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    check_pair_separator(getattr(datamodule, "source", None), tokenizer)
    datamodule.setup()
    identity = datamodule.splits.identity()
    log.info("data %s: %s rows, %d labels", identity["name"], identity["rows"], identity["num_labels"])
    check_positive_label(datamodule.labels, cfg.evaluation.get("positive_label"))  # before any training
    model = instantiate(cfg.model, labels=datamodule.labels)
    check_max_length(datamodule.max_length, model.net.encoder.config)

    if not is_rank_zero():
        trainer = fit(cfg, model, datamodule, None, ckpt_path, callbacks)
        return {}, {"datamodule": datamodule, "model": model, "trainer": trainer}

    with tracked_run(cfg, output_dir, "classifier", identity, run_tags) as run:
        trainer = fit(cfg, model, datamodule, run.info.run_id, ckpt_path, callbacks)
        if trainer.interrupted:
            log.warning(
                "training interrupted; resume with: csml train ... hydra.run.dir=%s ckpt_path=last",
                output_dir,
            )
            mlflow.set_tag("csml.status", "interrupted")
            return {}, {"run_id": run.info.run_id, "trainer": trainer}

        if "FSDP" in type(trainer.strategy).__name__:
            # FSDP sharded the trained module's parameters in place: evaluate a fresh one with the best
            # checkpoint's (full) weights.
            if not getattr(trainer, "checkpoint_callback", None):
                raise ValueError(
                    "trainer=fsdp needs callbacks.model_checkpoint: evaluation reloads its weights"
                )
            model = instantiate(cfg.model, labels=datamodule.labels)
        best = load_best_weights(trainer, model)
        scorer, outputs = fit_oos_scorer(cfg.evaluation, model, datamodule)
        evaluation = evaluate(
            {split: (datamodule.splits[split], softmax(logits)) for split, (_, logits) in outputs.items()},
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
        )
        metrics = evaluation.metrics
        mlflow.log_metrics(metrics)
        for path in write_reports(evaluation, output_dir / "evaluation"):
            mlflow.log_artifact(str(path), "evaluation")
        if best:
            mlflow.log_artifact(best, "checkpoints")

        card = {
            "labels": datamodule.labels,
            "label_field": datamodule.label_field,
            "max_length": datamodule.max_length,
            "oos_label": datamodule.oos_label,
            "oos_threshold": evaluation.oos_threshold,
            "decision_threshold": evaluation.decision_threshold,
            "positive_label": cfg.evaluation.get("positive_label"),  # the label decision_threshold is for
            "backbone": cfg.model.backbone,
            "dataset_sha256": identity["sha256"],
        }
        model_dir = model.net.cpu().save(output_dir / "model", tokenizer, card, oos_scorer=scorer)
        examples = [r.text for r in datamodule.splits["test"][:3]]
        registered = cfg.tracking.registered_model_name if cfg.tracking.register else None
        info = log_classifier(model_dir, examples, registered)
        headline = {k: v for k, v in metrics.items() if k.count("/") == 1}
        return metrics, logged_model_result(
            run, info, registered, headline, datamodule=datamodule, model=model, trainer=trainer,
            model_dir=model_dir,
        )  # fmt: skip


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


def fit_oos_scorer(evaluation_cfg: DictConfig, model: Any, datamodule: Any) -> tuple[Any, dict[str, Any]]:
    """Builds the OOS scorer of ``evaluation.oos_score`` (default ``softmax``), fits it on the training
    split's features if it needs them, and returns it with the (features, logits) of validation and test."""
    from csml.evaluation import label_indices
    from csml.models.components.oos_scorers import make_oos_scorer

    scorer = make_oos_scorer(
        evaluation_cfg.get("oos_score") or "softmax",
        datamodule.labels,
        datamodule.oos_label,
        evaluation_cfg.get("oos_score_params"),
    )
    if scorer.fitted_from_features:
        features, _ = model.predict_outputs(datamodule.eval_dataloader("train"))
        y = label_indices(datamodule.splits["train"], datamodule.label_field, datamodule.labels)
        scorer.fit(features, y)
    outputs = {
        split: model.predict_outputs(datamodule.eval_dataloader(split)) for split in ("validation", "test")
    }
    return scorer, outputs


def fit(
    cfg: DictConfig,
    model: Any,
    datamodule: Any,
    run_id: str | None,
    ckpt_path: str | None,
    extra_callbacks: list[Any] | None = None,
) -> Any:
    """Builds the Trainer of ``cfg.trainer`` with ``cfg.callbacks`` (plus ``extra_callbacks``) and
    ``cfg.logger`` (writing into MLflow run ``run_id``) and fits ``model``, resuming from ``ckpt_path`` if
    given; returns the trainer."""
    from hydra.utils import instantiate

    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks += extra_callbacks or []
    if not cfg.get("logger"):
        logger = False
    elif not is_rank_zero():
        from lightning.pytorch.loggers.logger import DummyLogger

        logger = DummyLogger()  # ranks > 0 never open the tracking store (rank 0 logs)
    else:
        logger = instantiate(cfg.logger, run_id=run_id)
    # Partial first: Hydra would try to merge the objects into the config (DummyLogger defeats that).
    trainer = instantiate(cfg.trainer, _partial_=True)(callbacks=callbacks, logger=logger)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer


def load_best_weights(trainer: Any, model: Any) -> str | None:
    """Restores the best checkpoint's weights into ``model`` (if checkpointing ran); returns its path."""
    import torch

    callback = getattr(trainer, "checkpoint_callback", None)
    best = getattr(callback, "best_model_path", "") if callback else ""
    if not best:
        return None
    state = torch.load(best, map_location=model.device, weights_only=False)
    model.load_state_dict(state["state_dict"], strict=getattr(model, "strict_loading", True))
    return best


def git_commit() -> str:
    """The checkout's commit hash (with ``-dirty`` for uncommitted changes), or ``unknown``."""
    import subprocess

    from csml.config import project_root

    try:
        root = project_root()
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
        ).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
