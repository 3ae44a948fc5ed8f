"""The national hub (node 000000): directory, routing, access control, accounting.

The hub routes envelopes generically (X-Road style): it reads the header, checks
the sender's signature, the mTLS peer and the access rule, and forwards the
envelope untouched, so the receiver verifies the original sender end to end and
the hub can forge neither side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import logging
import time
from pathlib import Path
from typing import Any

import grpc

from certs.pki import HUB_CODE, load_pki_manifest, load_node_credentials
from exchange.directory import REGIONS, DirectoryContent, MemberInfo, build_directory, seal_directory
from exchange.opener import check_binding
from exchange.errors import ConfigError, MalformedError, PeerIdentityError, RoutingError, TongbanError
from exchange.geo import division_routes, province
from exchange.keys import key_id
from nodes._grpc import Served, not_serving_when_ledger_fails, open_channel, peer_code, start_server
from nodes.core import Clock, NodeCore
from nodes.link import LinkShim
from nodes.stream import EXCHANGE_STREAM, HANDLE_STREAM, StreamMux, check_transport, serve_frames
from tongban.v1 import directory_pb2, services_pb2, services_pb2_grpc

__all__ = ["DEFAULT_ACCESS_RULES", "HubNode"]

log = logging.getLogger(__name__)

#: Every province may verify identities and fetch every catalogued type.
DEFAULT_ACCESS_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("*", "identity.verify", ()),
    ("*", "ecert.fetch", ("*",)),
    ("*", "healthcode.check", ()),
    ("*", "joint.act", ()),
    ("*", "transfer.out", ("*",)),
    ("*", "transfer.commit", ("*",)),
)


_ENDPOINT = re.compile(r"[A-Za-z0-9.\-\[\]:]{1,253}:[0-9]{1,5}")


def _der(cert: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return bytes(cert.public_bytes(Encoding.DER))


class HubNode(services_pb2_grpc.HubServiceServicer):
    """Serves HubService; one instance per hub process."""

    def __init__(
        self,
        *,
        pki_dir: Path,
        data_dir: Path,
        clock: Clock = time.time_ns,
        access_rules: tuple[tuple[str, str, tuple[str, ...]], ...] = DEFAULT_ACCESS_RULES,
        directory_validity_s: int = 86_400,
        forward_timeout_s: float = 10.0,
        links: LinkShim | None = None,
        topology: str = "star",
        transport: str = "stream",
        tls_gate: bool = True,
    ) -> None:
        self.core = NodeCore(code=HUB_CODE, pki_dir=pki_dir, data_dir=data_dir, clock=clock)
        try:
            self.pki_dir = pki_dir
            self.access_rules = access_rules
            self.validity_s = directory_validity_s
            self.forward_timeout_s = forward_timeout_s
            self.links = links or LinkShim()
            self.topology = topology
            self.transport = check_transport(transport)
            self.tls_gate = tls_gate
            self._listen = ""
            self._republisher: asyncio.Task[None] | None = None
            self._tasks: set[asyncio.Task[None]] = set()
            self.codes = [c for c in load_pki_manifest(pki_dir)["codes"] if c != HUB_CODE]
            self.members = {HUB_CODE: self._member(HUB_CODE, "国家政务服务平台", directory_pb2.MEMBER_KIND_HUB)}
            for code in self.codes:
                self.members[code] = self._member(code, province(code).name_zh, directory_pb2.MEMBER_KIND_PROVINCE)
            self.catalogue = self._catalogue(data_dir)
            self.revocations: list[tuple[str, int, str]] = []
            self.version = 0
            #: co-hosting: the provinces each host's own registration says it carries
            self.carries: dict[str, frozenset[str]] = {}
            self._load_state()
            self._channels: dict[tuple[str, str], tuple[grpc.aio.Channel, StreamMux]] = {}
            self.server: Served | None = None
            self._watching_ledger = False
            self.publish()
        except BaseException:  # the rest of setting up failed: let the ledger's file go now
            with contextlib.suppress(Exception):  # the first error is the one to report
                self.core.close()
            raise

    # -- directory ---------------------------------------------------------
    def _member(self, code: str, name: str, kind: int) -> MemberInfo:
        creds = self.core.creds if code == HUB_CODE else load_node_credentials(self.pki_dir, code)
        return MemberInfo(
            code=code, name=name, kind=kind, endpoint="",
            intermediate_der=_der(creds.intermediate_cert),
            signing_keys=((key_id(creds.sign_cert.public_key()), _der(creds.sign_cert)),),  # type: ignore[arg-type]
            issuer_der=_der(creds.issuer_cert) if creds.issuer_cert is not None else b"",
        )

    def _catalogue(self, data_dir: Path) -> list[tuple[str, str, list[str]]]:
        path = data_dir / "world.json"
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: expected the world manifest (run `tongban world generate`): {e}") from e
        issuers = [c for c in manifest["codes"] if c in self.members]
        return [(t["code"], t["name"], issuers) for t in manifest["cert_types"]]

    def _load_state(self) -> None:
        """After a restart: the last version, the registered endpoints and the revocations."""
        with contextlib.closing(sqlite3.connect(self.core.db_path)) as db:
            db.execute("CREATE TABLE IF NOT EXISTS hub_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.commit()
            state = dict(db.execute("SELECT key, value FROM hub_state").fetchall())
        if state:
            self.version = int(state["version"])
            hosts = json.loads(state.get("hosts", "{}"))
            self.carries = {c: frozenset(v) for c, v in json.loads(state.get("carries", "{}")).items()}
            for code, endpoint in json.loads(state["endpoints"]).items():
                if code in self.members:
                    self.members[code] = MemberInfo(**{**self.members[code].__dict__, "endpoint": endpoint,
                                                       "host": hosts.get(code, "")})
            self.revocations = [tuple(r) for r in json.loads(state["revocations"])]  # type: ignore[misc]
            log.warning("hub restarted from v%d with %d endpoints", self.version, len(json.loads(state["endpoints"])))

    def _save_state(self) -> None:
        endpoints = {c: m.endpoint for c, m in self.members.items() if m.endpoint}
        hosts = {c: m.host for c, m in self.members.items() if m.host}
        carries = {c: sorted(v) for c, v in self.carries.items() if v}
        with contextlib.closing(sqlite3.connect(self.core.db_path)) as db:
            db.execute("PRAGMA synchronous=FULL")
            db.executemany("INSERT OR REPLACE INTO hub_state (key, value) VALUES (?, ?)", [
                ("version", str(self.version)), ("endpoints", json.dumps(endpoints)), ("hosts", json.dumps(hosts)),
                ("carries", json.dumps(carries)),
                ("revocations", json.dumps(self.revocations))])
            db.commit()

    def publish(self) -> int:
        """Sign and install a new directory version (persisted, so a restarted hub
        continues above it and knows every endpoint); returns it."""
        self.version += 1
        self._save_state()
        content = DirectoryContent(
            version=self.version, hub=HUB_CODE, members=list(self.members.values()),
            catalogue=self.catalogue, division_routes=division_routes(),
            access_rules=self.access_rules, revocations=self.revocations,
            topology=self.topology, regions=REGIONS,
        )
        pb = build_directory(content, now_ns=self.core.clock(), validity_s=self.validity_s)
        self.core.accept_directory(seal_directory(pb, self.core.signer))
        return self.version

    def revoke(self, keyid: str, *, reason: str) -> int:
        """Revoke a signing key from now on; publishes a new directory version."""
        self.revocations.append((keyid, self.core.clock(), reason))
        return self.publish()

    def revoke_node(self, code: str, *, reason: str) -> int:
        """Revoke every signing key of node ``code`` (key compromise)."""
        now = self.core.clock()
        for keyid, _ in self.members[code].signing_keys:
            self.revocations.append((keyid, now, reason))
        return self.publish()

    def set_access_rules(self, rules: tuple[tuple[str, str, tuple[str, ...]], ...]) -> int:
        self.access_rules = rules
        return self.publish()

    # -- server ------------------------------------------------------------
    async def start(self, listen: str) -> int:
        port = await self._serve(listen)
        self._listen = f"{listen.rsplit(':', 1)[0]}:{port}"
        self._republisher = asyncio.get_running_loop().create_task(self._republish_loop())
        log.info("hub listening on port %d", port)
        return port

    async def _republish_loop(self) -> None:
        """Sign a fresh version at half the validity, so the directory never lapses."""
        while True:
            await asyncio.sleep(self.validity_s / 2)
            self.publish()

    async def _serve(self, listen: str) -> int:
        self.server = await start_server(
            tls=self.core.tls_material(), listen=listen,
            services=[(services_pb2_grpc.add_HubServiceServicer_to_server, self, "tongban.v1.HubService")],
            on_undecodable=self.core.record_undecodable, gate=self.tls_gate,
            on_refused=self.core.record_handshake_refusal,
        )
        if not self._watching_ledger:  # once: a node brought up again serves anew
            self._watching_ledger = True
            not_serving_when_ledger_fails(lambda: self.server, self.core.ledger, HUB_CODE)
        return self.server.port

    async def go_down(self) -> None:
        """Fault injection: stop serving until come_up(); state is kept."""
        if self.server is not None:
            await self.server.stop(0)
            self.server = None
            log.warning("hub is down")

    async def come_up(self) -> None:
        if self.server is None:
            await self._serve(self._listen)
            log.warning("hub is up again")

    async def stop(self, grace_s: float = 2.0) -> None:
        if self._republisher is not None:
            self._republisher.cancel()
        for task in self._tasks:
            task.cancel()
        if self.server is not None:
            await self.server.stop(grace_s)
        for channel, mux in self._channels.values():
            await mux.close()
            await channel.close()
        self.core.close()

    def _warm(self, code: str) -> None:
        """Connect to a newly registered node now, so no request pays for the TLS handshake."""
        channel = self._route(code)[0]
        task = asyncio.get_running_loop().create_task(channel.channel_ready())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stub(self, code: str) -> StreamMux:
        return self._route(code)[1]

    def _route(self, code: str) -> tuple[grpc.aio.Channel, StreamMux]:
        """The channel and stream that carry requests to ``code``: its own, or its host's
        when it is co-hosted (one connection for every province of a process)."""
        directory = self.core.current_directory()
        carrier = directory.carrier(code)
        endpoint = directory.endpoint(carrier)
        hit = self._channels.get((carrier, endpoint))
        if hit is None:
            channel = open_channel(endpoint, self.core.channel_creds(), peer=carrier)
            hit = (channel, StreamMux(channel, HANDLE_STREAM, hop=f"node {carrier}"))
            self._channels[(carrier, endpoint)] = hit
        return hit

    async def _send(self, route: StreamMux, env: Any, timeout_s: float) -> Any:
        """Hand ``env`` to the receiver (its stream, or one unary call) and return its answer."""
        return await route.send(env, timeout_s, stream=self.transport == "stream")

    # -- RPCs --------------------------------------------------------------
    async def GetDirectory(self, request: services_pb2.GetDirectoryRequest,
                           context: grpc.aio.ServicerContext) -> services_pb2.GetDirectoryResponse:
        return services_pb2.GetDirectoryResponse(directory=self.core.current_directory().envelope.to_pb())

    async def Register(self, request: services_pb2.RegisterRequest,
                       context: grpc.aio.ServicerContext) -> services_pb2.RegisterResponse:
        core, env, peer = self.core, request.envelope, peer_code(context)
        try:
            opened = core.open(env, expect="request")
            if opened.spec.flow != "registration":
                raise RoutingError(f"Register expects a registration, found a {opened.spec.flow} payload")
            if opened.header.sender != peer:
                raise PeerIdentityError(f"registration signed by {opened.header.sender}, but the TLS peer is {peer!r}")
        except TongbanError as e:
            core.record("rejected", env, peer=peer, error=e)
            raise
        core.record("received", env, peer=peer, header=opened.header)
        endpoint = opened.message.endpoint  # type: ignore[attr-defined]
        sender = opened.header.sender
        if not _ENDPOINT.fullmatch(endpoint) or not 0 < int(endpoint.rsplit(":", 1)[1]) < 65536:
            err = MalformedError(f"payload endpoint: expected host:port (host at most 253 characters), "
                                 f"found {endpoint[:80]!r}")
            core.record("rejected", env, peer=peer, header=opened.header, error=err)
            raise err
        host = opened.message.host  # type: ignore[attr-defined]
        host = "" if host == sender else host
        carries = frozenset(opened.message.carries) - {sender}  # type: ignore[attr-defined]
        problem = self._host_problem(host, sender)
        if host and carries:
            problem = f"{host}, but {sender} carries {', '.join(sorted(carries))} itself"
        if problem:
            err = MalformedError(f"payload host: expected a registered province that hosts itself and carries "
                                 f"{sender}, found {problem}")
            core.record("rejected", env, peer=peer, header=opened.header, error=err)
            raise err
        self.carries[sender] = carries
        for code, m in self.members.items():  # those it no longer carries: their own connections again
            if m.host == sender and code not in carries:
                self.members[code] = MemberInfo(**{**m.__dict__, "host": ""})
        old = self.members[sender]
        self.members[sender] = MemberInfo(**{**old.__dict__, "endpoint": endpoint, "host": host})
        self.publish()
        self._warm(sender)
        log.info("node %s registered at %s (directory v%d)", sender, endpoint, self.version)
        return services_pb2.RegisterResponse(directory=core.current_directory().envelope.to_pb())

    def _host_problem(self, host: str, sender: str) -> str:
        """Why ``host`` cannot carry ``sender``'s exchanges ("" when it can, or none is named)."""
        if not host:
            return ""
        m = self.members.get(host)
        if m is None or m.kind != directory_pb2.MEMBER_KIND_PROVINCE:
            return f"{host[:40]!r}, not a province of this exchange"
        if not m.endpoint:
            return f"{host}, which has not registered"
        if m.host:
            return f"{host}, which is itself hosted by {m.host}"
        if sender not in self.carries.get(host, ()):
            carried = ", ".join(sorted(self.carries.get(host, ()))) or "none"
            return f"{host}, which does not carry it (it carries: {carried})"
        return ""

    async def Exchange(self, request: services_pb2.ExchangeRequest,
                       context: grpc.aio.ServicerContext) -> services_pb2.ExchangeResponse:
        return services_pb2.ExchangeResponse(envelope=await self.exchange(request.envelope, peer_code(context)))

    async def ExchangeStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        async for reply in serve_frames(request_iterator, method=EXCHANGE_STREAM, peer=peer_code(context), handle=self.exchange,
                                        on_undecodable=self.core.record_undecodable):
            yield reply

    async def exchange(self, env: Any, peer: str, timeout_s: float | None = None) -> Any:
        """Route one request envelope from TLS peer ``peer``; returns the receiver's
        verified answer, or raises the refusal (already in the ledger)."""
        core = self.core
        retry = core.retry_of(env, peer)
        if retry is not None:  # the same request again: the recorded answer, not forwarded twice
            out = await asyncio.shield(retry)
            core.record("forwarded", out, peer=peer, outcome="retry")
            return out
        try:
            core.admission.check_capacity()
            opened = core.open(env, expect="request", relay=True)
            header = opened.header
            directory = core.current_directory()
            if header.sender != peer:
                host = directory.carrier(header.sender)
                if host != peer:
                    raise PeerIdentityError(
                        f"envelope signed by {header.sender}, but the TLS peer is {peer!r}: expected the sender itself"
                        + (f" or its host {host}" if host != header.sender else ""))
            directory.check_access(
                sender=header.sender, flow=opened.spec.flow, cert_type=header.subject.cert_type)
            target = opened.receiver
            if target == HUB_CODE:
                raise RoutingError(f"{opened.spec.flow} requests are served by provinces, not by the hub {HUB_CODE}")
            route = self._stub(target)
        except TongbanError as e:
            core.record("rejected", env, peer=peer, error=e)
            raise
        ticket = core.admit(env, opened, peer=peer, target=target)
        try:
            timeout = min(self.forward_timeout_s, timeout_s) if timeout_s else self.forward_timeout_s
            reply = await self._forward(opened, env, route, target, peer, timeout)
            ticket.done(reply)
        except BaseException as e:
            ticket.failed(e)
            raise
        finally:
            ticket.release()
        return reply

    async def _forward(self, opened: Any, env: Any, route: StreamMux, target: str, peer: str,
                       timeout_s: float) -> Any:
        core, header = self.core, opened.header
        core.record("received", env, peer=peer, header=header)
        core.record("forwarded", env, peer=target, header=header)
        try:
            await self.links.cross(target, timeout_s=timeout_s)
            reply = await self._send(route, env, timeout_s)
            await self.links.cross(target, timeout_s=timeout_s)
        except TongbanError as e:
            core.record("rejected", env, peer=target, header=header, error=e)
            raise
        try:
            resp = core.open(reply, expect="response", relay=True)
            check_binding(resp, request=opened.envelope, requester=header.sender, responder=target)
        except TongbanError as e:
            core.record("rejected", reply, peer=target, error=e)
            raise
        core.record("received", reply, peer=target, header=resp.header)
        core.record("forwarded", reply, peer=header.sender, header=resp.header)
        return reply
