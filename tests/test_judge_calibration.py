"""Calibrating the groundedness judge on labelled replies: the file, the threshold, the JSON, the command,
audits applying it, and the sample-size benchmark's resampling (a fake judge: no model is trained)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from csml.config import compose, project_root
from csml.data.splits import DataValidationError
from csml.judge.calibration import (
    Calibration,
    balanced_accuracy_at,
    calibrate,
    choose_threshold,
    read_labelled_replies,
)
from csml.judge.judge import Verdict

# 10 grounded and 10 not: the best thresholds are (0.3, 0.7] (balanced accuracy 0.9), one mistake per class.
NOT_GROUNDED = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.3, 0.3, 0.3, 0.8]
GROUNDED = [0.7, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.0, 0.2]


class FakeJudge:
    """Stands in for GroundednessJudge: each reply's answer score is looked up in ``scores`` (None = no
    checkable claim), ``threshold`` as the judge's own."""

    def __init__(self, scores: dict[str, float | None], threshold: float = 0.5) -> None:
        self.scores, self.threshold = scores, threshold
        self.contexts: list[list[str]] = []

    def judge_many(self, answers: Sequence[str], contexts: Sequence[Sequence[str]]) -> list[Verdict]:
        self.contexts = [list(c) for c in contexts]
        scores = [self.scores[a] for a in answers]
        return [Verdict(s, None if s is None else s >= self.threshold) for s in scores]


def labelled_rows() -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """The rows above plus one grounded reply without a checkable claim, and the fake judge's scores."""
    rows, scores = [], {}
    for i, (score, label) in enumerate([(s, "no") for s in NOT_GROUNDED] + [(s, "yes") for s in GROUNDED]):
        reply = f"reply {i}"
        rows.append({"reply": reply, "knowledge": [f"passage {i}"], "grounded": label})
        scores[reply] = score
    rows.append({"reply": "Hello!", "knowledge": "a passage", "grounded": "yes"})
    scores["Hello!"] = None
    return rows, scores


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_labelled_file_accepts_label_spellings_alias_and_knowledge_string(tmp_path: Path) -> None:
    rows, _ = labelled_rows()
    spellings = ["yes", "No", True, False, 1, 0, "true", "FALSE", " 1 ", "0"]
    for row, label in zip(rows, spellings, strict=False):
        row["grounded"] = label
    rows[0] = {"answer": rows[0]["reply"], "knowledge": "one passage", "grounded": "yes"}
    path = write_jsonl(tmp_path / "labels.jsonl", rows)
    data = read_labelled_replies(path)
    assert data.grounded[:10] == [True, False, True, False, True, False, True, False, True, False]
    assert data.replies[0] == "reply 0" and data.knowledge[0] == ["one passage"]
    assert len(data.replies) == 21 and data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_non_utf8_file_names_file_row_and_byte(tmp_path: Path) -> None:
    rows, _ = labelled_rows()
    path = tmp_path / "labels.jsonl"
    lines = [json.dumps(r).encode() for r in rows]
    lines[2] = lines[2].replace(b"reply 2", b"r\xe9ply 2")  # Latin-1 é
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataValidationError) as error:
        read_labelled_replies(path)
    assert error.value.file == str(path) and error.value.row == 3
    offset = len(lines[0]) + len(lines[1]) + 2 + lines[2].index(b"\xe9")
    assert f"at byte {offset}" in error.value.found


@pytest.mark.parametrize(
    ("change", "field", "found"),
    [
        ({"grounded": "maybe"}, "grounded", "'maybe'"),
        ({"grounded": 2}, "grounded", "2"),
        ({"grounded": None}, "grounded", "None"),
        ({"knowledge": []}, "knowledge", "[]"),
        ({"knowledge": ["  "]}, "knowledge", "['  ']"),
        ({"reply": ""}, "reply", "''"),
    ],
)
def test_bad_rows_name_row_field_and_value(
    tmp_path: Path, change: dict[str, Any], field: str, found: str
) -> None:
    rows, _ = labelled_rows()
    rows[4].update(change)
    with pytest.raises(DataValidationError) as error:
        read_labelled_replies(write_jsonl(tmp_path / "labels.jsonl", rows))
    assert (error.value.row, error.value.field, error.value.found) == (5, field, found)


@pytest.mark.parametrize("missing", ["reply", "knowledge", "grounded"])
def test_missing_field_is_named(tmp_path: Path, missing: str) -> None:
    rows, _ = labelled_rows()
    del rows[6][missing]
    with pytest.raises(DataValidationError) as error:
        read_labelled_replies(write_jsonl(tmp_path / "labels.jsonl", rows))
    assert (error.value.row, error.value.field) == (7, missing)


def test_bad_json_one_class_and_too_few_rows_are_refused(tmp_path: Path) -> None:
    rows, _ = labelled_rows()
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + "{reply: 1}\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="unparseable JSON") as bad_json:
        read_labelled_replies(path)
    assert bad_json.value.row == 4
    one_class = [{**r, "grounded": "yes"} for r in rows]
    with pytest.raises(DataValidationError, match="only one class") as single:
        read_labelled_replies(write_jsonl(path, one_class))
    assert single.value.found == "21 rows, all grounded"
    with pytest.raises(DataValidationError, match="too few labelled replies") as few:
        read_labelled_replies(write_jsonl(path, rows[:19]))
    assert few.value.found == "19 rows"


def test_threshold_is_the_middle_of_the_best_interval_and_a_score_at_it_counts_as_supported() -> None:
    rows, scores = labelled_rows()
    replies, knowledge = [r["reply"] for r in rows], [r["knowledge"] for r in rows]
    labels = [r["grounded"] for r in rows]
    calibration = calibrate(
        FakeJudge(scores, threshold=0.7), replies, knowledge, labels, model_uri="models:/j/1"
    )
    assert calibration.threshold == pytest.approx(0.5) and calibration.threshold_interval == (0.3, 0.7)
    assert calibration.balanced_accuracy == pytest.approx(0.9)
    assert (calibration.n, calibration.n_supported, calibration.n_unsupported, calibration.n_unscored) == (
        20, 10, 10, 1,
    )  # fmt: skip
    # The previous threshold sits exactly on two grounded replies' score: ">=" keeps them supported ...
    assert calibration.previous_threshold == 0.7 and calibration.previous_balanced_accuracy == pytest.approx(
        0.9
    )
    # ... and just above it they are lost: recall 7/10 on grounded, 9/10 on not grounded.
    above = calibrate(FakeJudge(scores, threshold=0.7 + 1e-9), replies, knowledge, labels)
    assert above.threshold == calibration.threshold
    assert above.previous_balanced_accuracy == pytest.approx(0.8)
    low, high = calibration.balanced_accuracy_ci
    assert 0.6 < low < 0.9 < high <= 1.0
    assert calibration.model_uri == "models:/j/1"


def test_ties_take_the_widest_best_interval_then_the_lowest() -> None:
    positive = np.array([False, True, False, True])
    assert choose_threshold(np.array([0.1, 0.3, 0.5, 0.9]), positive)[:2] == (pytest.approx(0.7), 0.75)
    assert choose_threshold(np.array([0.1, 0.3, 0.5, 0.7]), positive)[0] == pytest.approx(0.2)
    # Replies quoted verbatim score 1.0: the best cut lies between the top not-grounded score and 1.0.
    threshold, accuracy, _ = choose_threshold(
        np.array([0.2, 0.9, 1.0, 1.0]), np.array([False, False, True, True])
    )
    assert (threshold, accuracy) == (pytest.approx(0.95), 1.0)


def test_chosen_threshold_reaches_the_best_balanced_accuracy_of_any_threshold() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        positive = rng.random(40) < 0.4
        positive[:2] = [True, False]
        scores = np.round(np.clip(rng.normal(0.35 + 0.3 * positive, 0.2), 0, 1), 1)  # many ties
        threshold, accuracy, (low, high) = choose_threshold(scores, positive)
        candidates = np.r_[np.unique(scores), np.unique(scores) + 1e-6, 1.01]
        best = max(balanced_accuracy_at(scores, positive, t) for t in candidates)
        assert (
            balanced_accuracy_at(scores, positive, threshold)
            == pytest.approx(best)
            == pytest.approx(accuracy)
        )
        assert low < threshold <= high or low == threshold == 0.0


def test_calibration_json_round_trip_and_bad_files(tmp_path: Path) -> None:
    rows, scores = labelled_rows()
    path = write_jsonl(tmp_path / "labels.jsonl", rows)
    from csml.judge.calibration import calibrate_file

    calibration = calibrate_file(FakeJudge(scores), path, str(tmp_path), int8=True)
    saved = calibration.save(tmp_path / "out" / "calibration.json")
    assert Calibration.load(saved) == calibration
    data = json.loads(saved.read_text())
    assert data["labels_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data["model_uri"] == str(tmp_path.resolve()) and data["int8"] is True
    assert data["balanced_accuracy_ci"] == list(calibration.balanced_accuracy_ci)
    del data["threshold"]
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(DataValidationError, match="fields missing"):
        Calibration.load(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="csml calibrate-judge"):
        Calibration.load(tmp_path / "absent.json")


def test_too_few_scored_replies_are_refused_after_leaving_out_unscored_ones() -> None:
    rows, scores = labelled_rows()
    scores.update({"reply 0": None, "reply 1": None})
    replies = [r["reply"] for r in rows]
    with pytest.raises(DataValidationError, match="too few replies with a checkable claim") as error:
        calibrate(FakeJudge(scores), replies, [r["knowledge"] for r in rows], [r["grounded"] for r in rows])
    assert error.value.found == "18 of 21 (the others have no checkable claim)"


@pytest.fixture
def fake_judge_load(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replaces ``GroundednessJudge.load`` with one returning a FakeJudge; returns the calls' arguments."""
    from csml.judge.judge import GroundednessJudge

    calls: list[dict[str, Any]] = []
    _, scores = labelled_rows()

    def load(model_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None, **kwargs: Any):
        calls.append({"model_uri": model_uri, "tracking_uri": tracking_uri, **kwargs})
        threshold = kwargs.get("threshold")
        return FakeJudge(scores, 0.7 if threshold is None else threshold)

    monkeypatch.setattr(GroundednessJudge, "load", staticmethod(load))
    return calls


def test_audit_judge_takes_the_calibrated_threshold_and_reports_its_origin(
    tmp_path: Path, fake_judge_load: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    from csml.audit.errors import AuditConfigError
    from csml.audit.run import _groundedness_judge
    from csml.audit.scorecard import html_report, markdown_summary

    path = Calibration(0.42, 0.9, (0.8, 0.97), 0.7, 0.8, 60, 25, 35, 2, (0.3, 0.55), "models:/other/3").save(
        tmp_path / "cal.json"
    )
    spec = OmegaConf.create({"model_uri": "models:/judge/1", "threshold": None, "calibration": str(path)})
    with caplog.at_level(logging.WARNING, logger="csml.audit.run"):
        judge, info = _groundedness_judge(spec, None)
    assert fake_judge_load[-1]["threshold"] == 0.42 and judge.threshold == 0.42
    assert "was made for judge models:/other/3, but the audit uses models:/judge/1" in caplog.text
    assert info["threshold_origin"] == "calibration" and info["threshold"] == 0.42
    assert info["calibration"]["path"] == str(path) and info["calibration"]["n"] == 60
    assert info["calibration"]["same_model"] is False

    scorecard = {
        "passed": True,
        "suite": {"name": "rag_abcd", "version": 1},
        "target": {"name": "bot"},
        "metrics": {},
        "counts": {"samples": 0, "errors": 0, "errors_by_kind": {}, "cached": 0},
        "environment": {"git_commit": "abc", "csml_version": "0.1.0", "time": "now"},
        "groundedness_judge": info,
    }
    expected = f"Groundedness judge threshold 0.42 from calibration file {path} (n 60: 25 grounded, 35 not"
    assert expected in markdown_summary(scorecard)
    assert expected in html_report(scorecard, []) and "balanced accuracy 0.900, 95% interval 0.800-0.970" in (
        html_report(scorecard, [])
    )

    _, card = _groundedness_judge(OmegaConf.create({"model_uri": "https://me:s3cret@host/judge"}), None)
    assert (card["threshold"], card["threshold_origin"], card["calibration"]) == (0.7, "model card", None)
    assert card["model_uri"] == "https://***@host/judge"  # no credentials in reports
    with pytest.raises(AuditConfigError, match="threshold or calibration, not both"):
        _groundedness_judge(OmegaConf.create({**spec, "threshold": 0.5}), None)
    with pytest.raises(AuditConfigError, match="no judge calibration at"):
        _groundedness_judge(OmegaConf.create({**spec, "calibration": str(tmp_path / "nope.json")}), None)


def test_calibrate_judge_config_mirrors_the_audit_judge_settings(tmp_path: Path) -> None:
    cfg = compose("calibrate_judge", ["labels=x.jsonl", f"paths.output_dir={tmp_path}"])
    audit = compose("audit")
    assert set(cfg.judge) == set(audit.groundedness_judge) - {"calibration"}
    assert cfg.judge.model_uri == audit.groundedness_judge.model_uri
    assert cfg.output == f"{tmp_path}/judge_calibration.json" and audit.groundedness_judge.calibration is None


def test_calibrate_judge_command_writes_calibration_and_mlflow_run(
    tmp_path: Path, fake_judge_load: list[dict[str, Any]], capsys: pytest.CaptureFixture
) -> None:
    import mlflow

    from csml.cli import main

    rows, _ = labelled_rows()
    labels = write_jsonl(tmp_path / "labels.jsonl", rows)
    base = [
        f"paths.run_dir={tmp_path}/runs",
        f"hydra.run.dir={tmp_path}/out",
        "judge.model_uri=models:/judge/2",
    ]
    db = f"sqlite:///{tmp_path}/mlflow.db"
    main(["calibrate-judge", f"labels={labels}", *base, f"tracking.uri={db}",
          f"tracking.artifact_location={tmp_path}/artifacts"])  # fmt: skip
    printed = capsys.readouterr().out
    assert re.search(r"calibrated +0\.5000 +0\.900 +\[", printed) and re.search(
        r"previous +0\.7000 +0\.900", printed
    )
    saved = Calibration.load(tmp_path / "out" / "judge_calibration.json")
    assert (saved.threshold, saved.model_uri, saved.labels_file) == (
        pytest.approx(0.5),
        "models:/judge/2",
        str(labels),
    )
    run_id = json.loads((tmp_path / "out" / "mlflow_run.json").read_text())["run_id"]
    run = mlflow.MlflowClient(db).get_run(run_id)
    assert run.data.metrics["calibration/threshold"] == pytest.approx(0.5)
    assert run.data.metrics["calibration/balanced_accuracy"] == pytest.approx(0.9)
    assert (
        run.data.params["calibration.model_uri"] == "models:/judge/2"
        and run.data.params["calibration.n"] == "20"
    )
    artifacts = [a.path for a in mlflow.MlflowClient(db).list_artifacts(run_id, "calibration")]
    assert artifacts == ["calibration/judge_calibration.json"]

    bad = write_jsonl(tmp_path / "bad.jsonl", [{**rows[0], "grounded": "perhaps"}, *rows[1:]])
    calls = len(fake_judge_load)
    with pytest.raises(SystemExit) as exit_:
        main(["calibrate-judge", f"labels={bad}", *base, "~tracking"])
    assert exit_.value.code == 2 and len(fake_judge_load) == calls  # refused before loading the judge


def load_benchmark() -> Any:
    path = project_root() / "benchmarks" / "judge_calibration_labels.py"
    spec = importlib.util.spec_from_file_location("judge_calibration_labels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_resampling_measures_regret_of_calibrated_and_shipped_thresholds() -> None:
    resampling_regret = load_benchmark().resampling_regret
    rng = np.random.default_rng(0)
    positive = rng.random(600) < 0.4
    separable = np.where(positive, rng.uniform(0.7, 1.0, 600), rng.uniform(0.0, 0.3, 600))
    results = resampling_regret(separable, positive, shipped_threshold=0.9, sizes=(25, 100), draws=30)
    for n in (25, 100):
        assert results[n]["calibrated"] == {"median": 0.0, "p10": 0.0, "p90": 0.0, "within": 1.0}
        assert results[n]["shipped"]["median"] > 0.1 and results[n]["shipped"]["within"] == 0.0
    noisy = np.clip(rng.normal(0.4 + 0.25 * positive, 0.2), 0, 1)
    first = resampling_regret(noisy, positive, 0.5, sizes=(25, 200), draws=60, seed=1)
    assert first == resampling_regret(noisy, positive, 0.5, sizes=(25, 200), draws=60, seed=1)
    assert first[200]["calibrated"]["median"] < first[25]["calibrated"]["median"]
    assert all(first[n]["calibrated"]["p10"] >= 0.0 for n in first)
    with pytest.raises(ValueError, match="leaves too few"):
        resampling_regret(noisy, positive, 0.5, sizes=(600,), draws=1)


def test_benchmark_reads_begin_labels(tmp_path: Path) -> None:
    header = "model_name\tdata_source\tknowledge\tmessage\tresponse\tbegin_label"
    lines = [header, "m\twow\tK1\thi\tR1\tFully attributable", "m\twow\tK2\thi\tR2\tGeneric",
             "m\twow\tK3\thi\tR3\tNot fully attributable"]  # fmt: skip
    (tmp_path / "begin.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    replies, knowledge, grounded = load_benchmark().read_begin(str(tmp_path / "begin.tsv"))
    assert (replies, knowledge, grounded) == (
        ["R1", "R2", "R3"],
        [["K1"], ["K2"], ["K3"]],
        [True, False, False],
    )
