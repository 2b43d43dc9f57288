"""The audit's HTML report: the sample explorer's filters and evidence, checked in a real headless browser
when Chromium and Playwright are installed (`apt install chromium`, `pip install playwright`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from csml.audit.explorer import fails
from csml.audit.scorecard import ScoredSample, html_report
from csml.schemas import AuditSample, BotReply

CLAIM = "Refunds take 90 days."


def scored_samples() -> list[ScoredSample]:
    out = []
    for i in range(6):
        category = "policy" if i < 4 else "off_topic"
        text = f"Sure. {CLAIM}" if i == 0 else f"Answer {i}."
        claims = [{"start": 6, "end": 6 + len(CLAIM), "score": 0.12, "supported": False,
                   "evidence": "Refunds take 5 business days.", "sources": ["docs:refunds.md#refunds"]}]  # fmt: skip
        scores = {
            "groundedness": {"value": 0.0 if i == 0 else 1.0, "reason": "judged", "data": {"claims": claims if i == 0 else []}},
            "abstention": {"value": None if i < 4 else float(i == 4), "reason": "declined" if i == 4 else "-"},
            "latency_p95_ms": {"value": 100.0 + i, "reason": "latency"},
        }  # fmt: skip
        sample = AuditSample(id=f"q{i}", question=f"question {i}", category=category, stage="support")
        out.append(ScoredSample(sample, BotReply(text=text), False, scores))
    return out


def scorecard() -> dict:
    def metric(value: float, direction: str = "higher", threshold: float | None = 0.9) -> dict:
        return {"value": value, "ci95": [0.1, 0.9], "threshold": threshold, "direction": direction,
                "gate_on": "value", "passed": value >= (threshold or 0), "n": 4}  # fmt: skip

    return {
        "suite": {"name": "demo", "version": 1},
        "passed": False,
        "metrics": {"groundedness": metric(0.75), "abstention": metric(0.5), "latency_p95_ms": metric(105, "lower", None)},
        "by_category": {"policy": {"samples": 4, "groundedness": 0.75}, "off_topic": {"samples": 2, "abstention": 0.5}},
        "counts": {"samples": 6, "errors": 0},
        "target": {"name": "demo-bot"},
        "environment": {"git_commit": "abc", "time": "now"},
    }  # fmt: skip


def test_failing_is_worse_than_the_gate_or_than_perfect() -> None:
    gate = {"direction": "higher", "threshold": 0.6}
    assert fails(0.5, gate, "answer_correctness") and not fails(0.7, gate, "answer_correctness")
    assert fails(0.5, gate, "groundedness")  # a share of claims: one unsupported claim fails
    assert not fails(0.97, {"direction": "higher", "threshold": None}, "answer_correctness")  # no gate
    assert fails(1.0, {"direction": "lower", "threshold": 0.05}, "fabricated_entities")
    assert not fails(None, gate, "groundedness") and not fails(9000.0, gate, "latency_p95_ms")


def test_report_lists_every_sample_with_its_evidence() -> None:
    report = html_report(scorecard(), scored_samples())
    assert report.count("<tr data-category=") == 6
    assert f"<mark>{CLAIM}</mark>" in report and "Refunds take 5 business days." in report
    assert "docs:refunds.md#refunds" in report and "http" not in report.split("<body>")[1]


def test_report_filters_in_a_headless_browser(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine (Debian: apt install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright not installed (pip install playwright)"
    )
    path = tmp_path / "report.html"
    path.write_text(html_report(scorecard(), scored_samples()), encoding="utf-8")
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        visible = "#sample-table tbody tr:visible"
        assert page.locator(visible).count() == 6
        page.select_option("select[data-filter='category']", "off_topic")
        assert page.locator(visible).count() == 2
        page.select_option("select[data-filter='category']", "")
        page.click("tr[data-set-filter='failing'][data-value='groundedness']")  # the metric table links
        assert page.locator(visible).count() == 1 and "q0" in page.locator(visible).first.inner_text()
        page.select_option("select[data-filter='failing']", "")
        page.fill("#search", "answer 3")
        assert page.locator(visible).count() == 1
        assert page.inner_text("#shown") == "1 of 6 samples"
        browser.close()
    assert errors == []
