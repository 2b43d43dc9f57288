"""Labels of multi-label data: a record's label is a set of atomic labels, held as one canonical string.

With ``data.source.multi_label`` a row may carry several intents (``flight#airfare``). Its record keeps the
set as the atomic labels sorted, deduplicated and joined by the dataset's separator (``airfare#flight``), so
records, label counts and dataset hashes stay plain strings; these functions go between that string and
the set. With no separator (single-label data) a label is a set of one.
"""

from __future__ import annotations

from collections.abc import Iterable


def label_set(label: str, separator: str | None) -> tuple[str, ...]:
    """The atomic labels of a record's label: split on ``separator``, or the label itself when it is None."""
    return (label,) if separator is None else tuple(label.split(separator))


def join_label_set(labels: Iterable[str], separator: str | None) -> str:
    """The canonical label of a set of atomic labels: sorted, deduplicated, joined by ``separator``.

    Raises:
        ValueError: ``separator`` is None (single-label data) and ``labels`` is not exactly one label.
    """
    unique = sorted(set(labels))
    if separator is None:
        if len(unique) != 1:
            raise ValueError(f"single-label data takes exactly one label per record, got {unique}")
        return unique[0]
    return separator.join(unique)
