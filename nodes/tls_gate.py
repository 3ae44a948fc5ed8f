"""A TLS-terminating front end ("gate") for a node's gRPC server.

grpcio's server TLS refuses clients without a certificate, or with a foreign or expired
one, inside the handshake: no application code runs, so a node cannot ledger it. The gate
does the mTLS handshake itself (:mod:`ssl`, in the node's event loop), reports each refusal
(``on_refused(peer, reason, message)``; reasons ``tls_no_client_cert``, ``tls_unknown_ca``,
``tls_cert_expired``, ``tls_cert_not_yet_valid``, ``tls_not_tls_cert``, ``tls_bad_cert``,
``tls_protocol``, ``tls_busy``, ``backend_unavailable``) and relays each accepted
connection's decrypted bytes to the node's gRPC server listening without TLS: on an
abstract Unix socket (Linux; the cheaper hop) or on loopback TCP. It maps the local address of each backend connection it
opens (an abstract socket name it binds, or a loopback port) to the client's verified leaf
certificate, for :meth:`TlsGate.peer_cert_pem` to find from ``context.peer()``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import itertools
import os
import socket
import ssl
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["GateStats", "RefusedHook", "TlsGate", "abstract_unix_sockets", "classify_handshake_error",
           "not_a_tls_client", "server_context"]

#: ``on_refused(peer "ip:port", reason code, human message)``, called in the event loop.
RefusedHook = Callable[[str, str, str], None]

_WANT = "expected a client certificate issued under the tongban national root CA, found "
_PROTO = "expected a TLS 1.2 or 1.3 handshake offering ALPN h2, found "
_WANT_TLS = "expected a TLS client certificate (extended key usage clientAuth), found "
#: X509_V_ERR_INVALID_PURPOSE: OpenSSL's own check of the extended key usage (and key usage)
_INVALID_PURPOSE = 26
#: X509_V_ERR_*: no issuer cert (2), self-signed leaf (18), self-signed in chain (19),
#: no local issuer (20), cannot verify leaf signature (21)
_UNKNOWN_CA = frozenset({2, 18, 19, 20, 21})
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST", "UNKNOWN_PROTOCOL",
                      "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE", "UNEXPECTED_RECORD"})
_OLD_VERSION = frozenset({"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"})
_HIGH_WATER = 256 * 1024
#: Names this process binds its backend connections to (abstract Unix sockets).
_NAMES = itertools.count()
_BIND_TRIES = 64
#: A backend connection's local address: ("127.0.0.1", port) or ("unix-abstract", name).
_Key = tuple[str, int | str]


def abstract_unix_sockets() -> bool:
    """Whether this platform has abstract Unix sockets (Linux), the gate's cheaper backend hop."""
    return sys.platform.startswith("linux")


def server_context(cert_chain_pem: bytes, key_pem: bytes, root_pem: bytes) -> ssl.SSLContext:
    """Server mTLS: TLS 1.2+, ALPN h2, a client certificate under ``root_pem`` (the only CA).

    No session tickets: every connection presents, and has verified, its certificate.
    :mod:`ssl` loads keys only from files: a private temporary directory, removed at once."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=root_pem.decode("ascii"))
    ctx.set_alpn_protocols(["h2"])
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    with tempfile.TemporaryDirectory(prefix="tongban-gate-") as tmp:
        chain, key = Path(tmp, "chain.pem"), Path(tmp, "key.pem")
        chain.write_bytes(cert_chain_pem)
        with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(chain, key)
    return ctx


def classify_handshake_error(exc: BaseException | None, peer: str, timeout_s: float) -> tuple[str, str]:
    """(reason code, message) for a handshake from ``peer`` that ended with ``exc``."""
    head = f"TLS handshake from {peer} refused: "
    if isinstance(exc, ssl.SSLCertVerificationError):
        code, why = exc.verify_code, exc.verify_message
        if code == 10:
            return "tls_cert_expired", f"{head}{_WANT}a certificate that has expired"
        if code == 9:
            return "tls_cert_not_yet_valid", f"{head}{_WANT}a certificate that is not yet valid"
        if code in _UNKNOWN_CA:
            return "tls_unknown_ca", f"{head}{_WANT}one from another authority ({why})"
        if code == _INVALID_PURPOSE:  # e.g. a node's signing or issuing-authority certificate
            return "tls_not_tls_cert", f"{head}{_WANT_TLS}a certificate that is not a TLS certificate ({why})"
        return "tls_bad_cert", f"{head}{_WANT}a certificate that failed verification ({why})"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or type(exc).__name__
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "tls_no_client_cert", f"{head}{_WANT}none"
        found = (f"bytes that are not a TLS handshake ({reason})" if reason in _NOT_TLS
                 else f"an unsupported protocol version ({reason})" if reason in _OLD_VERSION
                 else f"a handshake that failed ({reason})")
    elif isinstance(exc, ConnectionAbortedError) and "longer than" in str(exc):
        found = f"no completed handshake within {timeout_s:g} s"
    elif exc is None or isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        found = "the connection closed before the handshake completed"
    else:
        found = f"a handshake that failed ({type(exc).__name__}: {exc})"
    return "tls_protocol", f"{head}{_PROTO}{found}"


def not_a_tls_client(cert: x509.Certificate | bytes) -> str | None:
    """None for a certificate (or its DER) that may authenticate a TLS client: its
    extended key usage names clientAuth. Else the refusal's words: ``the certificate of
    440000 (CN=440000 OU=sign), which is not a TLS certificate (no clientAuth extended
    key usage)``.

    OpenSSL itself refuses a certificate whose extended key usage leaves out clientAuth
    (``_INVALID_PURPOSE``), but passes one without the extension, as RFC 5280 allows:
    the signing and issuing-authority certificates of a PKI made before they carried
    documentSigning (certs/_x509.py). tongban's TLS certificates always had clientAuth."""
    try:
        leaf = x509.load_der_x509_certificate(cert) if isinstance(cert, bytes) else cert
    except ValueError:
        return "a certificate that does not parse"
    try:
        eku = list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = []
    except ValueError:  # a malformed or duplicated extension
        return "a certificate whose extensions do not parse"
    if ExtendedKeyUsageOID.CLIENT_AUTH in eku:
        return None
    cn, ou = ([str(a.value) for a in leaf.subject.get_attributes_for_oid(oid)]
              for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME))
    subject = " ".join([*(f"CN={v}" for v in cn), *(f"OU={v}" for v in ou)]) or leaf.subject.rfc4514_string()
    return (f"the certificate of {cn[0] if len(cn) == 1 else '?'} ({subject}), which is not a TLS certificate "
            "(no clientAuth extended key usage)")


@functools.lru_cache(maxsize=4096)
def _not_a_tls_client_der(der: bytes) -> str | None:
    """:func:`not_a_tls_client` of a client leaf's DER, once per certificate seen."""
    return not_a_tls_client(der)


@dataclass
class GateStats:
    """Connections relayed, and refusals by reason code, since the gate was made."""

    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)


def _address(sockaddr: Any) -> str:
    host, port = (sockaddr[0], sockaddr[1]) if sockaddr else ("?", 0)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _key(host: str, port: int) -> _Key | None:
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        return None


def _sock_key(sockname: Any) -> _Key | None:
    """The key of a backend connection's local address, as getsockname() gives it."""
    if isinstance(sockname, bytes):
        sockname = sockname.decode("ascii", "replace")
    if isinstance(sockname, str):
        return ("unix-abstract", sockname[1:]) if sockname.startswith("\0") and len(sockname) > 1 else None
    return _key(sockname[0], sockname[1]) if sockname else None


async def _connect_unix(name: str) -> socket.socket:
    """A socket bound to a fresh abstract name of ours, connected to abstract socket ``name``.
    The bound name is what the gRPC server reports as the peer (``unix-abstract:NAME``)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        for _ in range(_BIND_TRIES):  # a name held by another socket: take the next one
            try:
                sock.bind(f"\0tongban-gate-{os.getpid()}-{next(_NAMES)}")
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        else:
            raise OSError(errno.EADDRINUSE, f"{_BIND_TRIES} abstract socket names in a row already taken")
        await loop.sock_connect(sock, "\0" + name)
    except BaseException:
        sock.close()
        raise
    return sock


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _replay(raw: asyncio.Transport, data: bytes) -> None:
    """Give bytes read before start_tls took over to the TLS protocol it installed; runs
    before that protocol's connection_made, which then starts the handshake from them."""
    proto = cast(asyncio.BufferedProtocol, raw.get_protocol())
    while data:
        buf = memoryview(proto.get_buffer(len(data)))
        n = min(len(buf), len(data))
        buf[:n], data = data[:n], data[n:]
        proto.buffer_updated(n)


def _close_tls(tls: asyncio.Transport, raw: asyncio.Transport) -> None:
    """Close with close_notify, then end the TCP stream at once: grpc clients ignore a bare
    close_notify, and ssl would wait ssl_shutdown_timeout for theirs. (The guard: asyncio's
    TLS transport forgets its protocol on a second close().)"""
    if not tls.is_closing():
        tls.close()
        if tls.get_write_buffer_size() == 0 and raw.can_write_eof() and not raw.is_closing():
            raw.write_eof()


class _Accept(asyncio.Protocol):
    """A fresh TCP connection until start_tls takes it over. It pauses reading at once, but
    uvloop starts reading when connection_made returns: early bytes are kept for _replay."""

    def __init__(self, gate: TlsGate) -> None:
        self.gate, self.early, self.eof = gate, bytearray(), False
        self.raw: asyncio.Transport  # set by connection_made, which comes first

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = cast(asyncio.Transport, transport)
        self.gate._on_connect(self)

    def data_received(self, data: bytes) -> None:
        self.early += data
        self.raw.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        return True  # _serve closes it


class _Client(asyncio.Protocol):
    """The decrypted side of one client connection: its bytes go to the backend."""

    def __init__(self, gate: TlsGate, raw: asyncio.Transport) -> None:
        self.gate, self.raw, self.pem = gate, raw, b""
        self.tls: asyncio.Transport  # set when the handshake is done
        self.backend: asyncio.Transport | None = None
        self.pending: list[bytes] = []  # decrypted before the backend connection was up
        self.lost = self.backend_lost = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.backend is None:
            self.pending.append(data)
        else:
            self.backend.write(data)

    def pause_writing(self) -> None:
        if self.backend is not None and not self.backend.is_closing():
            self.backend.pause_reading()

    def resume_writing(self) -> None:
        if self.backend is not None and not self.backend.is_closing():
            self.backend.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.backend is not None:
            self.backend.close()  # after flushing what the client sent
        self.check_done()

    def check_done(self) -> None:
        if self.lost and (self.backend is None or self.backend_lost) and not self.done.done():
            self.gate._relays.discard(self)
            self.done.set_result(None)


class _Backend(asyncio.Protocol):
    """The loopback connection to the gRPC server for one client connection."""

    def __init__(self, client: _Client) -> None:
        self.client, self.tls = client, client.tls
        self.key: _Key | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        c, t = self.client, cast(asyncio.Transport, transport)
        c.backend = t
        _nodelay(t)
        t.set_write_buffer_limits(_HIGH_WATER)
        self.key = _sock_key(t.get_extra_info("sockname"))
        if self.key is not None:
            c.gate._certs[self.key] = c.pem  # before any byte can reach the server
        if c.pending:
            t.write(b"".join(c.pending))
            c.pending.clear()
        if c.lost:
            t.close()

    def data_received(self, data: bytes) -> None:
        self.tls.write(data)

    def eof_received(self) -> None:
        _close_tls(self.tls, self.client.raw)

    def pause_writing(self) -> None:
        if not self.tls.is_closing():
            self.tls.pause_reading()

    def resume_writing(self) -> None:
        if not self.tls.is_closing():
            self.tls.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.key is not None:
            self.client.gate._certs.pop(self.key, None)
        self.client.backend_lost = True
        _close_tls(self.tls, self.client.raw)
        self.client.check_done()


class TlsGate:
    """mTLS in front of the insecure gRPC server at ``backend``, refusals reported: (host,
    port) on loopback TCP, or a str, the name of an abstract Unix socket (without its NUL;
    the server listens on ``unix-abstract:NAME``; Linux only, see abstract_unix_sockets).

    At most ``max_handshakes`` handshakes run at once, more connections are closed at once
    (``tls_busy``); one not done in ``handshake_timeout_s`` is refused (``tls_protocol``)."""

    def __init__(self, cert_chain_pem: bytes, key_pem: bytes, root_pem: bytes, backend: tuple[str, int] | str,
                 on_refused: RefusedHook | None = None, *, handshake_timeout_s: float = 10.0,
                 max_handshakes: int = 256) -> None:
        self.backend, self.on_refused = backend, on_refused
        self.handshake_timeout_s, self.max_handshakes = handshake_timeout_s, max_handshakes
        self.stats = GateStats()
        self._ctx = server_context(cert_chain_pem, key_pem, root_pem)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._relays: set[_Client] = set()
        self._certs: dict[_Key, bytes] = {}
        self._handshaking = 0

    @property
    def active(self) -> int:
        """Connections being relayed now."""
        return len(self._relays)

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0: a free one); returns the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Accept(self), host, port, backlog=1024)
        return int(self._server.sockets[0].getsockname()[1])

    async def handshakes_done(self, timeout_s: float = 10.0) -> None:
        """Wait (at most ``timeout_s``) until every handshake under way has ended: each
        refused one reported to ``on_refused``, each accepted one relayed. A refused client
        may see its connection close before the gate has reported why."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    async def stop(self) -> None:
        """Stop listening; abort the handshakes in progress and every relayed connection."""
        if self._server is not None:
            self._server.close()
        while self._tasks:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in list(self._relays):
            client.tls.abort()
            if client.backend is not None:
                client.backend.abort()
        if self._relays:
            await asyncio.wait([c.done for c in self._relays], timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def peer_cert_pem(self, grpc_peer: str) -> bytes | None:
        """The verified client leaf certificate (PEM) behind backend connection ``grpc_peer``
        (``unix-abstract:NAME``, ``ipv4:127.0.0.1:PORT``, ``ipv6:[::1]:PORT``); None if the
        gate has no such connection."""
        scheme, _, rest = grpc_peer.partition(":")
        if scheme == "unix-abstract":
            return self._certs.get((scheme, unquote(rest)))
        host, _, port = unquote(rest).rpartition(":")
        if scheme not in ("ipv4", "ipv6") or not port.isdigit():
            return None
        key = _key(host.strip("[]"), int(port))
        return None if key is None else self._certs.get(key)

    def _refuse(self, peer: str, reason: str, message: str) -> None:
        self.stats.refused[reason] += 1
        if self.on_refused is not None:
            try:
                self.on_refused(peer, reason, message)
            except Exception as exc:  # the hook's failure must not take the gate down
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "TlsGate on_refused hook failed", "exception": exc})

    def _on_connect(self, accept: _Accept) -> None:
        raw = accept.raw
        raw.pause_reading()  # start_tls must see the first byte (uvloop: see _Accept)
        _nodelay(raw)
        peer = _address(raw.get_extra_info("peername"))
        if self._handshaking >= self.max_handshakes:
            raw.close()
            self._refuse(peer, "tls_busy", f"TLS handshake from {peer} refused: expected a free handshake "
                         f"slot (at most {self.max_handshakes} at once), found {self._handshaking} in progress")
            return
        self._handshaking += 1
        task = asyncio.get_running_loop().create_task(self._serve(accept, raw, peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, accept: _Accept, raw: asyncio.Transport, peer: str) -> None:
        """Handshake, check ALPN, connect to the backend, and leave the rest to the relay protocols."""
        loop = asyncio.get_running_loop()
        client = _Client(self, raw)
        try:
            if accept.eof:
                raw.close()
                raise ConnectionResetError
            if accept.early:  # runs before the TLS protocol's connection_made, scheduled below
                loop.call_soon(_replay, raw, bytes(accept.early))
            tls = await loop.start_tls(raw, client, self._ctx, server_side=True,
                                       ssl_handshake_timeout=self.handshake_timeout_s,
                                       ssl_shutdown_timeout=self.handshake_timeout_s)
            if tls is None:  # lost, without an error, before the handshake finished
                raise ConnectionResetError
        except asyncio.CancelledError:  # the gate is stopping: close the socket now, not at collection
            if not raw.is_closing():
                raw.close()  # what is buffered goes first, then FIN (no reset)
            raise
        except Exception as exc:
            self._refuse(peer, *classify_handshake_error(exc, peer, self.handshake_timeout_s))
            return
        finally:
            self._handshaking -= 1
        ssl_object = tls.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            _close_tls(tls, raw)  # not abort(): uvloop may not have sent our last handshake flight yet
            self._refuse(peer, "tls_protocol", f"TLS handshake from {peer} refused: {_PROTO}"
                         "a client that did not offer ALPN h2")
            return
        der = ssl_object.getpeercert(binary_form=True)
        found = _not_a_tls_client_der(der)
        if found is not None:
            _close_tls(tls, raw)
            self._refuse(peer, "tls_not_tls_cert", f"TLS handshake from {peer} refused: {_WANT_TLS}{found}")
            return
        client.tls = tls
        client.pem = ssl.DER_cert_to_PEM_cert(der).encode("ascii")
        tls.set_write_buffer_limits(_HIGH_WATER)
        try:
            if isinstance(self.backend, str):
                sock = await _connect_unix(self.backend)
                await loop.create_connection(lambda: _Backend(client), sock=sock)
            else:
                # bind() to port 0 before connecting: the kernel then gives this socket a local
                # port no other socket on 127.0.0.1 holds. A plain connect() may reuse a local
                # port towards a different destination, and two gates in one process (several
                # provinces) would then map the same peer address to two different clients.
                host, port = self.backend
                await loop.create_connection(lambda: _Backend(client), host, port, local_addr=(host, 0))
        except OSError as exc:
            _close_tls(tls, raw)
            where = (f"unix-abstract:{self.backend}" if isinstance(self.backend, str)
                     else f"{self.backend[0]}:{self.backend[1]}")
            self._refuse(peer, "backend_unavailable", f"connection from {peer} refused after its TLS "
                         f"handshake: expected the gRPC server at {where} to accept a connection, "
                         f"found {os.strerror(exc.errno) if exc.errno else exc}")
            return
        except BaseException:
            tls.abort()
            raise
        self.stats.accepted += 1
        self._relays.add(client)
        client.check_done()
