"""Training throughput of csml's classifier pipeline beside a plain ``transformers.Trainer`` run.

Same model (MiniLM encoder + mean pooling + linear head), same data (Banking77 train), same batch size,
learning rate, max length and number of optimiser steps, in the same process. Prints samples/s of each
and the ratio. csml's advantage comes from length-bucketed batches (less padding); the Trainer is run
as users run it by default, and also with ``train_sampling_strategy="group_by_length"`` (like-for-like).

    .venv/bin/python benchmarks/train_throughput.py --steps 120 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from csml.config import OFFLINE_ENV, compose

for key, value in OFFLINE_ENV.items():
    os.environ.setdefault(key, value)


def csml_samples_per_second(steps: int, batch_size: int, workdir: str) -> float:
    import lightning as L
    from hydra.utils import instantiate
    from transformers import AutoTokenizer

    cfg = compose(
        "train",
        [f"paths.run_dir={workdir}", f"paths.output_dir={workdir}/out", f"data.batch_size={batch_size}"],
    )
    L.seed_everything(0)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.backbone)
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    datamodule.setup()
    model = instantiate(cfg.model, labels=datamodule.labels)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=datamodule.train_dataloader())
    return steps * batch_size / (time.perf_counter() - start)


def trainer_samples_per_second(steps: int, batch_size: int, workdir: str, group_by_length: bool) -> float:
    import torch
    from hydra.utils import instantiate
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    from csml.models.components.encoder_classifier import EncoderClassifier

    cfg = compose("train", [f"paths.run_dir={workdir}", f"paths.output_dir={workdir}/out"])
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.backbone)
    splits = instantiate(cfg.data.source).load("intent")
    index = {label: i for i, label in enumerate(splits.labels)}
    encoded = tokenizer([r.text for r in splits["train"]], truncation=True, max_length=cfg.data.max_length)
    train_set = [
        {"input_ids": ids, "labels": index[r.intent]}
        for ids, r in zip(encoded["input_ids"], splits["train"], strict=True)
    ]

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = EncoderClassifier.from_pretrained(cfg.model.backbone, len(splits.labels))

        def forward(self, input_ids, attention_mask, labels):
            logits = self.net(input_ids, attention_mask)
            return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}

    args = TrainingArguments(
        output_dir=f"{workdir}/hf",
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=cfg.model.optimizer.lr,
        weight_decay=cfg.model.optimizer.weight_decay,
        warmup_steps=int(steps * cfg.model.warmup_ratio),
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=Wrapped(), args=args, train_dataset=train_set, data_collator=DataCollatorWithPadding(tokenizer)
    )
    start = time.perf_counter()
    trainer.train()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--repeats", type=int, default=2, help="rounds over the three set-ups; the best round of each counts"
    )
    args = parser.parse_args()
    import torch

    runs = {
        "csml": lambda workdir: csml_samples_per_second(args.steps, args.batch_size, workdir),
        "hf_trainer": lambda workdir: trainer_samples_per_second(args.steps, args.batch_size, workdir, False),
        "hf_trainer_group_by_length": lambda workdir: trainer_samples_per_second(
            args.steps, args.batch_size, workdir, True
        ),
    }
    # Rounds alternate the set-ups, so warm caches (kernels for each padded shape) favour none of them.
    rounds: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.repeats):
            for name, run in runs.items():
                rounds[name].append(run(workdir))
    results = {name: max(values) for name, values in rounds.items()}
    print(
        json.dumps(
            {
                "steps": args.steps,
                "batch_size": args.batch_size,
                "threads": torch.get_num_threads(),
                "samples_per_s": {k: round(v, 1) for k, v in results.items()},
                "rounds": {k: [round(v, 1) for v in values] for k, values in rounds.items()},
                "ratio_csml_vs_hf_trainer": round(results["csml"] / results["hf_trainer"], 3),
                "ratio_csml_vs_hf_trainer_group_by_length": round(
                    results["csml"] / results["hf_trainer_group_by_length"], 3
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
