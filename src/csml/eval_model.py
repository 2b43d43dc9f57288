"""``csml eval``: score a registered MLflow model or a csml checkpoint on a dataset config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from csml.config import apply_offline_env
from csml.pipeline.results import log_classifier_evaluation
from csml.pipeline.runs import RUN_ID_FILE, git_commit

log = logging.getLogger(__name__)


def eval_model(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Scores ``cfg.model_uri`` or ``cfg.ckpt_path`` on ``cfg.data``'s splits and logs an MLflow run.

    Scores with :func:`csml.scoring.score_splits`, as ``csml promote`` does, and logs the same metric names,
    reports and plots as ``csml train``'s evaluation.
    """
    from hydra.utils import instantiate

    from csml.scoring import Classifier, score_splits
    from csml.tracking.runs import log_config, log_dataset_identity, mlflow_run, setup_tracking

    apply_offline_env(cfg.offline)
    if (cfg.model_uri is None) == (cfg.ckpt_path is None):
        raise ValueError(
            "csml eval needs exactly one of model_uri=<MLflow model URI> or ckpt_path=<checkpoint>"
        )
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    splits = instantiate(cfg.data.source).load(cfg.data.label_field)
    oos_label = cfg.data.get("oos_label")
    if cfg.model_uri is not None:
        setup_tracking(cfg.tracking)  # models:/ URIs resolve against the configured registry
        classifier = Classifier.from_uri(cfg.model_uri)
    else:
        classifier = Classifier.from_checkpoint(cfg.ckpt_path, cfg.data.max_length, oos_label)
    if cfg.evaluation.get("oos_score") is not None:
        classifier = classifier.with_oos_scorer(
            cfg.evaluation.oos_score,
            cfg.evaluation.get("oos_score_params"),
            splits["train"],
            splits.label_field,
            oos_label,
        )
    evaluation = score_splits(
        classifier,
        splits,
        cfg.splits,
        oos_label,
        oos_threshold=cfg.evaluation.oos_threshold,
        decision_threshold=cfg.evaluation.get("decision_threshold", "auto"),
        positive_label=cfg.evaluation.get("positive_label"),
        oos_min_recall=cfg.evaluation.get("oos_min_recall"),
        oos_in_scope_acceptance=cfg.evaluation.get("oos_in_scope_acceptance"),
        threshold_domain_field=cfg.evaluation.get("threshold_domain_field"),
        threshold_answer_field=cfg.evaluation.get("threshold_answer_field"),
    )

    tags = {
        "csml.task": "eval",
        "csml.evaluated_model": str(cfg.model_uri or cfg.ckpt_path),
        "csml.git_commit": git_commit(),
    }
    with mlflow_run(cfg.tracking, cfg.get("run_name"), output_dir / RUN_ID_FILE, tags, resume=False) as run:
        log_config(cfg)
        log_dataset_identity(splits.identity())
        log_classifier_evaluation(evaluation, output_dir / "evaluation")
        log.info("metrics: %s", {k: round(v, 4) for k, v in evaluation.metrics.items() if k.count("/") == 1})
        return evaluation.metrics, {"run_id": run.info.run_id, "evaluation": evaluation}
