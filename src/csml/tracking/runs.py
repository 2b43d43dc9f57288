"""Opening MLflow runs on the configured store and logging configs and datasets to them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

SECRET_KEY = re.compile(r"(api_?key|token|secret|password|passwd|credential)s?$", re.IGNORECASE)
REDACTED = "***"
MAX_PARAM_LENGTH = 6000


def use_store(tracking_uri: str, registry_uri: str | None = None) -> None:
    """Points MLflow's tracking and model registry at a store (the registry defaults to the tracking store)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)


def setup_tracking(tracking: DictConfig | Mapping[str, Any]) -> str:
    """Points MLflow at the configured store and experiment; returns the experiment id.

    For the embedded default (a ``sqlite:///`` URI) the database folder and the artifact location are
    created, so a fresh checkout tracks runs with no server.
    """
    import mlflow

    uri = str(tracking["uri"])
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    use_store(uri, tracking.get("registry_uri"))
    name = str(tracking["experiment_name"])
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = tracking.get("artifact_location")
    if artifact_location:
        Path(artifact_location).mkdir(parents=True, exist_ok=True)
        artifact_location = Path(artifact_location).resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=artifact_location)


@contextmanager
def mlflow_run(
    tracking: DictConfig | Mapping[str, Any],
    run_name: str | None,
    run_id_file: Path,
    tags: dict[str, str],
    resume: bool = True,
) -> Iterator[Any]:
    """Starts a run, or resumes the one whose id ``run_id_file`` holds (an interrupted run's folder).

    The run id is written to ``run_id_file`` as soon as the run exists, so a crash leaves enough behind
    to resume into the same MLflow run. A resumed run carries the tag ``csml.resumed=true``. With
    ``resume=False`` a new run is always started (evaluations are cheap to redo).
    """
    import mlflow

    experiment_id = setup_tracking(tracking)
    resume_id = json.loads(run_id_file.read_text())["run_id"] if resume and run_id_file.is_file() else None
    if resume_id:
        tags = {**tags, "csml.resumed": "true"}
    with mlflow.start_run(run_id=resume_id, experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        run_id_file.parent.mkdir(parents=True, exist_ok=True)
        run_id_file.write_text(json.dumps({"run_id": run.info.run_id, "experiment_id": experiment_id}))
        yield run


def redact(node: Any) -> Any:
    """A copy of a config container with the values of secret-looking keys replaced by ``***``.

    Configs name environment variables rather than hold secrets; redaction is a second line of defence.
    """
    if isinstance(node, Mapping):
        return {
            key: REDACTED
            if SECRET_KEY.search(str(key)) and value and not isinstance(value, Mapping)
            else redact(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [redact(item) for item in node]
    return node


def flatten_config(cfg: DictConfig | Mapping[str, Any]) -> dict[str, str]:
    """Flattens a config (resolved, redacted) to ``a.b.c -> JSON value`` strings for MLflow params."""
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    flat: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
            return
        text = json.dumps(node)
        flat[path] = text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."

    walk(redact(container), "")
    return flat


def log_config(cfg: DictConfig, resumed: bool = False) -> None:
    """Logs the flattened, resolved, redacted config as params and the full YAML as an artifact.

    A resumed run keeps its original params (MLflow params are immutable); the config it was resumed
    with is added as ``config/resumed_<time>.yaml``.
    """
    import time

    import mlflow

    text = OmegaConf.to_yaml(redact(OmegaConf.to_container(cfg, resolve=True)))
    if resumed:
        mlflow.log_text(text, f"config/resumed_{time.strftime('%Y%m%d-%H%M%S')}.yaml")
        return
    items = list(flatten_config(cfg).items())
    for start in range(0, len(items), 100):
        mlflow.log_params(dict(items[start : start + 100]))
    mlflow.log_text(text, "config/config.yaml")


def log_dataset_identity(identity: dict[str, Any]) -> None:
    """Logs a dataset's name, hash and row counts as params, and its full identity as JSON; with a label
    policy report, also its counts (rare labels, rows dropped and remapped per split) as params and the
    report, with the policy applied, as ``data/label_policy.json``."""
    import mlflow

    mlflow.log_params(
        {
            "data.identity.name": identity["name"],
            "data.identity.sha256": identity["sha256"],
            **{f"data.identity.rows.{split}": n for split, n in identity["rows"].items()},
        }
    )
    mlflow.set_tag("csml.dataset_sha256", identity["sha256"])
    mlflow.log_dict(identity, "data/identity.json")
    report = identity.get("label_policy")
    if report:
        mlflow.log_params(
            {
                "data.label_policy.rare_labels": len(report["rare_labels"]),
                **{
                    f"data.label_policy.rows_dropped.{split}": n
                    for split, n in report["rows_dropped"].items()
                },
                **{
                    f"data.label_policy.rows_remapped.{split}": n
                    for split, n in report["rows_remapped"].items()
                },
            }
        )
        mlflow.log_dict(report, "data/label_policy.json")
