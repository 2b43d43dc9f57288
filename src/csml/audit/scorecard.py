"""Scoring replies and writing the scorecard: JSON, per-sample JSONL, Markdown, HTML and an MLflow run.

Files in the audit's output folder (schema version :data:`SCHEMA_VERSION`):

- ``scorecard.json``: ``schema_version``, ``passed``, ``suite`` (name, version, sha256, questions asked),
  ``target`` (the adapter's identity), ``knowledge_base`` (``declared_by`` ``suite`` or ``config``, and its
  ``entries``; null without one), ``metrics`` (per metric: ``key`` = ``audit/<suite>/<metric>``,
  ``value``, ``ci95`` (95% percentile-bootstrap interval over the samples, 1,000 resamples, seed 0; null
  with fewer than two values), ``threshold``, ``direction``, ``gate_on`` (``value`` or ``interval``: the gate
  reads the interval's conservative bound), ``passed``, ``n`` samples scored), ``counts`` (samples, errors
  by kind, cached replies), ``by_category``, ``by_stage``, ``by_channel`` (per question category, journey
  stage and channel: samples and each metric's value), ``failed_probes`` (samples whose ``metadata`` gives a
  ``severity``, as safety probes do, that failed a metric: ``id``, ``probe``, ``severity``, ``owasp``, the
  ``failed`` metrics and their ``reasons``; most severe first; empty for suites without probes),
  ``groundedness_judge`` (when a metric used csml's
  judge: ``model_uri``, ``int8``, ``threshold`` and ``threshold_origin`` -- ``model card``, ``config`` or
  ``calibration`` -- with, for a calibration, its file's ``path``, ``n``, classes, balanced accuracy and
  interval, and whether it was made for the same model; else null), ``environment``
  (csml and Python versions, packages, git commit, time) and ``config`` (resolved, secrets redacted).
- ``samples.jsonl``: per sample the question fields, the reply, and ``scores`` -> ``{value, reason}`` (and
  ``data`` where a metric keeps more: the judge's claims with their spans, scores, evidence and sources). A
  reply's ``raw`` payload over 20,000 characters is written as ``"<truncated>"``, except a simulated
  conversation's transcript (``raw.conversation``), which is always kept whole.
- ``summary.md`` and ``report.html`` (self-contained: plots embedded as PNG).
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from csml.audit.explorer import fails
from csml.audit.metrics import Metric
from csml.audit.suite import Suite
from csml.schemas import AuditSample, BotReply, MetricResult

SCHEMA_VERSION = 2
PASSED_TAG = "csml.audit.passed"


@dataclass
class ScoredSample:
    """A sample, the bot's reply and every metric's result."""

    sample: AuditSample
    reply: BotReply
    cached: bool
    scores: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """One line of ``samples.jsonl``."""
        reply = self.reply.to_dict()
        raw = reply["raw"]
        if isinstance(raw, dict) and "conversation" in raw:  # the transcript is the record: keep it whole
            if len(json.dumps(raw.get("last"), default=str)) >= 20000:
                reply["raw"] = {**raw, "last": "<truncated>"}
        elif len(json.dumps(raw, default=str)) >= 20000:
            reply["raw"] = "<truncated>"
        return {**self.sample.to_dict(), "reply": reply, "cached": self.cached, "scores": self.scores}


def score_samples(
    metrics: list[Metric], samples: list[AuditSample], rows: dict[str, dict[str, Any]]
) -> list[ScoredSample]:
    """Scores every sample that has a reply row with every metric (each metric first sees every pair)."""
    pairs = [(s, BotReply.from_dict(rows[s.id]["reply"])) for s in samples if s.id in rows]
    for metric in metrics:
        metric.prepare(pairs)
    scored = []
    for sample, reply in pairs:
        scores = {}
        for metric in metrics:
            result = metric.score(sample, reply)
            scores[metric.name] = {"value": result.value, "reason": result.reason}
            if result.data is not None:
                scores[metric.name]["data"] = result.data
        scored.append(ScoredSample(sample, reply, bool(rows[sample.id].get("cached")), scores))
    return scored


BREAKDOWNS = ("category", "stage", "channel", "persona")
"""What scores are broken down by (``by_category``, ``by_stage``, ``by_channel``, ``by_persona``): sample
fields, or keys of the sample's ``metadata`` (a simulated customer's ``persona``)."""


def breakdown_value(sample: AuditSample, field: str) -> Any:
    """A sample's value of a :data:`BREAKDOWNS` entry (None: not set)."""
    if field in AuditSample.__dataclass_fields__:
        return getattr(sample, field)
    return (sample.metadata or {}).get(field)


def _results(metric: Metric, scored: list[ScoredSample]) -> list[MetricResult]:
    return [MetricResult(**s.scores[metric.name]) for s in scored]


def aggregate(suite: Suite, metrics: list[Metric], scored: list[ScoredSample]) -> dict[str, Any]:
    """Suite-level values, gates and counts (the ``metrics``, ``counts`` and ``by_<field>`` of the
    scorecard; samples without a stage or channel are left out of those breakdowns)."""
    out: dict[str, Any] = {}
    for metric in metrics:
        results = _results(metric, scored)
        value, interval = metric.aggregate_results(results), metric.interval(results)
        out[metric.name] = {
            "key": f"audit/{suite.name}/{metric.name}",
            "value": value,
            "ci95": None if interval is None else [round(interval[0], 6), round(interval[1], 6)],
            "threshold": metric.threshold,
            "direction": metric.direction,
            "gate_on": metric.gate_on,
            "passed": metric.passed(value, interval),
            "n": sum(r.value is not None for r in results),
        }
    breakdowns = {}
    for field in BREAKDOWNS:
        groups = sorted({breakdown_value(s.sample, field) for s in scored} - {None})
        breakdowns[f"by_{field}"] = {
            group: {
                "samples": len(members := [s for s in scored if breakdown_value(s.sample, field) == group]),
                **{metric.name: metric.aggregate_results(_results(metric, members)) for metric in metrics},
            }
            for group in groups
        }
    errors = Counter(s.reply.error.split(":")[0] for s in scored if s.reply.error)
    counts = {
        "samples": len(scored),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        # the bot's own failure rate: first attempts that failed, whether or not a retry then succeeded
        "first_attempt_errors": sum(bool(s.reply.error) or s.reply.attempts > 1 for s in scored),
        "cached": sum(s.cached for s in scored),
    }
    return {"metrics": out, **breakdowns, "counts": counts, "failed_probes": failed_probes(out, scored)}


SEVERITIES = ("critical", "high", "medium", "low")
"""Probe severities, most severe first (the order failed probes are listed in)."""
_NOT_PROBE_FAILURES = ("error_rate", "timeout_rate")  # no answer is not a safety failure


def failed_probes(metrics: dict[str, Any], scored: list[ScoredSample]) -> list[dict[str, Any]]:
    """The probes (samples whose ``metadata`` gives a ``severity``) that failed a metric, most severe first,
    in suite order within a severity."""
    out = []
    for s in scored:
        meta = s.sample.metadata or {}
        if "severity" not in meta:
            continue
        failed = [
            name
            for name, entry in metrics.items()
            if name not in _NOT_PROBE_FAILURES and fails(s.scores[name]["value"], entry, name)
        ]
        if failed:
            out.append(
                {
                    "id": s.sample.id,
                    "probe": meta.get("probe", s.sample.category),
                    "severity": meta["severity"],
                    "owasp": meta.get("owasp"),
                    "failed": failed,
                    "reasons": {name: s.scores[name]["reason"] for name in failed},
                }
            )
    rank = {severity: index for index, severity in enumerate(SEVERITIES)}
    return sorted(out, key=lambda probe: rank.get(probe["severity"], len(SEVERITIES)))


def markdown_failed_probes(scorecard: dict[str, Any], limit: int = 20) -> list[str]:
    """Lines of the summary's failed-probe table (none when no probe failed)."""
    probes = scorecard.get("failed_probes") or []
    if not probes:
        return []
    counts = Counter(p["severity"] for p in probes)
    by_severity = ", ".join(
        f"{counts[s]} {s}" for s in [*SEVERITIES, *sorted(set(counts) - set(SEVERITIES))] if counts[s]
    )
    lines = [
        f"## Failed probes: {len(probes)} ({by_severity})",
        "",
        "| Severity | Probe | Sample | Failed | Why |",
        "|---|---|---|---|---|",
    ]
    for probe in probes[:limit]:
        why = "; ".join(probe["reasons"].values()).replace("|", "/").replace("\n", " ")[:200]
        lines.append(
            f"| {probe['severity']} | {probe['probe']} | `{probe['id']}` | {', '.join(probe['failed'])} | {why} |"
        )
    if len(probes) > limit:
        lines.append(f"\n... and {len(probes) - limit} more (scorecard.json `failed_probes`)")
    return [*lines, ""]


def assert_passed(scorecard: dict[str, Any]) -> None:
    """Raises ``AssertionError`` naming every failed gate (for pytest suites that run audits in CI)."""
    failed = [
        f"{name} {_fmt(m['value'])} (gate {_gate(m)})"
        for name, m in scorecard["metrics"].items()
        if m["passed"] is False
    ]
    if failed:
        raise AssertionError(f"audit {scorecard['suite']['name']} failed: " + "; ".join(failed))


def environment() -> dict[str, Any]:
    """Versions, git commit and time of the audit."""
    from importlib.metadata import PackageNotFoundError, version

    from csml import __version__
    from csml.pipeline.runs import git_commit

    packages = {}
    for name in ("httpx", "numpy", "sentence-transformers", "torch", "mlflow", "hydra-core"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "csml_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "git_commit": git_commit(),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_scorecard(scorecard: dict[str, Any], scored: list[ScoredSample], folder: Path) -> dict[str, Path]:
    """Writes ``scorecard.json``, ``samples.jsonl``, ``summary.md`` and ``report.html`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "scorecard": folder / "scorecard.json",
        "samples": folder / "samples.jsonl",
        "summary": folder / "summary.md",
        "report": folder / "report.html",
    }
    paths["scorecard"].write_text(json.dumps(scorecard, indent=2, default=str), encoding="utf-8")
    with paths["samples"].open("w", encoding="utf-8") as out:
        for sample in scored:
            out.write(json.dumps(sample.to_dict(), ensure_ascii=False, default=str) + "\n")
    summary = markdown_summary(scorecard) + markdown_worst_cases(scorecard, scored)
    paths["summary"].write_text(summary, encoding="utf-8")
    paths["report"].write_text(html_report(scorecard, scored), encoding="utf-8")
    return paths


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _gate(entry: dict[str, Any]) -> str:
    if entry["threshold"] is None:
        return "–"
    op = ">=" if entry["direction"] == "higher" else "<="
    bound = (
        {"higher": "low ", "lower": "high "}[entry["direction"]] if entry.get("gate_on") == "interval" else ""
    )
    return f"{bound}{op} {_fmt(entry['threshold'])}"


def _interval(entry: dict[str, Any]) -> str:
    ci = entry.get("ci95")
    return "–" if not ci else f"{ci[0]:.3g}–{ci[1]:.3g}"


def _verdict(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "–"}[passed]


def judge_threshold_line(scorecard: dict[str, Any]) -> str | None:
    """One line naming the groundedness judge's threshold and its origin (None when no metric used the judge)."""
    judge = scorecard.get("groundedness_judge")
    if not judge:
        return None
    line = f"Groundedness judge threshold {judge['threshold']:.4g}"
    calibration = judge.get("calibration")
    if judge["threshold_origin"] != "calibration" or not calibration:
        return line + f" from the {judge['threshold_origin']}"
    low, high = calibration["balanced_accuracy_ci"]
    line += (
        f" from calibration file {calibration['path']} (n {calibration['n']}: {calibration['n_supported']} "
        f"grounded, {calibration['n_unsupported']} not; balanced accuracy {calibration['balanced_accuracy']:.3f}, "
        f"95% interval {low:.3f}-{high:.3f})"
    )
    if not calibration.get("same_model", True):
        line += f"; made for another judge model ({calibration['model_uri']})"
    return line


def timeout_hint(scorecard: dict[str, Any]) -> str | None:
    """What to do about timeouts, from the audit's own settings (None without timeouts): a slow bot asked
    too many questions at once queues them past the timeout."""
    timeouts = scorecard["counts"]["errors_by_kind"].get("timeout", 0)
    if not timeouts:
        return None
    config = scorecard.get("config") or {}
    target = config.get("target") or {}
    concurrency = min(int(config.get("concurrency") or 1), int(target.get("concurrency") or 10**6))
    return (
        f"{timeouts} questions timed out (target.timeout_s={target.get('timeout_s')}, {concurrency} in flight). "
        "A bot that answers one question at a time queues the others past the timeout: rerun in the same "
        "folder (answered questions are kept, timeouts asked again) with concurrency=1, or raise "
        "target.timeout_s."
    )


def knowledge_base_line(scorecard: dict[str, Any]) -> str:
    """What facts and claims were checked against, for the summary and the report."""
    kb = scorecard.get("knowledge_base")
    if not kb:
        return "Knowledge base: none (facts checked against returned and reference contexts only)"
    return f"Knowledge base: {kb['entries']} entries, declared by the {kb['declared_by']}"


def markdown_summary(scorecard: dict[str, Any]) -> str:
    """A Markdown summary: verdict, bot, suite and the metric table."""
    suite, counts = scorecard["suite"], scorecard["counts"]
    lines = [
        f"# Audit {suite['name']} v{suite['version']}: {'PASSED' if scorecard['passed'] else 'FAILED'}",
        "",
        f"- Bot: `{scorecard['target'].get('name')}` ({scorecard['target'].get('adapter')}, "
        f"{scorecard['target'].get('url', 'in process')})",
        (
            f"- Conversations: {counts['samples']} ({suite['goals']} goals; errors {counts['errors']})"
            if "goals" in suite
            else f"- Questions: {counts['samples']} (errors {counts['errors']}, cached {counts['cached']})"
        ),
        f"- git {scorecard['environment']['git_commit']}, csml {scorecard['environment']['csml_version']}, "
        f"{scorecard['environment']['time']}",
        *([f"- {line}"] if (line := judge_threshold_line(scorecard)) else []),
        f"- {knowledge_base_line(scorecard)}",
        "",
        *markdown_failed_probes(scorecard),
        "| Metric | Value | 95% interval | Gate | Result | Samples |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in scorecard["metrics"].items():
        lines.append(
            f"| {name} | {_fmt(entry['value'])} | {_interval(entry)} | {_gate(entry)} | "
            f"{_verdict(entry['passed'])} | {entry['n']} |"
        )
    if counts["errors_by_kind"]:
        lines += ["", "Errors: " + ", ".join(f"{k} {v}" for k, v in sorted(counts["errors_by_kind"].items()))]
    if hint := timeout_hint(scorecard):
        lines += ["", hint]
    if counts.get("first_attempt_errors"):
        lines += [
            "",
            f"First attempts failed: {counts['first_attempt_errors']} of {counts['samples']} "
            f"({counts['first_attempt_errors'] / max(counts['samples'], 1):.1%}; after retries: {counts['errors']})",
        ]
    names = [n for n in scorecard["metrics"] if not n.startswith("latency")]
    for field in BREAKDOWNS:
        groups = scorecard.get(f"by_{field}") or {}
        if len(groups) < 2:
            continue
        lines += ["", f"## By {field}", "", f"| {field} | samples | " + " | ".join(names) + " |"]
        lines.append("|---" * (len(names) + 2) + "|")
        for group, values in groups.items():
            cells = " | ".join(_fmt(values.get(n)) for n in names)
            lines.append(f"| {group} | {values.get('samples', '–')} | {cells} |")
    return "\n".join(lines) + "\n"


def markdown_worst_cases(scorecard: dict[str, Any], scored: list[ScoredSample], n: int = 3) -> str:
    """The worst ``n`` samples of each quality metric as a Markdown list (appended to ``summary.md``)."""
    lines = []
    for name, sample in worst_cases(scorecard, scored, n):
        text = (sample.reply.text or str(sample.reply.error)).replace("\n", " ")[:160]
        lines.append(
            f"- **{name}** {_fmt(sample.scores[name]['value'])} `{sample.sample.id}`: "
            f"{sample.sample.question[:100]!r} -> {text!r} ({sample.scores[name]['reason'][:160]})"
        )
    return "\n## Worst cases\n\n" + "\n".join(lines) + "\n" if lines else ""


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plots(scorecard: dict[str, Any], scored: list[ScoredSample]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots, seen = [], set()
    for name in scorecard["metrics"]:
        values = [s.scores[name]["value"] for s in scored if s.scores[name]["value"] is not None]
        if len(set(values)) < 2 or tuple(values) in seen:  # latency p50 and p95 share their samples
            continue
        seen.add(tuple(values))
        fig, ax = plt.subplots(figsize=(4.5, 2.8))
        ax.hist(values, bins=20, color="#4878a8")
        threshold = scorecard["metrics"][name]["threshold"]
        if threshold is not None and not name.startswith("latency"):
            ax.axvline(threshold, color="#c0392b", linestyle="--", label="gate")
            ax.legend()
        ax.set_title(name)
        ax.set_ylabel("samples")
        plots.append((name, _png(fig)))
        plt.close(fig)
    return plots


def _bars(scorecard: dict[str, Any], field: str) -> list[tuple[str, str]]:
    """Bar charts of each gated metric per group of ``field`` (groups of two or more only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = scorecard.get(f"by_{field}") or {}
    if len(groups) < 2:
        return []
    plots = []
    for name, entry in scorecard["metrics"].items():
        values = {g: v.get(name) for g, v in groups.items() if v.get(name) is not None}
        if entry["threshold"] is None or len(values) < 2:
            continue
        fig, ax = plt.subplots(figsize=(4.5, 0.4 * len(values) + 1.2))
        ax.barh(list(values), list(values.values()), color="#4878a8")
        ax.axvline(entry["threshold"], color="#c0392b", linestyle="--", label="gate")
        ax.invert_yaxis()
        ax.set_title(f"{name} by {field}")
        ax.legend(loc="lower right")
        plots.append((f"{name} by {field}", _png(fig)))
        plt.close(fig)
    return plots


def worst_cases(
    scorecard: dict[str, Any], scored: list[ScoredSample], n: int = 10
) -> list[tuple[str, ScoredSample]]:
    """Up to ``n`` imperfect samples per quality metric, worst first (latency is left to the plots)."""
    out = []
    for name, entry in scorecard["metrics"].items():
        if name.startswith("latency"):
            continue
        higher = entry["direction"] == "higher"
        values = [(s.scores[name]["value"], s) for s in scored if s.scores[name]["value"] is not None]
        imperfect = [(v, s) for v, s in values if (v < 1.0 if higher else v > 0.0)]
        imperfect.sort(key=lambda pair: pair[0] if higher else -pair[0])
        out += [(name, s) for _, s in imperfect[:n]]
    return out


def html_report(scorecard: dict[str, Any], scored: list[ScoredSample]) -> str:
    """A self-contained HTML report: verdict, metric table (a click filters the samples failing it), breakdowns,
    score distributions and the sample explorer (:mod:`csml.audit.explorer`)."""
    from csml.audit.explorer import samples_section

    e = html.escape
    suite = scorecard["suite"]
    rows = "".join(
        f"<tr class='link' data-set-filter='failing' data-value='{e(name)}'><td>{e(name)}</td>"
        f"<td>{_fmt(m['value'])}</td><td>{e(_interval(m))}</td><td>{e(_gate(m))}</td>"
        f"<td class='{_verdict(m['passed'])}'>{_verdict(m['passed'])}</td><td>{m['n']}</td></tr>"
        for name, m in scorecard["metrics"].items()
    )
    names = list(scorecard["metrics"])
    breakdowns = ""
    for field in BREAKDOWNS:
        groups = scorecard.get(f"by_{field}") or {}
        if not groups:
            continue
        body = "".join(
            f"<tr class='link' data-set-filter='{field}' data-value='{e(g)}'><td>{e(g)}</td>"
            f"<td>{values.get('samples', '–')}</td>"
            + "".join(f"<td>{_fmt(values.get(n))}</td>" for n in names)
            + "</tr>"
            for g, values in groups.items()
        )
        head = "".join(f"<th>{e(n)}</th>" for n in names)
        breakdowns += (
            f"<h2>By {e(field)}</h2><table><tr><th>{e(field)}</th><th>samples</th>{head}</tr>{body}</table>"
        )
        breakdowns += "".join(
            f"<figure><img alt='{e(n)}' src='{src}'></figure>" for n, src in _bars(scorecard, field)
        )
    plots = "".join(
        f"<figure><img alt='{e(n)}' src='{src}'></figure>" for n, src in _plots(scorecard, scored)
    )
    verdict = "PASSED" if scorecard["passed"] else "FAILED"
    probes = scorecard.get("failed_probes") or []
    probes_html = (
        f"<h2>Failed probes ({len(probes)}, most severe first)</h2><table><tr><th>severity</th><th>probe</th>"
        "<th>sample</th><th>failed</th><th>why</th></tr>"
        + "".join(
            f"<tr><td class='bad'>{e(p['severity'])}</td><td>{e(p['probe'])}</td><td><code>{e(p['id'])}</code></td>"
            f"<td>{e(', '.join(p['failed']))}</td><td>{e('; '.join(p['reasons'].values()))}</td></tr>"
            for p in probes
        )
        + "</table>"
        if probes
        else ""
    )
    judge_line = judge_threshold_line(scorecard)
    judge_html = f"<p class='judge'>{e(judge_line)}</p>" if judge_line else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>csml audit {e(suite["name"])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px;vertical-align:top}}.pass{{color:#1e7e34}}
.FAIL{{color:#c0392b;font-weight:bold}}figure{{display:inline-block;margin:0.5em}}.link{{cursor:pointer}}
.link:hover{{background:#eef3f8}}.bad{{color:#c0392b}}.filters label{{margin-right:1em}}mark{{background:#f9d6d5}}
blockquote{{margin:0.3em 1em;color:#555}}</style></head><body>
<h1>Audit {e(suite["name"])} v{suite["version"]}: <span class="{"pass" if scorecard["passed"] else "FAIL"}">{verdict}</span></h1>
<p>Bot <code>{e(str(scorecard["target"].get("name")))}</code> · {scorecard["counts"]["samples"]} questions ·
errors {scorecard["counts"]["errors"]} · git {e(scorecard["environment"]["git_commit"])} ·
{e(scorecard["environment"]["time"])}<br>{e(knowledge_base_line(scorecard))}</p>{judge_html}
{probes_html}<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>95% interval</th><th>gate</th><th>result</th><th>samples</th></tr>{rows}</table>
{breakdowns}
<h2>Score distributions</h2>{plots or "<p>No spread to plot.</p>"}
{samples_section(scorecard, scored)}
</body></html>
"""


def log_to_mlflow(cfg: Any, scorecard: dict[str, Any], paths: dict[str, Path], run_id_file: Path) -> str:
    """Logs the audit as an MLflow run tagged ``csml.audit.passed``; returns the run id."""
    import mlflow

    from csml.tracking.runs import log_config, mlflow_run

    tags = {
        "csml.task": "audit",
        "csml.audit.suite": scorecard["suite"]["name"],
        "csml.audit.target": str(scorecard["target"].get("name")),
        "csml.git_commit": scorecard["environment"]["git_commit"],
        PASSED_TAG: str(scorecard["passed"]).lower(),
    }
    with mlflow_run(cfg.tracking, cfg.get("run_name"), run_id_file, tags, resume=False) as run:
        log_config(cfg)
        metrics = {m["key"]: m["value"] for m in scorecard["metrics"].values() if m["value"] is not None}
        for m in scorecard["metrics"].values():
            if m.get("ci95"):
                metrics[f"{m['key']}/ci95_low"], metrics[f"{m['key']}/ci95_high"] = m["ci95"]
        metrics[f"audit/{scorecard['suite']['name']}/samples"] = scorecard["counts"]["samples"]
        mlflow.log_metrics(metrics)
        mlflow.log_params({"audit.suite_sha256": scorecard["suite"]["sha256"]})
        for path in paths.values():
            mlflow.log_artifact(str(path), "audit")
        mlflow.set_tag(PASSED_TAG, str(scorecard["passed"]).lower())
        return run.info.run_id
