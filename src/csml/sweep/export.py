"""Writes a study's best trial as an experiment file: the sweep's overrides plus the best values."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from csml.config import config_dir

# Overrides that describe the machine or the sweep rather than the model: left out of the experiment.
MACHINE_KEYS = (
    "paths",
    "hydra",
    "hparams_search",
    "ckpt_path",
    "run_name",
    "tracking.uri",
    "tracking.registry_uri",
    "tracking.artifact_location",
    "tracking.register",
)


def _is_machine_key(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in MACHINE_KEYS)


def experiment_yaml(base_overrides: list[str], best_params: Mapping[str, Any], header: list[str]) -> str:
    """An ``# @package _global_`` experiment reproducing the best trial.

    Group choices of ``base_overrides`` become defaults (``experiment=x`` includes experiment ``x``;
    ``model=y`` becomes ``override /model: y``), value overrides and the best params become nested keys.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    defaults: list[Any] = []
    values = OmegaConf.create({})
    for override in OverridesParser.create().parse_overrides(base_overrides):
        key = override.key_or_group
        if _is_machine_key(key) or override.is_delete():
            continue
        value = override.value()
        if (config_dir() / key).is_dir() and override.package is None:
            defaults.append(str(value) if key == "experiment" else {f"override /{key}": value})
        else:
            OmegaConf.update(values, key, value, force_add=True)
    for key, value in best_params.items():
        OmegaConf.update(values, key, value, force_add=True)
    body = OmegaConf.create({"defaults": [*defaults, "_self_"], **OmegaConf.to_container(values)})
    comments = "".join(f"# {line}\n" for line in header)
    return f"# @package _global_\n{comments}{OmegaConf.to_yaml(body)}"


def write_best_experiment(
    path: Path, base_overrides: list[str], best: Any, metric: str, study_name: str
) -> Path:
    """Writes ``best`` (an Optuna ``FrozenTrial``) to ``path``; returns the path."""
    name = path.stem
    header = [
        f"Best trial ({best.number}) of Optuna study {study_name}: {metric}={best.value:.4f}.",
        f"Copy to conf/experiment/{name}.yaml, then:",
        f"  csml train experiment={name}",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(experiment_yaml(base_overrides, best.params, header))
    return path
