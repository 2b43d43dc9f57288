"""What a pipeline leaves in its MLflow run: evaluation metrics, reports and per-sample rows under
``evaluation/``, its best checkpoint, and the model it logged."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

if TYPE_CHECKING:
    from csml.evaluation import Evaluation

log = logging.getLogger(__name__)


def log_samples(path: Path, samples: list[dict[str, Any]]) -> None:
    """Writes per-sample evaluation rows as JSON Lines and logs the file to the active run's ``evaluation/``."""
    import mlflow

    path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples), encoding="utf-8")
    mlflow.log_artifact(str(path), "evaluation")


def log_evaluation_metrics(metrics: dict[str, float], evaluation_dir: Path) -> None:
    """Logs a pipeline's evaluation metrics to the active run and writes them to ``metrics.json`` in
    ``evaluation_dir`` (the response pipelines; a classifier's go through :func:`log_classifier_evaluation`)."""
    import mlflow

    mlflow.log_metrics(metrics)
    (evaluation_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))


def log_classifier_evaluation(evaluation: Evaluation, out_dir: Path) -> None:
    """Logs a classifier's :class:`~csml.evaluation.Evaluation` to the active run: its metrics, and the
    reports and plots of :func:`csml.evaluation.write_reports` (written under ``out_dir``, logged under
    ``evaluation/``). Shared by ``csml train``, ``csml eval`` and ``csml promote``."""
    import mlflow

    from csml.evaluation import write_reports

    mlflow.log_metrics(evaluation.metrics)
    for path in write_reports(evaluation, out_dir):
        mlflow.log_artifact(str(path), "evaluation")


def log_best_checkpoint(best_checkpoint: str | None) -> None:
    """Logs the best checkpoint (of :func:`csml.pipeline.fitting.load_best_weights`) under ``checkpoints/``;
    nothing when checkpointing did not run."""
    import mlflow

    if best_checkpoint:
        mlflow.log_artifact(best_checkpoint, "checkpoints")


def registered_name(tracking: DictConfig) -> str | None:
    """The registered model a pipeline's model goes to: ``tracking.registered_model_name`` when
    ``tracking.register`` is on, else None (the model is logged to the run only)."""
    return tracking.registered_model_name if tracking.register else None


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
