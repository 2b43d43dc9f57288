"""Optuna sweeps over `csml train`: search spaces, pruning, resuming, the best experiment file, and two worker
processes sharing one study in a real local PostgreSQL (with the MLflow server of the team stack)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow import MlflowClient

from csml.config import compose
from csml.sweep.export import experiment_yaml
from csml.sweep.space import SearchSpaceError, parse_space, to_overrides

TINY = (
    "experiment=intent_banking77",
    "hparams_search=optuna",
    "data.source.limit=48",
    "data.batch_size=8",
    "data.eval_batch_size=48",
    "trainer.limit_train_batches=1",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"type": "uniform", "low": 0, "high": 1},
            r"\['model.dropout'\]: unknown type 'uniform'; expected one of",
        ),
        ({"type": "float", "low": 0.3, "high": 0.1}, r"\['model.dropout'\]: expected low < high"),
        ({"type": "float", "low": 0.0, "high": 0.1, "log": True}, r"log: true needs low > 0"),
        ({"type": "categorical", "choices": []}, r"needs a non-empty list 'choices'"),
        ({"type": "int", "low": 1, "hi": 4}, r"unknown fields \['hi'\]"),
        (0.1, r"\['model.dropout'\]: expected a mapping with a 'type'"),
    ],
)
def test_search_space_errors_name_the_key_and_what_was_expected(entry, message) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        parse_space({"model.dropout": entry})


def test_search_space_parses_and_renders_overrides() -> None:
    params = parse_space(compose("train", ["hparams_search=optuna"]).hparams_search.search_space)
    assert [p.type for p in params] == ["float", "float", "float", "float", "categorical"]
    assert params[0].log and params[4].choices == (16, 32, 64)
    assert to_overrides({"model.optimizer.lr": 3e-5, "model.pooling": "cls", "model.lora": None}) == [
        "model.optimizer.lr=3e-05",
        "model.pooling='cls'",
        "model.lora=null",
    ]


def test_trials_drop_sweep_owned_overrides_and_parent_params_mask_secrets() -> None:
    from csml.sweep.run import _redact_override, trial_base_overrides

    overrides = [
        "experiment=x",
        "hparams_search.n_trials=3",
        "paths.output_dir=/o",
        "run_name=a",
        "~callbacks.lr_monitor",
    ]
    assert trial_base_overrides(overrides) == ["experiment=x", "~callbacks.lr_monitor"]
    assert _redact_override("+target.api_key=abc") == "+target.api_key=***"
    assert _redact_override("model.optimizer.lr=0.1") == "model.optimizer.lr=0.1"


def test_best_experiment_file_composes_to_the_best_values(tmp_path) -> None:
    text = experiment_yaml(
        ["experiment=intent_banking77", "model=minilm_lora", "trainer.max_epochs=2", "paths.run_dir=/x"],
        {"model.optimizer.lr": 4e-5, "data.batch_size": 16},
        ["header"],
    )
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "best.yaml").write_text(text)
    cfg = compose("train", ["experiment=best", f"hydra.searchpath=[file://{tmp_path}]"])
    assert cfg.task_name == "intent_banking77"
    assert cfg.model.lora is not None  # model=minilm_lora kept as a defaults override
    assert (cfg.model.optimizer.lr, cfg.data.batch_size, cfg.trainer.max_epochs) == (4e-5, 16, 2)
    assert "/x" not in text  # machine paths stay out


@pytest.mark.slow  # several real trainings: minutes on 2 CPU cores
def test_sweep_prunes_resumes_and_exports_the_best_config(tmp_path) -> None:
    from csml.sweep.run import sweep

    base = [*TINY, f"paths.run_dir={tmp_path / 'runs'}", "trainer.max_epochs=2"]
    first = sweep([*base, "hparams_search.n_trials=2", "hparams_search.pruning.enabled=false"])
    assert (first.complete, first.pruned, first.trial_epochs) == (2, 0, 4)
    assert first.trials_run_here == [0, 1]

    # Re-running continues the same study; this pruner stops every trial at its first report.
    resumed = sweep(
        [
            *base,
            "hparams_search.n_trials=3",
            "~hparams_search.pruning.pruner",
            "+hparams_search.pruning.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 2.0}",
        ]
    )
    assert resumed.trials_run_here == [2]
    assert (resumed.complete, resumed.pruned, resumed.trial_epochs) == (2, 1, 5)
    assert resumed.parent_run_id == first.parent_run_id

    client = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    parent = client.get_run(first.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    by_trial = {run.data.tags["csml.sweep.trial"]: run for run in children}
    assert sorted(by_trial) == ["0", "1", "2"]
    assert by_trial["2"].info.status == "KILLED" and by_trial["2"].data.tags["csml.sweep.state"] == "pruned"
    assert by_trial["0"].info.status == "FINISHED" and "val/macro_f1" in by_trial["0"].data.metrics
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best/val/macro_f1"] == pytest.approx(resumed.best_value)

    best = resumed.best_experiment.read_text()
    assert best.startswith("# @package _global_") and "- intent_banking77" in best
    assert f"lr: {resumed.best_params['model.optimizer.lr']}" in best


def _postgres_available() -> str | None:
    from csml.team.local_stack import pg_bin

    try:
        pg_bin("initdb")
        import psycopg  # noqa: F401
    except (FileNotFoundError, ImportError) as error:
        return f"needs PostgreSQL binaries and psycopg: {error}"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root needs runuser to start PostgreSQL as the postgres user"
    return None


@pytest.fixture(scope="module")
def team_stack():
    """A real PostgreSQL (databases mlflow and optuna) and an MLflow server on it, on 127.0.0.1."""
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    from csml.team.local_stack import LocalMlflowServer, LocalPostgres

    root = Path(tempfile.mkdtemp(prefix="csml-team-"))  # under /tmp: the postgres user can reach it
    root.chmod(0o755)
    pg = LocalPostgres(root / "postgres", password=secrets.token_urlsafe(16)).start()
    server = None
    try:
        server = LocalMlflowServer(pg.url("mlflow"), root / "mlartifacts", root / "mlflow.log").start()
        yield pg, server
    finally:
        if server:
            server.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow  # a PostgreSQL + MLflow server stack and two training workers: minutes on 2 CPU cores
def test_two_workers_share_a_postgres_study_without_losing_or_repeating_trials(team_stack, tmp_path) -> None:
    import optuna

    pg, server = team_stack
    n_trials = 4
    overrides = [
        *TINY,
        "trainer.max_epochs=1",
        f"hparams_search.n_trials={n_trials}",
        f"hparams_search.storage.url={pg.url('optuna', with_password=False)}",
        "hparams_search.storage.password_env=CSML_TEST_PG_PASSWORD",
        "tracking=server",
    ]
    env = {**os.environ, "CSML_TEST_PG_PASSWORD": pg.password, "MLFLOW_TRACKING_URI": server.url}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "csml", "sweep", *overrides, f"paths.run_dir={tmp_path / f'worker{i}'}"],
            env={**env, "CSML_SWEEP_WORKER": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]

    study = optuna.load_study(study_name="intent_banking77-sweep", storage=pg.url("optuna"))
    finished = [t for t in study.trials if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL]
    assert sorted(t.number for t in finished) == list(range(n_trials))
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    # Every trial ran in exactly one worker's folder, and both workers ran some.
    homes = {t.number: Path(t.user_attrs["output_dir"]).parents[2].name for t in finished}
    assert set(homes.values()) == {"worker0", "worker1"}
    assert len({tuple(sorted(t.params.items())) for t in finished}) == n_trials

    client = MlflowClient(server.url)
    parent_id = study.user_attrs["csml.mlflow_parent_run_id"]
    experiment = client.get_run(parent_id).info.experiment_id
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    assert sorted(int(r.data.tags["csml.sweep.trial"]) for r in children) == list(range(n_trials))
    parents = client.search_runs([experiment], "tags.`csml.sweep.role` = 'study'")
    assert [r.info.run_id for r in parents] == [parent_id]
    for run in [*children, *parents]:
        assert not any(pg.password in value for value in run.data.params.values())
