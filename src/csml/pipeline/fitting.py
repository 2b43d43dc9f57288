"""Readying a training pipeline and fitting its LightningModule: seeds, output folder, the checkpoint to
resume from, the configured Trainer, and the best weights afterwards."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from csml.config import apply_offline_env

log = logging.getLogger(__name__)


def setup_pipeline(cfg: DictConfig) -> tuple[Path, str | None]:
    """Readies a training pipeline before it reads any data: applies ``cfg.offline``, seeds every generator
    (data-loader workers too) with ``cfg.seed`` and creates ``cfg.paths.output_dir``.

    Returns:
        The output folder, and the checkpoint to resume from (:func:`resolve_checkpoint` of
        ``cfg.ckpt_path``; None to start afresh).

    Raises:
        FileNotFoundError: ``cfg.ckpt_path`` names a checkpoint that does not exist.
    """
    import lightning as L

    apply_offline_env(cfg.offline)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir, resolve_checkpoint(cfg.get("ckpt_path"), output_dir)


def resolve_checkpoint(ckpt_path: str | None, output_dir: Path) -> str | None:
    """``"last"`` means the last checkpoint of this run folder (resuming an interrupted run)."""
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise FileNotFoundError(
                f"ckpt_path=last but {last} does not exist; to resume, pass the interrupted run's folder "
                "as hydra.run.dir=<folder> (it holds checkpoints/last.ckpt)"
            )
        return str(last)
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
    return ckpt_path


def is_rank_zero() -> bool:
    """Whether this is the first (or only) process of a training run. torchrun sets ``RANK``, srun
    ``SLURM_PROCID``; the processes Lightning's own launcher starts carry ``LOCAL_RANK`` and ``NODE_RANK``."""
    for variable in ("RANK", "SLURM_PROCID"):
        if variable in os.environ:
            return int(os.environ[variable]) == 0
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def fit(
    cfg: DictConfig,
    model: Any,
    datamodule: Any,
    run_id: str | None,
    ckpt_path: str | None,
    extra_callbacks: list[Any] | None = None,
) -> Any:
    """Builds the Trainer of ``cfg.trainer`` with ``cfg.callbacks`` (plus ``extra_callbacks``) and
    ``cfg.logger`` (writing into MLflow run ``run_id``) and fits ``model``, resuming from ``ckpt_path`` if
    given; returns the trainer.

    On Ctrl-C Lightning stops the process (status 1) after its teardown; the warning says how to resume.
    """
    from hydra.utils import instantiate

    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks += extra_callbacks or []
    if not cfg.get("logger"):
        logger = False
    elif not is_rank_zero():
        from lightning.pytorch.loggers.logger import DummyLogger

        logger = DummyLogger()  # ranks > 0 never open the tracking store (rank 0 logs)
    else:
        logger = instantiate(cfg.logger, run_id=run_id)
    # Partial first: Hydra would try to merge the objects into the config (DummyLogger defeats that).
    trainer = instantiate(cfg.trainer, _partial_=True)(callbacks=callbacks, logger=logger)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except SystemExit:
        log.warning(
            "training interrupted; to resume into the same MLflow run, rerun the same command with "
            "hydra.run.dir=%s ckpt_path=last",
            cfg.paths.output_dir,
        )
        raise
    return trainer


def load_best_weights(trainer: Any, model: Any) -> str | None:
    """Restores the best checkpoint's weights into ``model`` (if checkpointing ran); returns its path."""
    import torch

    callback = getattr(trainer, "checkpoint_callback", None)
    best = getattr(callback, "best_model_path", "") if callback else ""
    if not best:
        return None
    state = torch.load(best, map_location=model.device, weights_only=False)
    model.load_state_dict(state["state_dict"], strict=getattr(model, "strict_loading", True))
    return best
