"""A small country on loopback: the hub and three provinces, real gRPC over mTLS.

The servers run on their own event loop in a background thread, on port 0;
tests talk to them with ordinary synchronous gRPC clients, as any outside
client would. Readiness is the servers' own start (and each province's
registration round trip), never a sleep.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from certs.pki import load_client_credentials, load_node_credentials
from nodes.hub import HubNode
from nodes.province import ProvinceNode

T = TypeVar("T")
PROVINCES = ("110000", "440000", "510000")


class Country:
    def __init__(self, pki: Path, data: Path, *, topology: str = "star",
                 provinces: tuple[str, ...] = PROVINCES) -> None:
        self.pki, self.data, self.topology = pki, data, topology
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="country", daemon=True)
        self.thread.start()
        self.hub = self.call(self._make_hub())
        self.hub_port = self.call(self.hub.start("127.0.0.1:0"))
        self.provinces: dict[str, ProvinceNode] = {}
        for code in provinces:
            node = self.call(self._make_province(code))
            self.call(node.start("127.0.0.1:0"))
            self.provinces[code] = node

    async def _make_hub(self) -> HubNode:
        return HubNode(pki_dir=self.pki, data_dir=self.data, topology=self.topology)

    async def _make_province(self, code: str) -> ProvinceNode:
        return ProvinceNode(code=code, pki_dir=self.pki, data_dir=self.data, hub=f"127.0.0.1:{self.hub_port}")

    async def _handshakes_done(self) -> None:
        for node in (self.hub, *self.provinces.values()):
            if node.server is not None and node.server.gate is not None:
                await node.server.gate.handshakes_done()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=60)

    def close(self) -> None:
        for node in self.provinces.values():
            self.call(node.stop(0.5))
        self.call(self.hub.stop(0.5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def flush_ledgers(self) -> None:
        """Commit every node's ledger rows, once the handshakes its TLS gate is still
        deciding have ended (a refused client can fail before the gate ledgers why)."""
        self.call(self._handshakes_done())
        self.hub.core.ledger.flush()
        for node in self.provinces.values():
            node.core.ledger.flush()

    # -- clients ------------------------------------------------------------
    @property
    def hub_target(self) -> str:
        return f"127.0.0.1:{self.hub_port}"

    def node_channel(self, code: str, *, target: str | None = None, peer: str = "000000") -> grpc.Channel:
        """A sync channel presenting node ``code``'s TLS certificate."""
        c = load_node_credentials(self.pki, code)
        creds = grpc.ssl_channel_credentials(root_certificates=c.root_pem, private_key=c.tls_key_pem,
                                             certificate_chain=c.tls_chain_pem)
        return grpc.secure_channel(target or self.hub_target, creds,
                                   options=[("grpc.ssl_target_name_override", f"node-{peer}.tongban.test")])

    def window_channel(self, code: str) -> grpc.Channel:
        chain, key, root = load_client_credentials(self.pki)
        creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
        return grpc.secure_channel(self.provinces[code].endpoint, creds,
                                   options=[("grpc.ssl_target_name_override", f"node-{code}.tongban.test")])


def copy_world(world_dir: Path, data: Path) -> Path:
    """A fresh data directory holding the session world (each country owns its databases)."""
    for f in world_dir.iterdir():
        shutil.copy(f, data / f.name)
    return data


C = TypeVar("C", bound=Country)


def running(country: C) -> Iterator[C]:
    """A country fixture's body (``yield from running(...)``): the country, closed however the tests end."""
    try:
        yield country
    finally:
        country.close()


@pytest.fixture(scope="module")
def country(pki_dir: Path, world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Country]:
    yield from running(Country(pki_dir, copy_world(world_dir, tmp_path_factory.mktemp("data"))))
