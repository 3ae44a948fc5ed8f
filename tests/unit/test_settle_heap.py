"""A serving node freezes its start-up heap, so full collections skip it."""

from __future__ import annotations

import gc

from nodes.process import settle_heap


def test_settle_heap_freezes_what_start_up_left() -> None:
    start_up = [{"key": i} for i in range(1000)]  # stands in for the directory, keys, modules
    gc.unfreeze()
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(start_up)
    finally:
        gc.unfreeze()
