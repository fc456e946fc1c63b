"""Ordered map over independent items in a small fork pool (bank builds are per-galaxy pure
functions of their inputs: the pool changes the wall time, never the result)."""

from __future__ import annotations

import multiprocessing
import os
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Below this many items a pool costs more than it saves.
MIN_ITEMS_FOR_POOL = 16


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> list[R]:
    """[fn(x) for x in items], in `workers` forked processes (default: one per CPU); results in
    input order. `fn` must be a module-level function (or a functools.partial of one)."""
    items = list(items)
    workers = int(workers or os.cpu_count() or 1)
    if workers <= 1 or len(items) < MIN_ITEMS_FOR_POOL:
        return [fn(x) for x in items]
    with multiprocessing.get_context("fork").Pool(min(workers, len(items))) as pool:
        return pool.map(fn, items, chunksize=max(1, len(items) // (4 * workers)))
