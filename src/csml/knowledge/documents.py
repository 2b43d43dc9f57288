"""A knowledge base from the files auditors and support teams have: Markdown, plain text, HTML, and tables
(CSV, TSV, JSONL) with a column mapping. ``conf/knowledge_base/files.yaml``::

    csml audit knowledge_base=files 'knowledge_base.paths=[policies/*.md, faq.csv]'

Chunking, the same for every document format: a document is cut into **sections** at its headings
(Markdown ``#`` lines, HTML ``<h1>``-``<h6>``; a plain-text file is one section titled by its file name);
a section's title is its heading trail (``Returns > Damaged items``). A section longer than ``max_words``
is cut into consecutive **parts** of whole paragraphs of at most ``max_words`` words (a longer paragraph
by whole sentences), titled ``<title> (part 2)``. Each section or part is one :class:`~csml.knowledge.KBEntry`
whose passage is its text, with the title as a retrieval key. Table rows are entries as they are (one row,
one entry; see :class:`~csml.knowledge.FaqFile`). Ids are ``<name>:<file>#<section slug>[-<part>]`` and
``<name>:<file>:<row>``, stable while the files are.
"""

from __future__ import annotations

import glob
import html.parser
import os
import re
from collections.abc import Sequence
from pathlib import Path

from csml.knowledge import FaqFile, KBEntry

DOCUMENT_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")


class DocumentFiles:
    """Entries of every file that ``paths`` name (files or glob patterns, relative to ``base_dir``).

    Args:
        paths: Files or glob patterns (``policies/**/*.md``); each must match at least one file.
        name: Prefix of entry ids.
        max_words: Longest section kept whole; longer ones are cut into parts (see the module docstring).
        title_column: A table's column holding an entry's title (an FAQ question): its retrieval key.
        text_column: A table's column holding the entry's text (the answer, the passage).
        category_column: A table's optional column reported as the entry's intent.
        base_dir: Folder relative paths are read from (None: the working directory).

    Raises (from :meth:`load`):
        FileNotFoundError: A path that matches no file.
        ValueError: A file of an unknown format, an empty document, a table without the mapped columns
            or with an empty row (the file, row and column).
    """

    def __init__(
        self,
        paths: Sequence[str] | str,
        name: str = "docs",
        max_words: int = 300,
        title_column: str = "title",
        text_column: str = "text",
        category_column: str | None = None,
        base_dir: str | None = None,
    ) -> None:
        self.patterns = [paths] if isinstance(paths, str) else list(paths)
        if not self.patterns:
            raise ValueError("knowledge_base.paths: name at least one file or glob pattern")
        if max_words < 20:
            raise ValueError(f"knowledge_base.max_words must be >= 20, got {max_words}")
        self.name = name
        self.max_words = max_words
        self.columns = (title_column, text_column, category_column)
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()

    def files(self) -> list[Path]:
        """The files the patterns match, in pattern order, each once."""
        found: dict[Path, None] = {}
        for pattern in self.patterns:
            full = Path(os.path.normpath(self.base_dir / pattern))  # an absolute pattern stays as it is
            matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
            if not matches:
                raise FileNotFoundError(f"knowledge base: {pattern!r} matches no file (looked in {full})")
            found.update(dict.fromkeys(matches))
        return list(found)

    def load(self) -> list[KBEntry]:
        entries: list[KBEntry] = []
        for path in self.files():
            label = _label(path, self.base_dir)
            suffix = path.suffix.lower()
            if suffix in TABLE_SUFFIXES:
                title, text, category = self.columns
                table = FaqFile(str(path), f"{self.name}:{label}", title, text, category)
                entries += table.load()
            elif suffix in DOCUMENT_SUFFIXES:
                sections = _sections(path)
                if not sections:
                    raise ValueError(f"knowledge base: {path} holds no text")
                entries += self._entries(label, sections)
            else:
                raise ValueError(
                    f"knowledge base: {path} is not a format csml reads (documents {DOCUMENT_SUFFIXES}, tables "
                    f"{TABLE_SUFFIXES} with title_column/text_column)"
                )
        return entries

    def _entries(self, label: str, sections: list[tuple[str, list[str]]]) -> list[KBEntry]:
        out, slugs = [], set()
        for title, paragraphs in sections:
            slug = base = _slug(title)
            index = 1
            while slug in slugs:  # two sections with one title
                index += 1
                slug = f"{base}-{index}"
            slugs.add(slug)
            parts = _parts(paragraphs, self.max_words)
            for number, text in enumerate(parts, start=1):
                suffix = f"-{number}" if len(parts) > 1 else ""
                shown = f"{title} (part {number})" if len(parts) > 1 else title
                out.append(
                    KBEntry(
                        id=f"{self.name}:{label}#{slug}{suffix}",
                        title=shown,
                        keys=(shown, text),
                        answer=text,
                        passage=f"{shown}. {text}",
                    )
                )
        return out


def _label(path: Path, base_dir: Path) -> str:
    try:
        return path.resolve().relative_to(base_dir.resolve()).as_posix()
    except ValueError:
        return path.name


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def _sections(path: Path) -> list[tuple[str, list[str]]]:
    """(heading trail, paragraphs) of each non-empty section of a document file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        blocks = _html_blocks(text)
    elif suffix in (".md", ".markdown"):
        blocks = _markdown_blocks(text)
    else:
        blocks = [(0, p) for p in re.split(r"\n\s*\n", text)]
    sections: list[tuple[str, list[str]]] = []
    trail: list[tuple[int, str]] = []
    paragraphs: list[str] = []

    def close() -> None:
        if paragraphs:
            title = " > ".join(t for _, t in trail) or path.stem.replace("_", " ").replace("-", " ")
            sections.append((title, list(paragraphs)))
            paragraphs.clear()

    for level, block in blocks:
        block = " ".join(block.split())
        if not block:
            continue
        if level:  # a heading: closes the section before it
            close()
            trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, block)]
        else:
            paragraphs.append(block)
    close()
    return sections


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_MARKUP = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images: their alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: their text
    (re.compile(r"(\*\*|__|`)"), ""),
    (re.compile(r"(?<!\w)[*_](\S(?:.*?\S)?)[*_](?!\w)"), r"\1"),
    (re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+"), ""),  # list markers
    (re.compile(r"^\s{0,3}>\s?"), ""),  # quotes
]


def _markdown_blocks(text: str) -> list[tuple[int, str]]:
    """(heading level or 0, text) blocks of Markdown: headings, and paragraphs or list items (front matter
    and code fences dropped, inline markup removed)."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)  # YAML front matter
    text = re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.DOTALL | re.MULTILINE)
    blocks: list[tuple[int, str]] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append((0, " ".join(current)))
            current.clear()

    for line in text.splitlines():
        if heading := _MD_HEADING.match(line):
            flush()
            blocks.append((len(heading.group(1)), _unmark(heading.group(2))))
        elif not line.strip() or re.match(r"^\s{0,3}([-*+]|\d+[.)])\s+", line):
            flush()  # a blank line ends a paragraph; a list item starts its own
            if line.strip():
                current.append(_unmark(line))
        elif re.fullmatch(r"\s*([-*_=]\s*){3,}", line):
            flush()  # a rule, or a setext underline
        else:
            current.append(_unmark(line))
    flush()
    return blocks


def _unmark(line: str) -> str:
    for pattern, replacement in _MD_MARKUP:
        line = pattern.sub(replacement, line)
    return line.strip()


class _HtmlText(html.parser.HTMLParser):
    """Headings and text blocks of an HTML page; scripts, styles and navigation left out."""

    BLOCKS = frozenset(
        {"p", "div", "li", "tr", "br", "section", "article", "td", "dd", "dt", "blockquote", "pre"}
    )
    SKIPPED = frozenset({"script", "style", "nav", "footer", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[int, str]] = []
        self._text: list[str] = []
        self._level = 0
        self._skipping = 0

    def _flush(self) -> None:
        if text := " ".join("".join(self._text).split()):
            self.blocks.append((self._level, text))
        self._text = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIPPED:
            self._skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._level = int(tag[1])
        elif tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._level = 0
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._text.append(data)


def _html_blocks(text: str) -> list[tuple[int, str]]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    parser._flush()
    return parser.blocks


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _parts(paragraphs: list[str], max_words: int) -> list[str]:
    """Consecutive paragraphs joined into parts of at most ``max_words`` words; a longer paragraph is cut
    at sentence ends (and a longer sentence at ``max_words``)."""
    pieces: list[str] = []
    for paragraph in paragraphs:
        if len(paragraph.split()) <= max_words:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            words = sentence.split()
            pieces += [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)]
    parts, current, size = [], [], 0
    for piece in pieces:
        n = len(piece.split())
        if current and size + n > max_words:
            parts.append(" ".join(current))
            current, size = [], 0
        current.append(piece)
        size += n
    if current:
        parts.append(" ".join(current))
    return parts
