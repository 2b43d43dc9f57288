"""Deterministic, label-stratified carving and sub-sampling of rows."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def stratified_split(
    items: Sequence[T], fraction: float, seed: int, key: Callable[[T], Hashable]
) -> tuple[list[T], list[T]]:
    """Holds out ``fraction`` of each group of ``items`` (grouped by ``key``), chosen by a seeded shuffle.

    Every group with at least two items gives at least one to the held-out part and keeps at least one, so
    both parts see every such group; single-item groups stay in the kept part. Both parts keep the input
    order, and the result depends only on ``items``, ``fraction`` and ``seed``.

    Returns:
        ``(kept, held_out)``.
    """
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[key(item)].append(index)
    rng = random.Random(seed)
    held: set[int] = set()
    for group in sorted(groups, key=repr):
        indices = groups[group]
        if len(indices) < 2:
            continue
        count = min(len(indices) - 1, max(1, round(len(indices) * fraction)))
        held.update(rng.sample(indices, count))
    kept = [item for index, item in enumerate(items) if index not in held]
    return kept, [item for index, item in enumerate(items) if index in held]


def stratified_take(items: Sequence[T], limit: int, seed: int, key: Callable[[T], Hashable]) -> list[T]:
    """Up to ``limit`` items taken round-robin over the groups of a seeded shuffle, in input order.

    Taking one item of each group in turn keeps as many groups represented as the limit allows.
    """
    if len(items) <= limit:
        return list(items)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index in order:
        groups[key(items[index])].append(index)
    queues = [groups[group] for group in sorted(groups, key=repr)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < limit:
        chosen.extend(queue[depth] for queue in queues if depth < len(queue))
        depth += 1
    return [items[index] for index in sorted(chosen[:limit])]
