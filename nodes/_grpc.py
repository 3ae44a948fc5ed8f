"""gRPC plumbing shared by every node: mTLS credentials, servers, channels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nodes._status import ErrorInterceptor, UndecodableHook
from nodes.tls_gate import RefusedHook, TlsGate, abstract_unix_sockets, not_a_tls_client

__all__ = [
    "MAX_GRPC_MESSAGE_BYTES",
    "Served",
    "TlsMaterial",
    "build_server",
    "start_server",
    "mark_serving",
    "not_serving_when_ledger_fails",
    "channel_credentials",
    "open_channel",
    "peer_code",
    "server_credentials",
    "tls_name",
]

_log = logging.getLogger(__name__)

#: gRPC's own limit sits above the directory's envelope limit, so an oversize
#: envelope reaches tongban's check (and the ledger) instead of dying in the transport.
MAX_GRPC_MESSAGE_BYTES = 8 * 1024 * 1024

_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
    # a node that went down and came back is reachable again within a second. Not
    # grpc.min_reconnect_backoff_ms: grpc core also takes it as the minimum *connect
    # timeout*, so at 100 ms a TLS handshake slowed by a burst of new connections
    # (every pair of a direct topology at once) failed with "connection attempt timed
    # out before receiving SETTINGS frame"; left unset, a connection attempt has 20 s.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def tls_name(code: str) -> str:
    """The DNS name every node's TLS certificate carries; clients verify it."""
    return f"node-{code}.tongban.test"


def server_credentials(*, key_pem: bytes, chain_pem: bytes, root_pem: bytes) -> grpc.ServerCredentials:
    """mTLS: present our chain, demand a client certificate from the national root."""
    return grpc.ssl_server_credentials([(key_pem, chain_pem)], root_certificates=root_pem, require_client_auth=True)


def channel_credentials(*, key_pem: bytes, chain_pem: bytes, root_pem: bytes) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=root_pem, private_key=key_pem, certificate_chain=chain_pem)


def open_channel(target: str, creds: grpc.ChannelCredentials, *, peer: str) -> grpc.aio.Channel:
    """A channel to node ``peer`` at ``target``; the server must prove it is ``peer``."""
    options = [*_OPTIONS, ("grpc.ssl_target_name_override", tls_name(peer))]
    return grpc.aio.secure_channel(target, creds, options=options)


_PEERS: dict[bytes, str] = {}


def _identity(pem: bytes) -> str:
    """The node code (or ``window``) a verified client certificate speaks for.

    The common name alone is not enough: any provincial intermediate could issue a
    certificate named ``000000`` or ``window``. A node code counts only when the
    certificate was issued by that node's own intermediate, and ``window`` only
    when issued by the hub's (TLS already proved the issuer signed it). Nor is the
    name enough from a certificate that is not for TLS (its extended key usage lacks
    clientAuth: a node's signing or issuing-authority certificate): that is
    ``?<cn> (not a TLS certificate)``, which no check takes for a node."""
    cert = x509.load_pem_x509_certificate(pem)
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    issuer = [a.value for a in cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(cn) != 1 or len(issuer) != 1:
        return ""
    if not_a_tls_client(cert) is not None:
        return f"?{cn[0]!s} (not a TLS certificate)"
    owner = "000000" if cn[0] == "window" else cn[0]
    return str(cn[0]) if issuer[0] == f"{owner} intermediate CA" else f"?{cn[0]!s}"


#: The TLS gates serving in this process (nodes/tls_gate.py): behind a gate, the
#: gRPC server sees a local connection, and the gate knows whose certificate it carries.
_GATES: list[TlsGate] = []
#: The gate's hop to its gRPC server: an abstract Unix socket where the platform has them
#: (a loopback TCP round trip costs ≈ 30 µs more; bench/gate.py measures both), else TCP.
GATE_OVER_UNIX_SOCKET = abstract_unix_sockets()


def peer_code(context: grpc.aio.ServicerContext) -> str:
    """The node code (or ``window``) of the mTLS client, bound to its issuing CA;
    ``?<cn>`` for a certificate whose name its issuer may not give; "" for none."""
    pems = context.auth_context().get("x509_pem_cert") or []
    if pems:
        pem = pems[0]
    else:
        peer = context.peer()
        pem = next((p for gate in _GATES if (p := gate.peer_cert_pem(peer)) is not None), None)
        if pem is None:
            return ""
    code = _PEERS.get(pem)
    if code is None:
        code = _identity(pem)
        if len(_PEERS) > 4096:
            _PEERS.clear()
        _PEERS[pem] = code
    return code


async def mark_serving(health_servicer: health.aio.HealthServicer, names: Iterable[str]) -> None:
    """Report each of our services SERVING by name (the overall status "" already is)."""
    for name in names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


def build_server(
    *,
    creds: grpc.ServerCredentials | None,
    listen: str,
    services: Iterable[tuple[Any, Any, str]],
    on_undecodable: UndecodableHook | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A grpc.aio server with our services, health checking and reflection.

    ``services`` holds (add_XServicer_to_server, servicer, full service name).
    ``creds`` None listens without TLS (only behind a TLS gate, on loopback).
    Returns the server (not started), the bound port and the health servicer.
    """
    server = grpc.aio.server(interceptors=[ErrorInterceptor(on_undecodable)], options=_OPTIONS)
    names = []
    for add, servicer, name in services:
        add(servicer, server)
        names.append(name)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names += [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    port = server.add_secure_port(listen, creds) if creds is not None else server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"could not listen on {listen}")
    return server, port, health_servicer


@dataclass(frozen=True)
class TlsMaterial:
    """A node's TLS key, certificate chain (leaf first) and the national root, PEM."""

    key_pem: bytes
    chain_pem: bytes
    root_pem: bytes


@dataclass
class Served:
    """A running node server: gRPC, and the TLS gate in front of it (if any)."""

    server: grpc.aio.Server
    port: int
    gate: TlsGate | None
    health: health.aio.HealthServicer | None = None
    #: the services it reports on by name (the overall status "" besides)
    names: tuple[str, ...] = ()
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def not_serving(self) -> None:
        """Report the server and each of its services NOT_SERVING (it keeps answering, with refusals)."""
        if self.health is not None:
            for name in ("", *self.names):
                await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def stop(self, grace_s: float | None) -> None:
        if self.gate is not None:
            await self.gate.stop()
            _GATES.remove(self.gate)
        await self.server.stop(grace_s)


async def start_server(
    *,
    tls: TlsMaterial,
    listen: str,
    services: Iterable[tuple[Any, Any, str]],
    on_undecodable: UndecodableHook | None = None,
    gate: bool = True,
    on_refused: RefusedHook | None = None,
) -> Served:
    """Start a node's server on ``listen``, every service reported SERVING.

    With ``gate`` (the default) the mTLS handshake is done by a TLS gate on
    ``listen`` (nodes/tls_gate.py), which reports every refused handshake to
    ``on_refused`` (the node's ledger) and relays accepted connections to the gRPC
    server listening without TLS on an abstract Unix socket named after this process
    (Linux), or on 127.0.0.1; the peer's identity still comes from its verified
    certificate (``peer_code``). Without it, grpcio does the handshake
    and refuses bad clients before any tongban code can see them.
    """
    services = list(services)  # read twice: to build the server and to report on them by name
    names = tuple(name for _, _, name in services)
    if not gate:
        creds = server_credentials(key_pem=tls.key_pem, chain_pem=tls.chain_pem, root_pem=tls.root_pem)
        server, port, health = build_server(creds=creds, listen=listen, services=services,
                                            on_undecodable=on_undecodable)
        await server.start()
        await mark_serving(health, names)
        return Served(server, port, None, health, names)
    host, _, port_text = listen.rpartition(":")
    unix = f"tongban-{os.getpid()}-{secrets.token_hex(6)}" if GATE_OVER_UNIX_SOCKET else ""
    server, backend_port, health = build_server(creds=None, listen=f"unix-abstract:{unix}" if unix else "127.0.0.1:0",
                                                services=services, on_undecodable=on_undecodable)
    backend: tuple[str, int] | str = unix or ("127.0.0.1", backend_port)
    await server.start()
    front = TlsGate(tls.chain_pem, tls.key_pem, tls.root_pem, backend, on_refused)
    try:
        port = await front.start(host.strip("[]"), int(port_text or 0))
    except BaseException as e:  # a bad port too: stop the server now, not in its __del__ after the loop closed
        await server.stop(None)
        if isinstance(e, OSError):  # grpc's wording when it binds the port itself, which `tongban node` explains
            raise OSError(f"Failed to bind to address {listen}; {e.strerror or e}") from e
        raise
    _GATES.append(front)
    await mark_serving(health, names)
    return Served(server, port, front, health, names)


def not_serving_when_ledger_fails(current: Callable[[], Served | None], ledger: Any, code: str) -> None:
    """Turn the health of node ``code``'s server (``current()``: the one serving then, as a node
    taken down and brought up again serves anew) NOT_SERVING if its ledger writer fails: the
    node then refuses every request as UNAVAILABLE (``NodeCore.ensure_recording``), and health
    checks, load balancers and ``tongban`` runners see it too. Call it once per node."""
    loop = asyncio.get_running_loop()

    def spawn() -> None:
        served = current()
        if served is not None:
            task = loop.create_task(served.not_serving())
            served._tasks.add(task)
            task.add_done_callback(served._tasks.discard)

    def failed(error: Exception) -> None:  # on the ledger's thread
        _log.error("node %s: its ledger failed, so it reports NOT_SERVING and refuses work: %s", code, error)
        with contextlib.suppress(RuntimeError):  # the loop has closed: the node is gone anyway
            loop.call_soon_threadsafe(spawn)

    ledger.on_failure(failed)
