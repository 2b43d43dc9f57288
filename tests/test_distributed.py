"""Data-parallel training for real: two CPU processes (gloo) started by torchrun train a couple of steps;
rank 0 alone tracks, evaluates and saves."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from csml.data.datamodule import LengthBucketSampler


def test_length_bucket_sampler_shards_the_same_permutation_across_replicas() -> None:
    lengths = [i % 13 for i in range(100)]
    whole = list(LengthBucketSampler(lengths, 8, seed=3))
    shards = [LengthBucketSampler(lengths, 8, seed=3, num_replicas=2, rank=r) for r in range(2)]
    batches = [list(s) for s in shards]
    assert len(batches[0]) == len(batches[1]) == len(shards[0]) == len(whole) // 2
    assert batches[0] == whole[0::2][: len(whole) // 2] and batches[1] == whole[1::2][: len(whole) // 2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_torchrun_ddp_cpu_trains_on_two_processes_and_tracks_once(tmp_path, smoke_overrides) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    run_dir = tmp_path / "run"
    command = [
        str(torchrun),
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        "-m",
        "csml",
        "train",
        "trainer=ddp_cpu",
        f"hydra.run.dir={run_dir}",
        f"paths.run_dir={tmp_path / 'runs'}",
        "tracking.register=false",
        *smoke_overrides,
        "data.eval_batch_size=48",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output  # Lightning joined both processes to one gloo group

    client = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("csml-train")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1  # rank 1 opened no run of its own
    run = runs[0]
    assert 0.0 <= run.data.metrics["test/accuracy"] <= 1.0
    assert run.data.params["trainer.strategy.process_group_backend"] == '"gloo"'
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert len(history) == 2  # two optimiser steps, each on both processes' shards
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "evaluation" / "test_predictions.jsonl").is_file()
