"""Settling the heap takes what is alive out of later collections, and keeps it alive."""

from __future__ import annotations

import gc
import weakref

from personae.heap import settle_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector can free it


def test_settled_objects_survive_and_leave_the_collected_generations() -> None:
    kept = _Node()
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    try:
        frozen = settle_heap()
        assert gone() is None, "garbage is collected before anything is frozen"
        assert frozen >= 1
        assert not any(obj is kept for obj in gc.get_objects(generation=2))
        assert kept.me is kept
    finally:
        gc.unfreeze()
