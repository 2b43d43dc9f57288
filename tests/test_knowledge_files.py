"""Knowledge bases from the files auditors have: Markdown, text, HTML and tables (csml.knowledge.documents)."""

from __future__ import annotations

from pathlib import Path

import pytest

from csml.knowledge.documents import DocumentFiles

MARKDOWN = """---
title: front matter is dropped
---
# Returns

## Damaged items
Items that arrive **damaged** can be returned within [30 days](https://example.com/returns).

- Keep the original box.
- Photos help.

```
code blocks are dropped
```

## Refunds
Refunds reach your card in 5 business days.
"""


def test_markdown_sections_carry_their_heading_trail_and_lose_markup(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "returns.md").write_text(MARKDOWN)
    entries = DocumentFiles(["policies/*.md"], name="kb", base_dir=str(tmp_path)).load()
    assert [e.title for e in entries] == ["Returns > Damaged items", "Returns > Refunds"]
    assert [e.id for e in entries] == [
        "kb:policies/returns.md#returns-damaged-items",
        "kb:policies/returns.md#returns-refunds",
    ]
    damaged = entries[0]
    assert damaged.answer == (
        "Items that arrive damaged can be returned within 30 days. Keep the original box. Photos help."
    )
    assert damaged.passage.startswith("Returns > Damaged items. Items that arrive")
    assert "front matter" not in damaged.passage and "code blocks" not in damaged.passage
    assert damaged.keys == (damaged.title, damaged.answer)


def test_long_sections_are_cut_into_parts_of_whole_paragraphs(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i} says " + " ".join(["word"] * 30) + "." for i in range(5)]
    (tmp_path / "long.txt").write_text("\n\n".join(paragraphs))
    entries = DocumentFiles("long.txt", max_words=70, base_dir=str(tmp_path)).load()
    assert [e.title for e in entries] == ["long (part 1)", "long (part 2)", "long (part 3)"]
    assert all(len(e.answer.split()) <= 70 for e in entries)
    assert " ".join(e.answer for e in entries) == " ".join(paragraphs)
    assert len({e.id for e in entries}) == 3


def test_html_headings_split_sections_and_scripts_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "faq.html").write_text(
        "<html><head><style>p {color: red}</style><script>var x = 1;</script></head><body>"
        "<nav>Home | Shop</nav><h1>Shipping</h1><p>Orders ship in <b>2 days</b>.</p>"
        "<h2>Abroad</h2><p>International orders take 10 days &amp; cost $15.</p></body></html>"
    )
    entries = DocumentFiles(["faq.html"], base_dir=str(tmp_path)).load()
    assert [(e.title, e.answer) for e in entries] == [
        ("Shipping", "Orders ship in 2 days."),
        ("Shipping > Abroad", "International orders take 10 days & cost $15."),
    ]


def test_tables_map_columns_and_bad_rows_name_file_and_row(tmp_path: Path) -> None:
    (tmp_path / "faq.csv").write_text("q,a,topic\nCan I return shoes?,Yes within 30 days.,returns\n")
    entries = DocumentFiles(
        ["faq.csv"], title_column="q", text_column="a", category_column="topic", base_dir=str(tmp_path)
    ).load()
    assert [(e.title, e.answer, e.intent, e.id) for e in entries] == [
        ("Can I return shoes?", "Yes within 30 days.", "returns", "docs:faq.csv:1")
    ]
    with pytest.raises(
        ValueError, match=r"faq.csv: missing column\(s\) \['title', 'text'\]; found \['a', 'q', 'topic'\]"
    ):
        DocumentFiles(["faq.csv"], base_dir=str(tmp_path)).load()
    (tmp_path / "bad.jsonl").write_text('{"title": "t", "text": "x"}\n{"title": "t2", "text": ""}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, row 2: empty 'text'"):
        DocumentFiles(["bad.jsonl"], base_dir=str(tmp_path)).load()
    (tmp_path / "broken.jsonl").write_text('{"title": "t", "text": "x"}\n{"title": \n')
    with pytest.raises(ValueError, match=r"broken.jsonl, line 2: not JSON"):
        DocumentFiles(["broken.jsonl"], base_dir=str(tmp_path)).load()


def test_unmatched_patterns_and_unknown_formats_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'policies/\*.md' matches no file"):
        DocumentFiles(["policies/*.md"], base_dir=str(tmp_path)).load()
    (tmp_path / "slides.pptx").write_bytes(b"\x00")
    with pytest.raises(ValueError, match=r"slides.pptx is not a format csml reads"):
        DocumentFiles(["slides.pptx"], base_dir=str(tmp_path)).load()
    (tmp_path / "empty.md").write_text("# Only a heading\n")
    with pytest.raises(ValueError, match=r"empty\.md holds no text"):
        DocumentFiles(["empty.md"], base_dir=str(tmp_path)).load()
