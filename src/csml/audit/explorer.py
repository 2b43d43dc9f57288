"""The report's sample explorer: every question of an audit in one filterable table, inside ``report.html``.

Filters by category, journey stage, channel and failing metric, and a text search over question, answer
and reasons; a click on a row of the metric table or of a breakdown table sets the matching filter. The
answer shows the claims the judge found unsupported highlighted, each beside its best evidence (and, for
bots without contexts, the knowledge-base entries retrieved for it). Plain HTML, CSS and a few lines of
JavaScript, no network: the file works offline and, without JavaScript, still lists every sample.

A sample *fails* a metric when its value is worse than perfect for a verdict (0 or 1) or groundedness' share
of supported claims, or worse than the metric's gate for a score between 0 and 1 (answer correctness) and
for a count or a time above 1 (turns to resolution): without a gate those never fail; latency is left to
the plots.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Protocol

from csml.schemas import AuditSample, BotReply

FIELDS = ("category", "stage", "channel")


class ScoredSample(Protocol):
    """A scored sample (:class:`csml.audit.scorecard.ScoredSample`)."""

    sample: AuditSample
    reply: BotReply
    scores: dict[str, dict[str, Any]]


def fails(value: float | None, entry: dict[str, Any], name: str) -> bool:
    """Whether one sample's ``value`` fails the metric described by its scorecard ``entry``."""
    if value is None or name.startswith("latency"):
        return False
    higher = entry.get("direction", "higher") == "higher"
    threshold = entry.get("threshold")
    if (0.0 < value < 1.0 and name != "groundedness") or not 0.0 <= value <= 1.0:
        # a score, a count or a time, not a verdict: only a gate can fail it
        return threshold is not None and (value < threshold if higher else value > threshold)
    return value < 1.0 if higher else value > 0.0


def _answer(sample: ScoredSample) -> str:
    """The reply with unsupported claims marked, and their evidence listed under it."""
    e = html.escape
    text = sample.reply.text
    if not text:
        return f"<span class='err'>{e(str(sample.reply.error))}</span>"
    claims = ((sample.scores.get("groundedness") or {}).get("data") or {}).get("claims") or []
    flagged = sorted((c for c in claims if not c["supported"]), key=lambda c: c["start"])
    out, last = [], 0
    for claim in flagged:
        out += [e(text[last : claim["start"]]), f"<mark>{e(text[claim['start'] : claim['end']])}</mark>"]
        last = claim["end"]
    body = "".join([*out, e(text[last:])])
    if not flagged:
        return body
    evidence = "".join(
        f"<li><mark>{e(text[c['start'] : c['end']])}</mark> support {c['score']:.2f}"
        f"{' from ' + e(', '.join(c['sources'])) if c.get('sources') else ''}"
        f"<blockquote>{e(c.get('evidence') or 'no evidence')}</blockquote></li>"
        for c in flagged
    )
    return f"{body}<details><summary>evidence of {len(flagged)} unsupported</summary><ul>{evidence}</ul></details>"


def samples_section(scorecard: dict[str, Any], scored: Sequence[ScoredSample]) -> str:
    """The explorer's HTML: filter controls, the table and its script."""
    e = html.escape
    metrics = scorecard["metrics"]
    options = {f: sorted({str(getattr(s.sample, f)) for s in scored if getattr(s.sample, f)}) for f in FIELDS}
    controls = "".join(
        f"<label>{f} <select data-filter='{f}'><option value=''>all</option>"
        + "".join(f"<option>{e(v)}</option>" for v in values)
        + "</select></label> "
        for f, values in options.items()
        if values
    )
    controls += (
        "<label>failing <select data-filter='failing'><option value=''>any or none</option>"
        + "".join(f"<option>{e(n)}</option>" for n in metrics if not n.startswith("latency"))
        + "</select></label> <label>search <input type='search' id='search'></label> <span id='shown'></span>"
    )
    rows = []
    for s in scored:
        failing = [n for n in metrics if n in s.scores and fails(s.scores[n]["value"], metrics[n], n)]
        values = " ".join(
            f"{n}={'–' if s.scores[n]['value'] is None else format(s.scores[n]['value'], '.2f')}"
            for n in metrics
            if n in s.scores
        )
        reasons = "".join(
            f"<li><b>{e(n)}</b> {e(s.scores[n]['reason'])}</li>" for n in metrics if n in s.scores
        )
        attributes = " ".join(f"data-{f}='{e(str(getattr(s.sample, f) or ''))}'" for f in FIELDS)
        rows.append(
            f"<tr {attributes} data-failing='{e(' '.join(failing))}'><td>{e(s.sample.id)}</td>"
            f"<td>{e(s.sample.category)}</td><td>{e(s.sample.question)}</td><td>{_answer(s)}</td>"
            f"<td class='bad'>{e(', '.join(failing))}</td>"
            f"<td><details><summary>{e(values)}</summary><ul>{reasons}</ul></details></td></tr>"
        )
    return f"""<h2 id="samples">Samples</h2><div class="filters">{controls}</div>
<table id="sample-table"><thead><tr><th>id</th><th>category</th><th>question</th><th>answer</th><th>failing</th>
<th>scores</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<script>
(function () {{
  const table = document.getElementById("sample-table");
  const rows = Array.from(table.tBodies[0].rows);
  const selects = Array.from(document.querySelectorAll("select[data-filter]"));
  const search = document.getElementById("search");
  function apply() {{
    const wanted = selects.map((s) => [s.dataset.filter, s.value]);
    const text = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {{
      const ok = wanted.every(([field, value]) => !value ||
          (field === "failing" ? row.dataset.failing.split(" ").includes(value) : row.dataset[field] === value)) &&
        (!text || row.textContent.toLowerCase().includes(text));
      row.style.display = ok ? "" : "none";
      shown += ok;
    }}
    document.getElementById("shown").textContent = shown + " of " + rows.length + " samples";
  }}
  selects.forEach((s) => s.addEventListener("change", apply));
  search.addEventListener("input", apply);
  document.querySelectorAll("[data-set-filter]").forEach((el) => el.addEventListener("click", () => {{
    const select = selects.find((s) => s.dataset.filter === el.dataset.setFilter);
    if (!select) return;
    select.value = el.dataset.value;
    apply();
    document.getElementById("samples").scrollIntoView();
  }}));
  apply();
}})();
</script>"""
