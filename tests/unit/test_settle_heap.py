"""A serving node collects, then freezes its start-up heap, so full collections skip it."""

from __future__ import annotations

import gc
import weakref

from nodes.process import settle_heap


class _Node:
    """A gc-tracked object, like the directory or a key a node keeps all its life."""

    def __init__(self) -> None:
        self.peer: _Node | None = None


def test_settle_heap_collects_garbage_then_freezes_what_lives() -> None:
    kept = _Node()
    cycle = _Node()
    cycle.peer = cycle  # garbage only a collection can free
    gone = weakref.ref(cycle)
    del cycle
    gc.unfreeze()
    try:
        assert any(o is kept for o in gc.get_objects())
        settle_heap()
        assert gone() is None  # collected before the freeze, not frozen forever
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # frozen: no generation holds it
    finally:
        gc.unfreeze()
