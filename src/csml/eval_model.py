"""``csml eval``: score a registered MLflow model or a csml checkpoint on a dataset config."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig

from csml.config import apply_offline_env

if TYPE_CHECKING:
    from csml.data.splits import DatasetSplits
    from csml.evaluation import Evaluation

log = logging.getLogger(__name__)


def eval_model(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Scores ``cfg.model_uri`` or ``cfg.ckpt_path`` on ``cfg.data``'s splits and logs an MLflow run.

    Logs the same metric names, reports and plots as ``csml train``'s evaluation.
    """
    from hydra.utils import instantiate

    from csml.tracking.runs import log_config, mlflow_run, setup_tracking
    from csml.train import git_commit

    apply_offline_env(cfg.offline)
    if (cfg.model_uri is None) == (cfg.ckpt_path is None):
        raise ValueError(
            "csml eval needs exactly one of model_uri=<MLflow model URI> or ckpt_path=<checkpoint>"
        )
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    splits = instantiate(cfg.data.source).load(cfg.data.label_field)
    threshold = cfg.evaluation.oos_threshold
    if cfg.model_uri is not None:
        setup_tracking(cfg.tracking)  # models:/ URIs resolve against the configured registry
        labels, predict_proba, card = load_registered_model(cfg.model_uri)
        if threshold == "auto":
            threshold = card.get("oos_threshold")
    else:
        labels, predict_proba = _checkpoint_model(cfg.ckpt_path, cfg.data.max_length)
    oos_label = cfg.data.get("oos_label")

    tags = {
        "csml.task": "eval",
        "csml.evaluated_model": str(cfg.model_uri or cfg.ckpt_path),
        "csml.git_commit": git_commit(),
    }
    with mlflow_run(
        cfg.tracking, cfg.get("run_name"), output_dir / "mlflow_run.json", tags, resume=False
    ) as run:
        log_config(cfg)
        evaluation = log_evaluation(
            splits,
            cfg.splits,
            labels,
            predict_proba,
            oos_label,
            threshold,
            output_dir / "evaluation",
            oos_min_recall=cfg.evaluation.get("oos_min_recall"),
        )
        log.info("metrics: %s", {k: round(v, 4) for k, v in evaluation.metrics.items() if k.count("/") == 1})
        return evaluation.metrics, {"run_id": run.info.run_id, "evaluation": evaluation}


def log_evaluation(
    splits: DatasetSplits,
    split_names: Sequence[str],
    labels: list[str],
    predict_proba: Callable[[list[str]], np.ndarray],
    oos_label: str | None,
    oos_threshold: float | str | None,
    out_dir: Path,
    oos_min_recall: float | None = None,
) -> Evaluation:
    """Scores a model on ``split_names`` of ``splits`` and logs it to the active MLflow run.

    Logs the dataset identity, the metrics, and the reports and plots of
    :func:`csml.evaluation.write_reports` (written under ``out_dir``, logged under ``evaluation/``).
    Shared by ``csml eval`` and ``csml promote``.
    """
    import mlflow

    from csml.evaluation import evaluate, write_reports
    from csml.tracking.runs import log_dataset_identity

    log_dataset_identity(splits.identity())
    evaluation = evaluate(
        {split: (splits[split], predict_proba([r.text for r in splits[split]])) for split in split_names},
        labels,
        splits.label_field,
        oos_label=oos_label,
        oos_threshold=oos_threshold,
        oos_min_recall=oos_min_recall,
    )
    mlflow.log_metrics(evaluation.metrics)
    for path in write_reports(evaluation, out_dir):
        mlflow.log_artifact(str(path), "evaluation")
    return evaluation


def load_registered_model(model_uri: str) -> tuple[list[str], Any, dict[str, Any]]:
    """Loads a csml classifier from an MLflow model URI: its labels, ``predict_proba`` and model card."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    return model.labels, model.predict_proba, model.card


def _checkpoint_model(ckpt_path: str, max_length: int) -> tuple[list[str], Any]:
    import torch
    from transformers import AutoTokenizer

    from csml.models.classifier import SequenceClassifier

    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
    model = SequenceClassifier.load_from_checkpoint(
        ckpt_path, map_location="cpu", optimizer=torch.optim.AdamW
    )
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(model.hparams.backbone)

    def predict_proba(texts: list[str]) -> np.ndarray:
        return model.net.predict_texts(tokenizer, texts, max_length)

    return model.labels, predict_proba
