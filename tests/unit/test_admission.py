from __future__ import annotations

import asyncio

import pytest

from exchange.errors import OverloadedError
from exchange.replay import ReplayWindow
from nodes.admission import Admission
from tongban.v1 import envelope_pb2


def _env(n: int) -> envelope_pb2.Envelope:
    return envelope_pb2.Envelope(payload_type="t", payload=str(n).encode())


def test_answers_are_forgotten_once_their_message_expired() -> None:
    async def go() -> Admission:
        a = Admission(ReplayWindow(), max_inflight=10_000)
        for i in range(600):
            t = a.admit(_env(i), message_id=f"m{i}", peer="p", expires_ns=1)  # long expired
            t.done(_env(i))
            t.release()
        return a
    a = asyncio.run(go())
    assert len(a.entries) < 256  # pruned as it went, not kept until max_entries
    assert a.inflight == 0


def test_shedding_forgets_the_message_so_a_retry_is_welcome() -> None:
    async def go() -> None:
        replay = ReplayWindow()
        replay.check_and_add("m1", forget_after_ns=10**19, now_ns=0)
        a = Admission(replay, max_inflight=0)
        with pytest.raises(OverloadedError, match="node at capacity: 0 requests in progress"):
            a.admit(_env(1), message_id="m1", peer="p", expires_ns=10**19)
        assert "m1" not in replay
    asyncio.run(go())
