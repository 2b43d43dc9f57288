"""``csml audit compare``: did the new bot version get worse? Two audits of one suite, metric by metric.

    csml audit compare a=runs/audit/<before> b=runs/audit/<after>
    csml audit compare a=<mlflow run id> b=runs:/<mlflow run id>      # audits logged to MLflow

Each audit is a folder written by ``csml audit`` (``scorecard.json``, ``samples.jsonl``) or an MLflow run
of one. For every metric of both scorecards: the values, their difference (b - a), and a **paired
permutation test** over the questions both audits scored -- the per-question differences' signs are flipped
at random ``permutations`` times (seeded), and the p-value is the share of draws whose mean difference is at
least as far from zero as the one observed (two-sided, with the +1 correction). Metrics that are not a mean
of per-question values (latency percentiles, macro-F1) get their difference without a test.
A **regression** is a difference in the metric's worse direction that is significant: for the metrics gated
in ``b``'s suite, whose regressions decide the exit status, p-values are Holm-Bonferroni adjusted across them
(``p_holm``) so that an unchanged bot fails the comparison with probability at most ``alpha``; other metrics
are reported at their own p. **Flips** are the questions whose verdict changed for metrics with per-question verdicts
(values 0 or 1, and groundedness' "every claim supported" = 1): passing in a, failing in b, or the reverse.

Writes ``compare.json``, ``compare.md`` (printed) and ``compare.html`` into the output folder.
Exit status: 0 no significant regression of a gated metric, 1 one at least, 2 misconfigured (a missing
audit, different suites).
"""

from __future__ import annotations

import html
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from csml.audit.errors import AuditConfigError

log = logging.getLogger(__name__)
RUN_ID = re.compile(r"(?:runs:/)?([0-9a-f]{32})/?")


@dataclass(frozen=True)
class AuditRun:
    """An audit's scorecard and its per-question scores (``{sample id: {metric: value}}``)."""

    where: str
    scorecard: dict[str, Any]
    values: dict[str, dict[str, float | None]]
    questions: dict[str, str]


def load_audit(where: str, tracking: DictConfig | None = None) -> AuditRun:
    """An audit folder, or the MLflow run id (``<id>`` or ``runs:/<id>``) of one.

    Raises:
        AuditConfigError: Nothing there, or not an audit.
    """
    folder = Path(where)
    if not folder.is_dir() and (found := RUN_ID.fullmatch(where)):
        folder = _download(found.group(1), tracking)
    scorecard_path, samples_path = folder / "scorecard.json", folder / "samples.jsonl"
    if not scorecard_path.is_file() or not samples_path.is_file():
        raise AuditConfigError(
            f"{where}: not an audit (expected a folder written by csml audit, with scorecard.json and "
            "samples.jsonl, or the MLflow run id of one)"
        )
    values, questions = {}, {}
    for line in samples_path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        values[row["id"]] = {name: score.get("value") for name, score in row["scores"].items()}
        questions[row["id"]] = row.get("question", "")
    return AuditRun(where, json.loads(scorecard_path.read_text(encoding="utf-8")), values, questions)


def _download(run_id: str, tracking: DictConfig | None) -> Path:
    import mlflow
    from mlflow.exceptions import MlflowException

    from csml.tracking.runs import use_store

    if tracking is not None:
        use_store(tracking.uri, tracking.get("registry_uri"))
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="audit"))
    except (MlflowException, OSError) as error:
        raise AuditConfigError(f"MLflow run {run_id}: no audit artifacts ({error})") from None


def paired_permutation_p(differences: np.ndarray, permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of a zero mean of paired ``differences`` under random sign flips."""
    if not len(differences) or not np.any(differences):
        return 1.0
    observed = abs(differences.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(permutations, len(differences)))
    means = np.abs((signs * differences).mean(axis=1))
    return float((1 + np.sum(means >= observed - 1e-12)) / (permutations + 1))


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values: with the adjusted values compared with alpha, the chance that any of
    the metrics is called different when none is stays at most alpha."""
    ordered = sorted(p_values, key=lambda n: p_values[n])
    adjusted, running = {}, 0.0
    for rank, name in enumerate(ordered):
        running = max(running, min(1.0, (len(ordered) - rank) * p_values[name]))
        adjusted[name] = running
    return adjusted


def _is_mean(name: str) -> bool:
    from csml.audit.metrics import METRICS
    from csml.registry import UnknownNameError

    try:
        return METRICS[name].averages_values()
    except UnknownNameError:  # a metric of a plugin no longer installed: no test
        return False


def _verdict(name: str, value: float | None, direction: str) -> bool | None:
    """Per-question verdict of metrics that have one: values 0/1 (groundedness: 1 = every claim supported)."""
    if value is None:
        return None
    if name == "groundedness" or value in (0.0, 1.0):
        return value == 1.0 if direction == "higher" else value == 0.0
    return None


def compare(
    a: AuditRun, b: AuditRun, alpha: float = 0.05, permutations: int = 10000, seed: int = 0
) -> dict[str, Any]:
    """The comparison of audit ``b`` with audit ``a`` (see the module docstring)."""
    suite_a, suite_b = a.scorecard["suite"], b.scorecard["suite"]
    if suite_a["name"] != suite_b["name"]:
        raise AuditConfigError(
            f"different suites: {a.where} is {suite_a['name']!r}, {b.where} is {suite_b['name']!r}"
        )
    shared = sorted(set(a.values) & set(b.values))
    metrics, flips = {}, []
    for name in [m for m in b.scorecard["metrics"] if m in a.scorecard["metrics"]]:
        entry_a, entry_b = a.scorecard["metrics"][name], b.scorecard["metrics"][name]
        direction = entry_b.get("direction") or "higher"
        paired = [(a.values[i].get(name), b.values[i].get(name), i) for i in shared]
        paired = [(x, y, i) for x, y, i in paired if x is not None and y is not None]
        delta = None
        if entry_a["value"] is not None and entry_b["value"] is not None:
            delta = entry_b["value"] - entry_a["value"]
        p_value = None
        if _is_mean(name) and paired:
            p_value = paired_permutation_p(
                np.array([y - x for x, y, _ in paired], dtype=float), permutations, seed
            )
        metrics[name] = {
            "a": entry_a["value"],
            "b": entry_b["value"],
            "delta": delta,
            "paired_questions": len(paired),
            "p_value": p_value,
            "p_holm": None,
            "direction": direction,
            "gated": entry_b.get("threshold") is not None,
        }
        for x, y, sample_id in paired:
            before, after = _verdict(name, x, direction), _verdict(name, y, direction)
            if before is not None and after is not None and before != after:
                flips.append(
                    {"id": sample_id, "metric": name, "a": x, "b": y, "flip": "fixed" if after else "broken",
                     "question": b.questions.get(sample_id, "")}
                )  # fmt: skip
    gated_tests = {n: m["p_value"] for n, m in metrics.items() if m["gated"] and m["p_value"] is not None}
    for n, p_holm in holm(gated_tests).items():
        metrics[n]["p_holm"] = p_holm
    for m in metrics.values():
        p_value = m["p_holm"] if m["gated"] else m["p_value"]
        significant = p_value is not None and p_value < alpha
        worse = m["delta"] is not None and (m["delta"] < 0 if m["direction"] == "higher" else m["delta"] > 0)
        m["regression"] = bool(worse and significant)
        m["improvement"] = bool(m["delta"] and not worse and significant)
    gated_regressions = [n for n, m in metrics.items() if m["regression"] and m["gated"]]
    return {
        "suite": suite_b["name"],
        "same_questions": suite_a.get("sha256") == suite_b.get("sha256"),
        "a": {"where": a.where, "target": a.scorecard.get("target"), "questions": len(a.values)},
        "b": {"where": b.where, "target": b.scorecard.get("target"), "questions": len(b.values)},
        "shared_questions": len(shared),
        "alpha": alpha,
        "permutations": permutations,
        "metrics": metrics,
        "flips": flips,
        "regressions": [n for n, m in metrics.items() if m["regression"]],
        "gated_regressions": gated_regressions,
        "passed": not gated_regressions,
    }


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _p(p: float | None) -> str:
    return "–" if p is None else f"{p:.4f}"


def _status(m: dict[str, Any]) -> str:
    if m["regression"]:
        return "REGRESSION" + (" (gated)" if m["gated"] else "")
    return "improved" if m["improvement"] else "no significant change"


def markdown(result: dict[str, Any]) -> str:
    """The comparison as Markdown: a metric table, then the flipped questions."""
    lines = [
        f"# Audit comparison: {result['suite']} -- {'no gated regression' if result['passed'] else 'REGRESSION'}",
        "",
        f"a: `{result['a']['where']}`  b: `{result['b']['where']}`  ({result['shared_questions']} questions in both; "
        f"paired permutation test, alpha {result['alpha']})",
        "",
        "| metric | a | b | b - a | p | p (Holm, gated) | |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in result["metrics"].items():
        lines.append(
            f"| {name} | {_fmt(m['a'])} | {_fmt(m['b'])} | {_fmt(m['delta'], True)} | {_p(m['p_value'])} "
            f"| {_p(m['p_holm'])} | {_status(m)} |"
        )
    if not result["same_questions"]:
        lines += ["", "Note: the suites' questions differ (sha256); only questions in both are paired."]
    broken = [f for f in result["flips"] if f["flip"] == "broken"]
    fixed = [f for f in result["flips"] if f["flip"] == "fixed"]
    lines += ["", f"{len(broken)} verdicts broken, {len(fixed)} fixed."]
    for flip in broken[:20]:
        lines.append(
            f"- broken `{flip['id']}` {flip['metric']} {flip['a']:.2f} -> {flip['b']:.2f}: {flip['question'][:100]}"
        )
    return "\n".join(lines) + "\n"


def html_report(result: dict[str, Any]) -> str:
    """A self-contained HTML diff of the two audits."""
    e = html.escape
    rows = "".join(
        f"<tr class='{'bad' if m['regression'] else 'good' if m['improvement'] else ''}'><td>{e(n)}</td>"
        f"<td>{_fmt(m['a'])}</td><td>{_fmt(m['b'])}</td><td>{_fmt(m['delta'], True)}</td>"
        f"<td>{_p(m['p_value'])}</td><td>{_p(m['p_holm'])}</td><td>{e(_status(m))}</td></tr>"
        for n, m in result["metrics"].items()
    )
    flips = "".join(
        f"<tr class='{'bad' if f['flip'] == 'broken' else 'good'}'><td>{e(f['flip'])}</td><td>{e(f['id'])}</td>"
        f"<td>{e(f['metric'])}</td><td>{f['a']:.2f} → {f['b']:.2f}</td><td>{e(f['question'])}</td></tr>"
        for f in sorted(result["flips"], key=lambda f: (f["flip"] != "broken", f["metric"], f["id"]))
    )
    verdict = "no gated regression" if result["passed"] else "REGRESSION"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>csml audit compare {e(result["suite"])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}.bad{{background:#fdecea}}.good{{background:#e9f7ef}}</style>
</head><body><h1>{e(result["suite"])}: {verdict}</h1>
<p>a: <code>{e(result["a"]["where"])}</code><br>b: <code>{e(result["b"]["where"])}</code><br>
{result["shared_questions"]} questions in both; paired permutation test ({result["permutations"]} sign flips), alpha {result["alpha"]}</p>
<table><tr><th>metric</th><th>a</th><th>b</th><th>b − a</th><th>p</th><th>p (Holm, gated)</th><th></th></tr>{rows}</table>
<h2>Flipped verdicts ({len(result["flips"])})</h2>
<table><tr><th></th><th>id</th><th>metric</th><th>a → b</th><th>question</th></tr>{flips}</table></body></html>
"""


def compare_command(cfg: DictConfig) -> None:
    """The ``csml audit compare`` entry point (``conf/audit_compare.yaml``)."""
    try:
        a, b = (load_audit(str(cfg[key]), cfg.get("tracking")) for key in ("a", "b"))
        result = compare(a, b, float(cfg.alpha), int(cfg.permutations), int(cfg.seed))
    except AuditConfigError as error:
        log.error("%s", error)
        sys.exit(2)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    summary = markdown(result)
    (out / "compare.md").write_text(summary, encoding="utf-8")
    (out / "compare.html").write_text(html_report(result), encoding="utf-8")
    print(summary)
    print(f"report: {out / 'compare.html'}")
    if not result["passed"]:
        sys.exit(1)
