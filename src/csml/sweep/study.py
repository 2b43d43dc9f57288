"""The Optuna study a sweep's workers share, and the MLflow run each study's trials nest under."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from omegaconf import DictConfig
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

PARENT_RUN_ATTR = "csml.mlflow_parent_run_id"
# A worker that finds the study created by another waits this long for that worker's parent run id.
PARENT_WAIT_S = 120.0


def storage_url(storage: DictConfig) -> str:
    """The storage URL with the password of ``storage.password_env`` (if named) filled in."""
    url = str(storage.url)
    env = storage.get("password_env")
    if not env:
        return url
    if env not in os.environ:
        raise KeyError(
            f"hparams_search.storage.password_env names {env!r}, which is not set in the environment"
        )
    return make_url(url).set(password=os.environ[env]).render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """A storage URL fit for logs and MLflow params: any password masked."""
    return make_url(url).render_as_string(hide_password=True)


def open_storage(storage: DictConfig, attempts: int = 5) -> Any:
    """An ``optuna.storages.RDBStorage`` with worker heartbeats (a dead worker's trial is failed and redone).

    Workers that start together on an empty database race to create Optuna's tables (PostgreSQL reports
    the loser's ``CREATE TYPE`` as a unique violation); the loser retries and finds the tables made.
    """
    import random

    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    url = storage_url(storage)
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        attempt += 1
        try:
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=storage.get("heartbeat_interval"),
                grace_period=storage.get("grace_period"),
            )
        except (IntegrityError, ProgrammingError) as error:
            if attempt >= attempts:
                raise
            log.info("Optuna schema being created by another worker (%s); retrying", type(error).__name__)
            time.sleep(0.5 + random.random())


def create_or_load(search: DictConfig, storage: Any, sampler: Any, pruner: Any) -> tuple[Any, bool]:
    """Creates the study, or loads it when another worker (or an earlier run) did; returns it and whether
    this call created it. The storage's unique study name makes exactly one worker the creator."""
    import optuna

    kwargs = {"study_name": str(search.study_name), "storage": storage, "sampler": sampler, "pruner": pruner}
    try:
        return optuna.create_study(direction=str(search.direction), **kwargs), True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**kwargs)
        wanted = optuna.study.StudyDirection[str(search.direction).upper()]
        if study.direction != wanted:
            raise ValueError(
                f"study {search.study_name!r} in this storage optimises {study.direction.name.lower()}, "
                f"not {search.direction}: pick another hparams_search.study_name"
            ) from None
        return study, False


def parent_run_id(study: Any, created: bool, tracking: DictConfig, describe: dict[str, str]) -> str:
    """The id of the study's MLflow parent run: started by the worker that created the study, found by the
    others through the study's user attribute ``csml.mlflow_parent_run_id``.

    Args:
        study: The shared study.
        created: Whether this worker created the study (then it starts the parent run).
        tracking: ``cfg.tracking`` of the trials (the parent run goes to the same experiment).
        describe: Params of the parent run (the sweep's settings, the search space; no secrets).
    """
    deadline = time.monotonic() + (0.0 if created else PARENT_WAIT_S)
    while True:
        run_id = study.user_attrs.get(PARENT_RUN_ATTR)
        if run_id:
            return str(run_id)
        if time.monotonic() >= deadline:
            break
        time.sleep(1.0)
        study = _reload(study)
    if not created:
        log.warning(
            "study %s has no MLflow parent run after %.0f s; starting one", study.study_name, PARENT_WAIT_S
        )
    return _start_parent_run(study, tracking, describe)


def _reload(study: Any) -> Any:
    import optuna

    return optuna.load_study(study_name=study.study_name, storage=study._storage, sampler=study.sampler)


def _start_parent_run(study: Any, tracking: DictConfig, describe: dict[str, str]) -> str:
    from mlflow import MlflowClient
    from mlflow.entities import Param

    from csml.tracking.runs import setup_tracking

    experiment_id = setup_tracking(tracking)
    client = MlflowClient(str(tracking.uri))
    run = client.create_run(
        experiment_id,
        run_name=study.study_name,
        tags={"csml.sweep.study": study.study_name, "csml.sweep.role": "study"},
    )
    items = list(describe.items())
    for start in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in items[start : start + 100]])
    study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
    log.info("study %s: MLflow parent run %s", study.study_name, run.info.run_id)
    return run.info.run_id
