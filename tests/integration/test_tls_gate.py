"""The TLS gate (nodes/tls_gate.py) in front of a tiny insecure grpc.aio echo server.

Every test runs under the default asyncio loop and under uvloop. Clients are real
grpc.aio channels (or raw sockets for what grpc would never send); readiness is
the listeners' own start and the refusal hook's own call, never a sleep.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import ssl
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import uvloop
from cryptography import x509
from cryptography.x509.oid import NameOID

from certs.pki import NodeCredentials, issue_leaf, load_node_credentials, make_foreign_pki
from nodes import tls_gate
from nodes.tls_gate import TlsGate
from tests.legacy_pki import without_eku

pytestmark = pytest.mark.integration

HUB, ME = "000000", "440000"
UNARY, STREAM = "/gate.test.Echo/Unary", "/gate.test.Echo/Stream"
WANT = "expected a client certificate issued under the tongban national root CA, found"
PROTO = "expected a TLS 1.2 or 1.3 handshake offering ALPN h2, found"
WANT_TLS = "expected a TLS client certificate (extended key usage clientAuth), found"
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    """Run a test coroutine on a fresh loop of the parametrised kind; afterwards, no error
    reached the loop's exception handler and no ResourceWarning was raised."""
    def runner(coro: Coroutine[Any, Any, None]) -> None:
        errors: list[str] = []

        async def main() -> None:
            asyncio.get_running_loop().set_exception_handler(
                lambda loop, context: errors.append(f"{context['message']}: {context.get('exception')!r}"))
            await coro

        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with asyncio.Runner(loop_factory=LOOPS[request.param]) as r:
                r.run(main())
            gc.collect()
        assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
        assert errors == []
    return runner


@dataclass
class Pki:
    hub: NodeCredentials
    me: NodeCredentials
    foreign: NodeCredentials
    expired: tuple[bytes, bytes]  # (chain: leaf, intermediate, root; key)
    #: 440000's signing and issuing-authority certificates (chain, key), as made now
    #: ("sign", "issuer": EKU documentSigning) and by an older PKI ("old-sign", "old-issuer": no EKU)
    not_tls: dict[str, tuple[bytes, bytes]]


@pytest.fixture(scope="module")
def pki(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    tmp = tmp_path_factory.mktemp("gate")
    foreign = load_node_credentials(make_foreign_pki(tmp / "foreign", ME).root, ME)
    out = tmp / "expired"
    issue_leaf(pki_dir, ME, "tls", now=datetime.now(UTC) - timedelta(days=30), valid_days=1, out_dir=out)
    expired = ((out / "tls.crt").read_bytes() + (out / "chain.pem").read_bytes(), (out / "tls.key").read_bytes())
    node = pki_dir / "nodes" / ME
    not_tls = {kind: ((node / f"{kind}.crt").read_bytes() + (node / "chain.pem").read_bytes(),
                      (node / f"{kind}.key").read_bytes()) for kind in ("sign", "issuer")}
    for kind in ("sign", "issuer"):
        _, chain, key = without_eku(pki_dir, ME, kind)
        not_tls[f"old-{kind}"] = (chain, key)
    return Pki(load_node_credentials(pki_dir, HUB), load_node_credentials(pki_dir, ME), foreign, expired, not_tls)


def cn(pem: bytes | None) -> str:
    assert pem is not None
    return str(x509.load_pem_x509_certificate(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@dataclass
class Rig:
    """An insecure echo server on loopback, the gate in front of it, and what both saw."""

    pki: Pki
    gate: TlsGate
    port: int
    refused: asyncio.Queue[tuple[str, str, str]]
    certs: list[bytes | None] = field(default_factory=list)  # peer_cert_pem seen by each handler call
    peers: list[str] = field(default_factory=list)  # context.peer() of each handler call

    def channel(self, chain: bytes | None, key: bytes | None) -> grpc.aio.Channel:
        creds = grpc.ssl_channel_credentials(self.pki.hub.root_pem, key, chain)
        return grpc.aio.secure_channel(f"127.0.0.1:{self.port}", creds,
                                       options=[("grpc.ssl_target_name_override", f"node-{HUB}.tongban.test")])

    async def refusal(self) -> tuple[str, str, str]:
        return await asyncio.wait_for(self.refused.get(), 10)

    async def echo_works(self) -> None:
        """A valid node certificate (province 440000) gets its echo, and is seen as itself."""
        async with self.channel(self.pki.me.tls_chain_pem, self.pki.me.tls_key_pem) as ch:
            assert await ch.unary_unary(UNARY)(b"\x01" * 1500, timeout=10) == b"\x01" * 1500
        assert cn(self.certs[-1]) == ME


@asynccontextmanager
async def rig(pki: Pki, *, backend_host: str = "127.0.0.1", backend_port: int | None = None,
              backend_unix: str | None = None, **gate_options: Any) -> AsyncIterator[Rig]:
    """``backend_unix``: the server listens on that abstract Unix socket instead of TCP."""
    refused: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
    gate = TlsGate(pki.hub.tls_chain_pem, pki.hub.tls_key_pem, pki.hub.root_pem, (backend_host, 0),
                   lambda *event: refused.put_nowait(event), **gate_options)
    r = Rig(pki, gate, 0, refused)

    def seen(context: grpc.aio.ServicerContext) -> None:
        r.peers.append(context.peer())
        r.certs.append(gate.peer_cert_pem(r.peers[-1]))

    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen(context)
        return request

    async def stream(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        async for request in requests:
            seen(context)
            yield request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gate.test.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.stream_stream_rpc_method_handler(stream)}),))
    if backend_unix is not None:
        server.add_insecure_port(f"unix-abstract:{backend_unix}")
        await server.start()
        gate.backend = backend_unix
    else:
        listen = f"[{backend_host}]:0" if ":" in backend_host else f"{backend_host}:0"
        bound = server.add_insecure_port(listen)
        await server.start()
        gate.backend = (backend_host, bound if backend_port is None else backend_port)
    r.port = await gate.start("127.0.0.1", 0)
    try:
        yield r
    finally:
        await gate.stop()
        await server.stop(None)
        del server


async def unavailable(rig: Rig, chain: bytes | None, key: bytes | None) -> grpc.aio.AioRpcError:
    async with rig.channel(chain, key) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await ch.unary_unary(UNARY)(b"hello", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    return e.value


def client_hello(pki: Pki) -> bytes:
    """The first flight of a TLS client that will never send its second."""
    obj = ssl.create_default_context(cadata=pki.hub.root_pem.decode()).wrap_bio(
        ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname=f"node-{HUB}.tongban.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def refused_as(event: tuple[str, str, str], reason: str, found: str) -> str:
    """Check a refusal event; returns its peer address."""
    addr, got, message = event
    host, _, port = addr.rpartition(":")
    assert (host, port.isdigit(), got) == ("127.0.0.1", True, reason)
    assert message == f"TLS handshake from {addr} refused: {found}"
    return addr


def test_valid_client_gets_echo_over_unary_and_stream_and_is_known_by_its_certificate(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki) as r:
            async with r.channel(pki.me.tls_chain_pem, pki.me.tls_key_pem) as ch:
                assert await ch.unary_unary(UNARY)(b"a" * 1500, timeout=10) == b"a" * 1500
                call = ch.stream_stream(STREAM)(timeout=10)
                for i in range(3):
                    await call.write(bytes([i]) * 1500)
                    assert await call.read() == bytes([i]) * 1500
                await call.done_writing()
                assert await call.code() == grpc.StatusCode.OK
                assert (r.gate.active, r.gate.stats.accepted) == (1, 1)  # one HTTP/2 connection
            assert r.certs == [pki.me.tls_cert_pem] * 4  # the leaf alone, byte for byte
            assert cn(r.certs[0]) == ME
            assert r.gate.peer_cert_pem("ipv4:127.0.0.1:1") is None
            assert r.gate.peer_cert_pem("unix:/tmp/x") is None
            assert r.refused.empty() and r.gate.stats.refused == {}
    run(go())


def test_backend_over_ipv6_loopback_is_looked_up_from_an_ipv6_peer(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki, backend_host="::1") as r:
            await r.echo_works()
            assert r.certs == [pki.me.tls_cert_pem]
    run(go())


def unix_name() -> str:
    return f"tongban-test-{os.getpid()}-{next(UNIX_NAMES)}"


UNIX_NAMES = iter(range(10**6))
linux_only = pytest.mark.skipif(not tls_gate.abstract_unix_sockets(), reason="abstract Unix sockets are Linux's")


@linux_only
def test_backend_over_abstract_unix_socket_knows_the_client_by_the_name_the_gate_bound(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki, backend_unix=unix_name()) as r:
            async with r.channel(pki.me.tls_chain_pem, pki.me.tls_key_pem) as ch:
                assert await ch.unary_unary(UNARY)(b"a" * 1500, timeout=10) == b"a" * 1500
                call = ch.stream_stream(STREAM)(timeout=10)
                await call.write(b"b" * 1500)
                assert await call.read() == b"b" * 1500
                await call.done_writing()
                assert await call.code() == grpc.StatusCode.OK
            assert r.certs == [pki.me.tls_cert_pem] * 2
            scheme, _, name = r.peers[0].partition(":")
            assert (scheme, name.startswith(f"tongban-gate-{os.getpid()}-"), r.peers[1]) == (
                "unix-abstract", True, r.peers[0])
            assert r.gate.peer_cert_pem("unix-abstract:tongban-gate-0-0") is None
            assert r.gate.peer_cert_pem("unix:") is None
    run(go())


@linux_only
def test_abstract_name_held_by_another_socket_is_skipped(run: Any, pki: Pki) -> None:
    """A local process may squat the next name the gate would bind: the gate takes the one
    after it, and the squatter is never taken for the client."""
    async def go() -> None:
        async with rig(pki, backend_unix=unix_name()) as r:
            n = next(tls_gate._NAMES)
            with socket.socket(socket.AF_UNIX) as squatter:
                squatter.bind(f"\0tongban-gate-{os.getpid()}-{n + 1}")
                await r.echo_works()
            assert r.peers == [f"unix-abstract:tongban-gate-{os.getpid()}-{n + 2}"]
            assert r.gate.peer_cert_pem(f"unix-abstract:tongban-gate-{os.getpid()}-{n + 1}") is None
    run(go())


@linux_only
def test_unix_backend_down_is_reported_as_backend_unavailable(run: Any, pki: Pki) -> None:
    async def go() -> None:
        name = unix_name()
        async with rig(pki, backend_unix=name) as r:
            r.gate.backend = name + "-gone"
            await unavailable(r, pki.me.tls_chain_pem, pki.me.tls_key_pem)
            addr, reason, message = await r.refusal()
            assert reason == "backend_unavailable"
            assert message == (f"connection from {addr} refused after its TLS handshake: expected the gRPC "
                               f"server at unix-abstract:{name}-gone to accept a connection, "
                               "found Connection refused")
            assert (r.gate.stats.accepted, r.gate.active) == (0, 0)
    run(go())


def test_no_client_certificate_is_refused_and_reported(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki) as r:
            await unavailable(r, None, None)
            refused_as(await r.refusal(), "tls_no_client_cert", f"{WANT} none")
            await r.echo_works()
            assert r.refused.empty() and r.gate.stats.refused == {"tls_no_client_cert": 1}
            assert r.gate.stats.accepted == 1
    run(go())


def test_foreign_ca_certificate_is_refused_as_unknown_ca(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki) as r:
            await unavailable(r, pki.foreign.tls_chain_pem, pki.foreign.tls_key_pem)
            refused_as(await r.refusal(), "tls_unknown_ca",
                       f"{WANT} one from another authority (unable to get local issuer certificate)")
            await r.echo_works()
            assert r.refused.empty()
    run(go())


def test_expired_client_certificate_is_refused_as_expired(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki) as r:
            await unavailable(r, *pki.expired)
            refused_as(await r.refusal(), "tls_cert_expired", f"{WANT} a certificate that has expired")
            await r.echo_works()
            assert r.refused.empty()
    run(go())


@pytest.mark.parametrize("kind", ["sign", "issuer"])
def test_signing_or_issuing_authority_certificate_is_refused_as_not_a_tls_certificate(
        run: Any, pki: Pki, kind: str) -> None:
    """Key separation: a node's envelope-signing or e-certificate issuing-authority key is no
    TLS identity. OpenSSL refuses it in the handshake (its EKU lacks clientAuth); the gate
    ledgers why."""
    async def go() -> None:
        async with rig(pki) as r:
            await unavailable(r, *pki.not_tls[kind])
            refused_as(await r.refusal(), "tls_not_tls_cert",
                       f"{WANT_TLS} a certificate that is not a TLS certificate (unsuitable certificate purpose)")
            await r.echo_works()
            assert r.refused.empty() and r.gate.stats.refused == {"tls_not_tls_cert": 1}
            assert r.certs == [pki.me.tls_cert_pem]  # the handler never saw the signing certificate
    run(go())


@pytest.mark.parametrize(("kind", "ou"), [("sign", "sign"), ("issuer", "ecert-issuer")])
def test_signing_certificate_without_any_eku_from_an_older_pki_is_refused_naming_its_node(
        run: Any, pki: Pki, kind: str, ou: str) -> None:
    """A PKI made before the signing profiles had an EKU: OpenSSL takes such a certificate for
    any purpose and completes the handshake; the gate itself refuses it before any byte
    reaches the server."""
    async def go() -> None:
        async with rig(pki) as r:
            await unavailable(r, *pki.not_tls[f"old-{kind}"])
            refused_as(await r.refusal(), "tls_not_tls_cert",
                       f"{WANT_TLS} the certificate of {ME} (CN={ME} OU={ou}), which is not a TLS certificate "
                       "(no clientAuth extended key usage)")
            await r.echo_works()
            assert r.refused.empty() and r.gate.stats.refused == {"tls_not_tls_cert": 1}
            assert (r.certs, r.gate.stats.accepted) == ([pki.me.tls_cert_pem], 1)
    run(go())


def test_garbage_bytes_are_refused_as_not_tls(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki) as r:
            reader, writer = await asyncio.open_connection("127.0.0.1", r.port)
            host, port = writer.get_extra_info("sockname")[:2]
            writer.write(b"\x00\x01 this is not TLS \xff" * 8)
            assert await reader.read() == b""  # closed without a word
            writer.close()
            await writer.wait_closed()
            addr = refused_as(await r.refusal(), "tls_protocol",
                              f"{PROTO} bytes that are not a TLS handshake (WRONG_VERSION_NUMBER)")
            assert addr == f"{host}:{port}"
            await r.echo_works()
            assert r.refused.empty()
    run(go())


def test_tls_client_without_alpn_h2_is_refused(run: Any, pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_bytes(pki.me.tls_chain_pem)
    (tmp_path / "k.pem").write_bytes(pki.me.tls_key_pem)
    ctx = ssl.create_default_context(cadata=pki.hub.root_pem.decode())
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    ctx.set_alpn_protocols(["http/1.1"])

    async def go() -> None:
        async with rig(pki) as r:
            reader, writer = await asyncio.open_connection("127.0.0.1", r.port, ssl=ctx,
                                                           server_hostname=f"node-{HUB}.tongban.test")
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() is None
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
            refused_as(await r.refusal(), "tls_protocol", f"{PROTO} a client that did not offer ALPN h2")
            assert r.gate.stats.accepted == 0
    run(go())


def test_silent_client_is_refused_when_the_handshake_times_out(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki, handshake_timeout_s=0.3) as r:
            reader, writer = await asyncio.open_connection("127.0.0.1", r.port)
            refused_as(await r.refusal(), "tls_protocol", f"{PROTO} no completed handshake within 0.3 s")
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
    run(go())


def test_handshakes_done_waits_for_the_handshake_under_way_and_its_report(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki) as r:
            await r.gate.handshakes_done()  # none under way: returns at once
            reader, writer = await asyncio.open_connection("127.0.0.1", r.port)
            writer.write(b"\x16\x03\x01\x02\x00")  # the start of a ClientHello, and no more
            await writer.drain()
            waiting = asyncio.ensure_future(r.gate.handshakes_done())
            done, _ = await asyncio.wait([waiting], timeout=0.2)
            assert not done and r.gate.stats.refused == {}  # the handshake is still open
            writer.close()
            await writer.wait_closed()
            await asyncio.wait_for(waiting, 10)
            assert r.gate.stats.refused == {"tls_protocol": 1}  # reported before it returned
            refused_as(r.refused.get_nowait(), "tls_protocol",
                       f"{PROTO} the connection closed before the handshake completed")
            assert await reader.read() == b""
    run(go())


def test_connections_beyond_max_handshakes_are_closed_at_once_as_busy(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki, max_handshakes=1) as r:
            _, first = await asyncio.open_connection("127.0.0.1", r.port)  # holds the only slot
            reader, second = await asyncio.open_connection("127.0.0.1", r.port)
            assert await reader.read() == b""
            addr = refused_as(await r.refusal(), "tls_busy",
                              "expected a free handshake slot (at most 1 at once), found 1 in progress")
            assert addr == f"127.0.0.1:{second.get_extra_info('sockname')[1]}"
            first.close()
            second.close()
            await first.wait_closed()
            await second.wait_closed()
            refused_as(await r.refusal(), "tls_protocol",
                       f"{PROTO} the connection closed before the handshake completed")
            await r.echo_works()  # the slot is free again
            assert r.gate.stats.refused == {"tls_busy": 1, "tls_protocol": 1}
    run(go())


def test_backend_down_is_reported_as_backend_unavailable(run: Any, pki: Pki) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]

    async def go() -> None:
        async with rig(pki, backend_port=dead) as r:
            await unavailable(r, pki.me.tls_chain_pem, pki.me.tls_key_pem)
            addr, reason, message = await r.refusal()
            assert reason == "backend_unavailable"
            assert message == (f"connection from {addr} refused after its TLS handshake: expected the gRPC "
                               f"server at 127.0.0.1:{dead} to accept a connection, found Connection refused")
            assert (r.gate.stats.accepted, r.gate.active) == (0, 0)
    run(go())


def test_backend_hanging_up_closes_the_client_connection_at_once(run: Any, pki: Pki) -> None:
    """grpc clients ignore a bare close_notify: the gate must end the TCP stream too, or the
    client would wait out its deadline (10 s here; the gate's shutdown timeout is 60 s)."""
    async def go() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)  # the HTTP/2 preface has begun: the gate relays
            writer.close()
            await writer.wait_closed()

        backend = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        try:
            async with rig(pki, backend_port=backend.sockets[0].getsockname()[1], handshake_timeout_s=60) as r:
                e = await unavailable(r, pki.me.tls_chain_pem, pki.me.tls_key_pem)
                assert "Socket closed" in (e.details() or "")
                assert (r.gate.stats.accepted, r.refused.empty()) == (1, True)
        finally:
            backend.close()
            await backend.wait_closed()
    run(go())


def test_stop_closes_listener_handshakes_and_relayed_connections(run: Any, pki: Pki) -> None:
    async def go() -> None:
        async with rig(pki) as r:
            async with r.channel(pki.me.tls_chain_pem, pki.me.tls_key_pem) as ch:
                call = ch.stream_stream(STREAM)(timeout=10)
                await call.write(b"x")
                assert await call.read() == b"x"
                reader, half = await asyncio.open_connection("127.0.0.1", r.port)
                half.write(client_hello(pki))
                assert await reader.read(1) == b"\x16"  # a handshake record: the gate is mid-handshake
                assert (r.gate.active, r.gate.stats.accepted) == (1, 1)
                await r.gate.stop()
                assert (r.gate.active, r.gate._tasks, r.gate._certs) == (0, set(), {})
                assert not [t for t in asyncio.all_tasks() if "TlsGate" in repr(t.get_coro())]
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await call.read()
                assert e.value.code() == grpc.StatusCode.UNAVAILABLE
                await reader.read()  # the rest of the gate's flight, then end of stream (no reset)
                assert reader.at_eof()
                half.close()
                await half.wait_closed()
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection("127.0.0.1", r.port)
            assert r.certs == [pki.me.tls_cert_pem]
    run(go())
