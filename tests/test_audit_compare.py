"""``csml audit compare``: paired tests between two audits, flipped verdicts, exit status on regressions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from csml.audit.compare import AuditRun, compare, holm, paired_permutation_p
from csml.audit.errors import AuditConfigError
from csml.config import compose

SUITE = Path(__file__).resolve().parents[1] / "audits" / "kestrel_support"


def test_paired_permutation_p_value() -> None:
    assert paired_permutation_p(np.zeros(50)) == 1.0
    assert paired_permutation_p(np.array([-1.0] * 12 + [0.0] * 38)) < 0.001
    balanced = np.array([-1.0] * 6 + [1.0] * 6 + [0.0] * 38)
    assert paired_permutation_p(balanced) > 0.5


def test_holm_adjusts_the_smallest_p_most() -> None:
    assert holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})
    assert holm({"a": 0.5, "b": 0.9}) == {"a": 1.0, "b": 1.0}


def run(
    where: str, values: dict[str, dict[str, float | None]], threshold: float | None = 0.9, suite: str = "s"
) -> AuditRun:
    names = {name for v in values.values() for name in v}
    metrics = {
        name: {
            "value": float(np.mean([v[name] for v in values.values() if v[name] is not None])),
            "threshold": threshold if name == "abstention" else None,
            "direction": "higher",
        }
        for name in names
    }
    scorecard = {"suite": {"name": suite, "sha256": "x"}, "metrics": metrics, "target": {"name": "bot"}}
    return AuditRun(where, scorecard, values, {k: f"question {k}" for k in values})


def test_compare_flags_a_gated_regression_and_lists_flipped_questions() -> None:
    before = run("a", {f"q{i}": {"abstention": 1.0, "answer_correctness": 0.5} for i in range(40)})
    after = run(
        "b",
        {f"q{i}": {"abstention": 0.0 if i < 12 else 1.0, "answer_correctness": 0.5} for i in range(40)},
    )
    result = compare(before, after)
    abstention = result["metrics"]["abstention"]
    assert abstention["delta"] == pytest.approx(-0.3) and abstention["p_value"] < 0.001
    assert abstention["regression"] and result["gated_regressions"] == ["abstention"] and not result["passed"]
    assert result["metrics"]["answer_correctness"]["p_value"] == 1.0
    assert {f["id"] for f in result["flips"]} == {f"q{i}" for i in range(12)}
    assert all(f["flip"] == "broken" and f["metric"] == "abstention" for f in result["flips"])
    reverse = compare(after, before)
    assert reverse["passed"] and reverse["metrics"]["abstention"]["improvement"]
    ungated = compare(run("a", before.values, threshold=None), run("b", after.values, threshold=None))
    assert ungated["regressions"] == ["abstention"] and ungated["passed"]
    with pytest.raises(AuditConfigError, match="different suites"):
        compare(before, run("c", after.values, suite="other"))


def test_audit_compare_command_on_real_audits(tmp_path: Path, smoke_judge: Path) -> None:
    from csml.audit.run import audit
    from csml.bot.server import BackgroundServer
    from csml.cli import main
    from csml.devtools.faulty_bot import FaultyBot, create_app

    tracking = [
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"tracking.artifact_location={tmp_path}/artifacts",
    ]

    def audit_of(rate: float, name: str) -> tuple[Path, str]:
        with BackgroundServer(create_app(FaultyBot(corrupt_rate=rate, seed=0))) as server:
            cfg = compose(
                "audit",
                [f"paths.run_dir={tmp_path}/runs", f"paths.output_dir={tmp_path / name}", "target=openai_chat",
                 f"target.url={server.url}", "target.rate_limit_per_s=null", f"suite={SUITE}", "limit=40",
                 "progress=false", "cache_dir=null", *tracking, f"groundedness_judge.model_uri={smoke_judge}"],
            )  # fmt: skip
            scorecard, _ = audit(cfg)
        return tmp_path / name, scorecard["mlflow_run_id"]

    (clean, _), (corrupted, corrupted_run) = audit_of(0.0, "clean"), audit_of(1.0, "corrupted")

    def compare_cli(a: Path | str, b: Path | str, name: str) -> int:
        try:
            main(["audit", "compare", f"a={a}", f"b={b}", f"paths.run_dir={tmp_path}/runs",
                  f"hydra.run.dir={tmp_path / name}", *tracking])  # fmt: skip
        except SystemExit as exit_:
            return int(exit_.code or 0)
        return 0

    assert compare_cli(clean, f"runs:/{corrupted_run}", "worse") == 1  # a folder and an MLflow run
    result = json.loads((tmp_path / "worse" / "compare.json").read_text())
    fabricated = result["metrics"]["fabricated_entities"]
    assert fabricated["regression"] and fabricated["p_value"] < 0.05 and fabricated["delta"] > 0
    assert any(f["metric"] == "fabricated_entities" and f["flip"] == "broken" for f in result["flips"])
    assert "REGRESSION" in (tmp_path / "worse" / "compare.html").read_text()
    assert compare_cli(clean, clean, "same") == 0
    assert compare_cli(corrupted, corrupted_run, "own-run") == 0  # the run's artifacts are the folder's audit
    assert compare_cli(clean, tmp_path / "nothing", "missing") == 2
    assert compare_cli(clean, "0" * 32, "no-such-run") == 2
