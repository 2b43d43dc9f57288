"""Opening the MLflow run of a pipeline, resuming it from its output folder, and the provenance it carries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

RUN_ID_FILE = "mlflow_run.json"
"""The file in a command's output folder that holds its MLflow run id (a training run resumes into it)."""


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
