"""CPU inference speed-ups shared by the bot's encoder and the groundedness judge."""

from __future__ import annotations

from typing import Any


def quantize_int8(model: Any) -> Any:
    """``model`` with its linear layers quantised to int8 (PyTorch dynamic quantisation, CPU inference only):
    about 2.5x less CPU for a MiniLM forward on x86, at a small cost in fidelity that callers should measure."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch marks eager-mode quantisation deprecated in favour of torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
