"""Training throughput of each csml model kind: samples/s and peak accelerator memory, fp32 vs bf16-mixed.

Each model is built from its csml config (the same LightningModule `csml train` / `csml train-response`
fits) and trained by a Lightning Trainer for ``--steps`` optimiser steps on fixed-shape batches of random
token ids (throughput depends on shapes, not on token values); the first ``--warmup`` steps are not timed.

    .venv/bin/python benchmarks/gpu_throughput.py                       # every kind, fp32 and bf16, on CUDA
    .venv/bin/python benchmarks/gpu_throughput.py --kinds classifier --cpu   # a CPU smoke run (fp32 only)

Without CUDA it refuses to run unless ``--cpu`` is given, and then says the figures are CPU figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch

from csml.config import OFFLINE_ENV, compose

for key, value in OFFLINE_ENV.items():
    os.environ.setdefault(key, value)

# kind -> (config, model group, default batch size, sequence length)
KINDS: dict[str, tuple[str, str, int, int]] = {
    "classifier": ("train", "model", 32, 64),
    "retrieval": ("train_response", "response_model", 32, 64),
    "generative": ("train_response", "response_model=smollm2_lora", 8, 256),
}


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown"


def build(kind: str) -> tuple[Any, Callable[[int, int, Any], dict[str, Any]]]:
    """The LightningModule of ``kind`` from its default config, and a batch factory (size, length, gen)."""
    from hydra.utils import instantiate

    config, group, _, _ = KINDS[kind]
    overrides = ["paths.output_dir=/tmp/csml-gpu-throughput"] + ([group] if "=" in group else [])
    cfg = compose(config, overrides)
    node = cfg[group.split("=")[0]]
    if kind == "classifier":
        module = instantiate(node, labels=[f"intent_{i}" for i in range(77)])
        vocab = module.net.encoder.config.vocab_size

        def batch(size: int, length: int, gen: torch.Generator) -> dict[str, Any]:
            ids = torch.randint(1000, vocab, (size, length), generator=gen)
            return {
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "labels": torch.randint(0, 77, (size,), generator=gen),
            }

        return module, batch
    module = instantiate(node)
    if kind == "retrieval":
        vocab = module.net.encoder.config.vocab_size

        def batch(size: int, length: int, gen: torch.Generator) -> dict[str, Any]:
            q = torch.randint(1000, vocab, (size, length), generator=gen)
            r = torch.randint(1000, vocab, (size, length), generator=gen)
            return {
                "query_input_ids": q,
                "query_attention_mask": torch.ones_like(q),
                "response_input_ids": r,
                "response_attention_mask": torch.ones_like(r),
            }

        return module, batch
    vocab = module.net.config.vocab_size

    def batch(size: int, length: int, gen: torch.Generator) -> dict[str, Any]:
        ids = torch.randint(0, vocab, (size, length), generator=gen)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}

    return module, batch


def measure(
    kind: str, precision: str, steps: int, warmup: int, batch_size: int, length: int, cpu: bool
) -> dict:
    import lightning as L
    import torch

    module, make_batch = build(kind)
    gen = torch.Generator().manual_seed(0)
    batches = [make_batch(batch_size, length, gen) for _ in range(steps)]
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu" if cpu else "gpu",
        devices=1,
        precision=precision,
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    if not cpu:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, train_dataloaders=loader)
    timed = steps - warmup
    return {
        "samples_per_s": round(timed * batch_size / timer.elapsed, 1),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if not cpu else None,
        "batch_size": batch_size,
        "sequence_length": length,
        "timed_steps": timed,
    }


class StepTimer(L.Callback):
    """Times the optimiser steps after the first ``warmup`` (CUDA-synchronised)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start: float | None = None
        self.elapsed = 0.0

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == self.warmup:
            _sync()
            self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        _sync()
        self.elapsed = time.perf_counter() - (self.start or time.perf_counter())


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--cpu", action="store_true", help="run on CPU (fp32 only) when there is no GPU")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu:
        raise SystemExit(
            "no CUDA device: this benchmark measures GPU training; pass --cpu for a CPU smoke run"
        )
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({cpu_name()}, {os.cpu_count()} cores), no CUDA"
    precisions = ["32-true", "bf16-mixed"] if cuda and torch.cuda.is_bf16_supported() else ["32-true"]
    results: dict[str, dict[str, Any]] = {}
    for kind in args.kinds:
        _, _, batch_size, length = KINDS[kind]
        for precision in precisions:
            print(f"{kind} {precision} ...", flush=True)
            results.setdefault(kind, {})[precision] = measure(
                kind, precision, args.steps, args.warmup, batch_size, length, cpu=not cuda
            )
        if "bf16-mixed" in results[kind]:
            fp32, bf16 = results[kind]["32-true"], results[kind]["bf16-mixed"]
            results[kind]["bf16_speedup"] = round(bf16["samples_per_s"] / fp32["samples_per_s"], 2)
    print(
        json.dumps({"device": device, "torch": torch.__version__, "cuda": cuda, "results": results}, indent=2)
    )
    if not cuda:
        print("NOTE: no GPU was used; these are CPU figures, not GPU throughput.")


if __name__ == "__main__":
    main()
