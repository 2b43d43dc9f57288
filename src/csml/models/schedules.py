"""Learning-rate schedules shared by csml's LightningModules."""

from __future__ import annotations

from typing import Any

import torch


def linear_warmup_decay(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float
) -> dict[str, Any]:
    """Linear warmup over ``warmup_ratio`` of ``total_steps``, then linear decay to 0.

    Returns the ``lr_scheduler`` entry of ``configure_optimizers`` (stepped every optimiser step).
    """
    total = max(1, int(total_steps))
    warmup = int(total * warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"}
