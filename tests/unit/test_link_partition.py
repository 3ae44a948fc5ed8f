"""A partitioned link delivers nothing while it lasts: a message waits for it to heal, as
TCP keeps retransmitting, and crosses then; if it has not healed by the call's deadline,
the call fails as unavailable. (It used to wait out the whole deadline even when the link
healed a moment later.)"""

from __future__ import annotations

import asyncio

import pytest

from exchange.errors import PeerUnavailableError
from nodes.link import Link, LinkShim


def test_a_partition_that_never_heals_fails_the_call_at_its_deadline() -> None:
    async def go() -> None:
        shim = LinkShim()
        shim.set("440000", partitioned=True)
        with pytest.raises(PeerUnavailableError) as info:
            await shim.cross("440000", timeout_s=0.2)
        assert str(info.value) == "link between 440000 and the hub is partitioned: nothing arrived within 0.2 s"
        shim.set("110000", partitioned=True)
        with pytest.raises(PeerUnavailableError) as info:
            await shim.cross_pair("110000", "440000", timeout_s=0.2)
        assert str(info.value) == "110000 is partitioned: nothing arrived from the path 110000–440000 within 0.2 s"

    asyncio.run(go())


def test_a_message_waiting_on_a_partition_crosses_when_it_heals() -> None:
    async def go() -> None:
        shim = LinkShim()
        shim.set("440000", partitioned=True)
        shim.set("110000", partitioned=True)
        waiting = [asyncio.ensure_future(shim.cross("440000", timeout_s=60)),
                   asyncio.ensure_future(shim.cross_pair("110000", "440000", timeout_s=60))]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiting)  # nothing crosses while the partition lasts
        shim.set("440000", partitioned=False)  # heal the first, as the fault's end does
        await asyncio.wait_for(waiting[0], 5)  # well before its 60 s deadline
        assert not waiting[1].done()  # 110000 is still cut off
        shim.set("110000", partitioned=False)
        await asyncio.wait_for(waiting[1], 5)

    asyncio.run(go())


def test_a_partition_given_at_start_heals_too() -> None:
    async def go() -> None:
        shim = LinkShim({"540000": Link(partitioned=True)})  # as a links file gives it
        crossing = asyncio.ensure_future(shim.cross("540000", timeout_s=60))
        await asyncio.sleep(0)
        shim.set("540000", partitioned=False)
        await asyncio.wait_for(crossing, 5)

    asyncio.run(go())
