"""A province started before its hub says that it is waiting for the hub (it waits up to 30 s
for it, which used to pass in silence), then registers once the hub is up."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

import nodes.province
from nodes.hub import HubNode
from nodes.province import ProvinceNode
from tests.integration.conftest import copy_world

pytestmark = pytest.mark.integration


class _Said(logging.Handler):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.WARNING)
        self.loop, self.event, self.lines = loop, asyncio.Event(), []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.loop.call_soon_threadsafe(self.event.set)


def test_a_province_started_before_its_hub_says_it_waits_then_registers(
        pki_dir: Path, world_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodes.province, "_SAY_WAITING_S", 0.2)
    data = copy_world(world_dir, tmp_path)
    with socket.socket() as s:  # a free loopback port for the hub, which is not up yet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go() -> None:
        said = _Said(asyncio.get_running_loop())
        logger = logging.getLogger("nodes.province")
        logger.addHandler(said)
        node = ProvinceNode(code="440000", pki_dir=pki_dir, data_dir=data, hub=f"127.0.0.1:{port}")
        hub = HubNode(pki_dir=pki_dir, data_dir=data)
        starting = asyncio.ensure_future(node.start("127.0.0.1:0"))
        try:
            await asyncio.wait_for(said.event.wait(), 10)
            assert said.lines == [f"node 440000: waiting for the hub at 127.0.0.1:{port} to answer (up to 30 s in all)"]
            assert not starting.done()
            await hub.start(f"127.0.0.1:{port}")
            await asyncio.wait_for(starting, 30)
            assert node.core.current_directory().version >= 1
        finally:
            logger.removeHandler(said)
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            await node.stop(0.5)
            await hub.stop(0.5)

    asyncio.run(go())
