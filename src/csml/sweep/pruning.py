"""A Lightning callback that reports a validation metric to an Optuna trial each epoch and prunes it.

optuna-integration's ``PyTorchLightningPruningCallback`` does the same; csml carries this small one so
sweeps need only ``optuna`` itself.
"""

from __future__ import annotations

from typing import Any

import lightning as L


class OptunaPruning(L.Callback):
    """Reports ``monitor`` after every validation epoch and raises ``optuna.TrialPruned`` when the
    study's pruner says the trial is behind.

    Args:
        trial: The ``optuna.Trial`` being trained.
        monitor: A metric the LightningModule logs during validation (``val/macro_f1``).

    Attributes:
        epochs: Validation epochs reported so far (the trial's compute, in epochs).
    """

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial = trial
        self.monitor = monitor
        self.epochs = 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import optuna

        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise KeyError(
                f"hparams_search.pruning.monitor={self.monitor!r} was not logged during validation; "
                f"logged: {sorted(trainer.callback_metrics)}"
            )
        self.epochs += 1
        epoch = trainer.current_epoch
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} with {self.monitor}={float(value):.4f}")
