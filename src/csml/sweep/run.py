"""``csml sweep``: an Optuna study over ``csml train``, each trial composed with Hydra and tracked in MLflow.

Every worker runs the same command; they share the study through its storage (sqlite on one machine,
PostgreSQL across machines) and stop when the study holds ``n_trials`` completed or pruned trials.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from csml.config import apply_offline_env, compose
from csml.sweep.space import Param, SearchSpaceError, parse_space, to_overrides
from csml.sweep.study import safe_url

log = logging.getLogger(__name__)

# Overrides a sweep sets on every trial itself (or that only concern the sweep).
TRIAL_OWNED = ("hparams_search", "paths.output_dir", "run_name")


class SweepConfigError(ValueError):
    """A sweep that cannot start: no search configured, a key the training config lacks, a bad setting."""


class SurplusTrial(RuntimeError):
    """Raised for a trial created after the study already had ``n_trials`` (two workers raced)."""


@dataclass
class SweepResult:
    """What a worker leaves behind: the study's state when it stopped (all workers, not just this one)."""

    study_name: str
    parent_run_id: str
    complete: int
    pruned: int
    failed: int
    trial_epochs: int
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_experiment: Path | None = None
    trials_run_here: list[int] = field(default_factory=list)


def trial_base_overrides(overrides: list[str]) -> list[str]:
    """The user's overrides without those the sweep owns (search settings, output folder, run name)."""
    return [o for o in overrides if not o.lstrip("+~").split("=")[0].startswith(TRIAL_OWNED)]


def check_space(cfg: DictConfig, params: list[Param]) -> None:
    """Every searched key must exist in the training config (a typo fails before any trial runs)."""
    missing = [p.key for p in params if OmegaConf.select(cfg, p.key, default="<missing>") == "<missing>"]
    if missing:
        raise SearchSpaceError(f"hparams_search.search_space keys not in the training config: {missing}")
    strategy = str(cfg.trainer.get("strategy", "auto"))
    if "ddp" in strategy.lower() or "fsdp" in strategy.lower():
        raise SweepConfigError(
            f"trials run in one process each (trainer.strategy={strategy}); run one sweep worker per device "
            "instead (CUDA_VISIBLE_DEVICES=<i> csml sweep ...)"
        )


def sweep(overrides: list[str]) -> SweepResult:
    """Runs this worker's share of the study configured by ``overrides`` (of the ``train`` config)."""
    import optuna
    from hydra.utils import instantiate

    from csml.sweep.study import create_or_load, open_storage, parent_run_id

    cfg = compose("train", overrides)
    search = cfg.get("hparams_search")
    if search is None:
        raise SweepConfigError("csml sweep needs a search: add hparams_search=optuna (conf/hparams_search/)")
    apply_offline_env(cfg.offline)
    params = parse_space(search.search_space)
    check_space(cfg, params)
    base = [*trial_base_overrides(overrides), *search.trial_overrides]
    n_trials = int(search.n_trials)

    storage = open_storage(search.storage)
    sampler = instantiate(search.sampler, seed=_sampler_seed(search, storage))
    pruner = instantiate(search.pruning.pruner) if search.pruning.enabled else optuna.pruners.NopPruner()
    study, created = create_or_load(search, storage, sampler, pruner)
    describe = {
        "sweep.study_name": str(search.study_name),
        "sweep.storage": safe_url(str(search.storage.url)),
        "sweep.metric": str(search.metric),
        "sweep.direction": str(search.direction),
        "sweep.n_trials": str(n_trials),
        "sweep.sampler": str(search.sampler._target_),
        "sweep.pruner": str(search.pruning.pruner._target_) if search.pruning.enabled else "none",
        "sweep.overrides": json.dumps([_redact_override(o) for o in base]),
        **{f"space.{p.key}": json.dumps(OmegaConf.to_container(search.search_space[p.key])) for p in params},
    }
    parent = parent_run_id(study, created, cfg.tracking, describe)
    study_dir = Path(str(search.study_dir))
    ran: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        _refuse_surplus(study, trial, n_trials)
        values = {p.key: p.suggest(trial) for p in params}
        ran.append(trial.number)
        return run_trial(trial, values, base, search, study_dir, parent)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while _counted(study) < n_trials:
        try:
            study.optimize(objective, n_trials=1)
        except SurplusTrial:
            break
    return summarize(study, search, base, parent, study_dir, ran, str(cfg.tracking.uri))


def run_trial(
    trial: Any, values: dict[str, Any], base: list[str], search: DictConfig, study_dir: Path, parent: str
) -> float:
    """Trains one trial's config with the pruning callback; returns its objective value."""
    import optuna
    from mlflow import MlflowClient

    from csml.pipeline.runs import RUN_ID_FILE
    from csml.sweep.pruning import OptunaPruning
    from csml.train import train

    trial_dir = study_dir / f"trial_{trial.number:04d}"
    cfg = compose(
        "train",
        [
            *base,
            *to_overrides(values),
            f"paths.output_dir={trial_dir}",
            f"run_name={search.study_name}-trial-{trial.number}",
        ],
    )
    shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    log.info("trial %d of %s: %s", trial.number, search.study_name, shown)
    trial.set_user_attr("output_dir", str(trial_dir))
    pruning = OptunaPruning(trial, str(search.pruning.monitor))
    tags = {
        "mlflow.parentRunId": parent,
        "csml.sweep.study": str(search.study_name),
        "csml.sweep.trial": str(trial.number),
    }
    try:
        metrics, objects = train(cfg, callbacks=[pruning], run_tags=tags)
    except optuna.TrialPruned:
        trial.set_user_attr("epochs", pruning.epochs)
        run_file = trial_dir / RUN_ID_FILE
        if run_file.is_file():
            run_id = json.loads(run_file.read_text())["run_id"]
            trial.set_user_attr("mlflow_run_id", run_id)
            client = MlflowClient(str(cfg.tracking.uri))
            client.set_tag(run_id, "csml.sweep.state", "pruned")
            client.set_terminated(run_id, "KILLED")
        log.info("trial %d pruned after %d epoch(s)", trial.number, pruning.epochs)
        raise
    trial.set_user_attr("epochs", pruning.epochs)
    trial.set_user_attr("mlflow_run_id", objects.get("run_id"))
    metric = str(search.metric)
    if metric not in metrics:
        raise KeyError(
            f"hparams_search.metric={metric!r} is not a metric of train(); it returns {sorted(metrics)}"
        )
    log.info("trial %d: %s=%.4f after %d epoch(s)", trial.number, metric, metrics[metric], pruning.epochs)
    return float(metrics[metric])


def summarize(
    study: Any,
    search: DictConfig,
    base: list[str],
    parent: str,
    study_dir: Path,
    ran: list[int],
    tracking_uri: str,
) -> SweepResult:
    """Writes the best config so far, records it on the parent run (finished once the study is), logs."""
    from mlflow import MlflowClient
    from optuna.trial import TrialState

    from csml.sweep.export import write_best_experiment

    trials = study.get_trials(deepcopy=False)
    by_state = {s: [t for t in trials if t.state == s] for s in TrialState}
    finished = by_state[TrialState.COMPLETE] + by_state[TrialState.PRUNED]
    result = SweepResult(
        study_name=study.study_name,
        parent_run_id=parent,
        complete=len(by_state[TrialState.COMPLETE]),
        pruned=len(by_state[TrialState.PRUNED]),
        failed=len(by_state[TrialState.FAIL]),
        trial_epochs=sum(int(t.user_attrs.get("epochs", 0)) for t in finished),
        trials_run_here=ran,
    )
    client = MlflowClient(tracking_uri)
    client.log_metric(parent, "sweep/trial_epochs", result.trial_epochs, step=len(finished))
    if by_state[TrialState.COMPLETE]:
        best = study.best_trial
        name = re.sub(r"\W+", "_", study.study_name) + "_best"
        path = write_best_experiment(
            study_dir / f"{name}.yaml", base, best, str(search.metric), study.study_name
        )
        result.best_value, result.best_params, result.best_experiment = best.value, dict(best.params), path
        client.log_metric(parent, f"best/{search.metric}", best.value, step=len(finished))
        client.set_tag(parent, "csml.sweep.best_trial", str(best.number))
        client.set_tag(parent, "csml.sweep.best_run_id", str(best.user_attrs.get("mlflow_run_id")))
        client.log_artifact(parent, str(path), "best")
        client.log_text(parent, study.trials_dataframe().to_csv(index=False), "study/trials.csv")
    if len(finished) >= int(search.n_trials) and not by_state[TrialState.RUNNING]:
        client.set_terminated(parent, "FINISHED")
    log.info(
        "study %s: %d complete, %d pruned, %d failed, %d trial-epochs; best %s=%s; MLflow parent run %s%s",
        study.study_name,
        result.complete,
        result.pruned,
        result.failed,
        result.trial_epochs,
        search.metric,
        f"{result.best_value:.4f}" if result.best_value is not None else "n/a",
        parent,
        f"; best config: {result.best_experiment}" if result.best_experiment else "",
    )
    return result


def sweep_command(cfg: DictConfig) -> None:
    """Entry point of ``csml sweep`` (a Hydra app over the ``train`` config)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task)
    GlobalHydra.instance().clear()  # each trial composes its config with Hydra's compose API
    try:
        sweep(overrides)
    except (SweepConfigError, SearchSpaceError) as error:
        logging.getLogger("csml").error("%s", error)
        sys.exit(2)


def _counted(study: Any) -> int:
    """Trials that count towards ``n_trials``: finished, running or queued (failed ones are redone)."""
    import optuna
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    return len(study.get_trials(deepcopy=False, states=counted))


def _refuse_surplus(study: Any, trial: Any, n_trials: int) -> None:
    """Trial numbers are assigned atomically by the storage, so the trials before this one decide whether
    it is within ``n_trials`` (two workers can both start one when a single slot is left)."""
    from optuna.trial import TrialState

    before = [
        t for t in study.get_trials(deepcopy=False) if t.number < trial.number and t.state != TrialState.FAIL
    ]
    if len(before) >= n_trials:
        trial.set_user_attr("csml.surplus", True)
        raise SurplusTrial(f"trial {trial.number} not run: the study already has {n_trials} trials")


def _sampler_seed(search: DictConfig, storage: Any) -> int | None:
    """The sampler's seed, offset per worker and by the trials already run, so that neither another worker
    nor a resumed run repeats the random start-up points."""
    seed = search.sampler.get("seed")
    if seed is None:
        return None
    try:
        study_id = storage.get_study_id_from_name(str(search.study_name))
        existing = len(storage.get_all_trials(study_id, deepcopy=False))
    except KeyError:
        existing = 0
    return int(seed) + 1000 * int(search.worker_id) + existing


def _redact_override(override: str) -> str:
    """``key=value`` with the value masked when the key looks like a secret (as config params are)."""
    from csml.tracking.runs import REDACTED, SECRET_KEY

    key, sep, _ = override.partition("=")
    return f"{key}{sep}{REDACTED}" if sep and SECRET_KEY.search(key.lstrip("+~")) else override


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
