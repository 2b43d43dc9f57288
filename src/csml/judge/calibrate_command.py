"""``csml calibrate-judge``: choose the groundedness judge's threshold on an auditor's labelled replies.

    csml calibrate-judge labels=path/to/labelled.jsonl
    csml calibrate-judge labels=labelled.jsonl judge.model_uri=runs/judge_groundedness/<run>/model output=cal.json

Writes the calibration JSON (:class:`csml.judge.calibration.Calibration`), prints a table and, when tracking
is configured, logs an MLflow run. Exit status 2 on a bad labelled file or a missing judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from csml.judge.calibration import Calibration
from csml.pipeline.runs import RUN_ID_FILE, git_commit


def calibrate_judge(cfg: DictConfig) -> tuple[Calibration, dict[str, Any]]:
    """Calibrates ``cfg.judge`` on ``cfg.labels``, writes ``cfg.output`` and logs an MLflow run when
    ``cfg.tracking`` is set; returns the calibration and ``{"path": .., "run_id": ..}``.

    Raises:
        DataValidationError: The labelled file is missing or invalid.
        FileNotFoundError: The judge model cannot be loaded.
    """
    from csml.config import apply_offline_env
    from csml.data.splits import DataValidationError
    from csml.judge.calibration import calibrate, read_labelled_replies
    from csml.judge.judge import GroundednessJudge

    apply_offline_env(bool(cfg.get("offline", True)))
    if OmegaConf.is_missing(cfg, "labels") or cfg.labels is None:
        raise DataValidationError(
            "no labelled replies given", field="labels", expected="labels=path/to/labelled.jsonl"
        )
    data = read_labelled_replies(str(cfg.labels))  # before loading the judge: a bad file fails fast
    tracking = cfg.get("tracking")
    uris = {"tracking_uri": tracking.uri, "registry_uri": tracking.get("registry_uri")} if tracking else {}
    model_uri, int8 = str(cfg.judge.model_uri), bool(cfg.judge.get("int8", False))
    judge = GroundednessJudge.load(model_uri, threshold=cfg.judge.get("threshold"), int8=int8, **uris)
    calibration = calibrate(
        judge,
        data.replies,
        data.knowledge,
        data.grounded,
        model_uri=model_uri,
        int8=int8,
        labels_file=data.path,
        labels_sha256=data.sha256,
        resamples=int(cfg.bootstrap_resamples),
        seed=int(cfg.seed),
    )
    path = calibration.save(cfg.output)
    run_id = _log_to_mlflow(cfg, calibration, path) if tracking is not None else None
    return calibration, {"path": path, "run_id": run_id}


def _log_to_mlflow(cfg: DictConfig, calibration: Calibration, path: Path) -> str:
    import mlflow

    from csml.tracking.runs import log_config, mlflow_run

    tags = {
        "csml.task": "calibrate_judge",
        "csml.judge_model": str(calibration.model_uri),
        "csml.git_commit": git_commit(),
    }
    run_id_file = Path(cfg.paths.output_dir) / RUN_ID_FILE
    with mlflow_run(cfg.tracking, cfg.get("run_name"), run_id_file, tags, resume=False) as run:
        log_config(cfg)
        mlflow.log_params(
            {
                "calibration.model_uri": calibration.model_uri,
                "calibration.n": calibration.n,
                "calibration.labels_sha256": calibration.labels_sha256,
            }
        )
        low, high = calibration.balanced_accuracy_ci
        mlflow.log_metrics(
            {
                "calibration/threshold": calibration.threshold,
                "calibration/balanced_accuracy": calibration.balanced_accuracy,
                "calibration/balanced_accuracy_ci_low": low,
                "calibration/balanced_accuracy_ci_high": high,
                "calibration/previous_threshold": calibration.previous_threshold,
                "calibration/previous_balanced_accuracy": calibration.previous_balanced_accuracy,
            }
        )
        mlflow.log_artifact(str(path), "calibration")
        return run.info.run_id


def calibrate_judge_command(cfg: DictConfig) -> None:
    """The ``csml calibrate-judge`` entry point: prints the calibration and where it was written."""
    calibration, written = calibrate_judge(cfg)
    print(calibration.table())
    print(f"\ncalibration: {written['path']}")
    if written["run_id"]:
        print(f"mlflow run:  {written['run_id']}")
    print(f"use it in audits: csml audit groundedness_judge.calibration={written['path']}")
