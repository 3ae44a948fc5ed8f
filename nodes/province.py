"""A provincial node: answers the exchange (NodeService) and originates flows for
its own service windows (WindowService).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import grpc

from certs.pki import HUB_CODE
from exchange import payloads
from exchange.dsse import DsseEnvelope, seal
from exchange.errors import (AccessDeniedError, ConfigError, HeaderError, PayloadTypeError, PeerIdentityError,
                             PeerUnavailableError, RoutingError, TongbanError)
from exchange.header import check_header_shape, make_header
from exchange.opener import addressed_to, check_binding
from nodes._grpc import Served, not_serving_when_ledger_fails, open_channel, start_server
from nodes._province_services import WINDOW_CLIENT, _NodeServicer, _WindowServicer
from nodes._status import error_from_rpc
from nodes.core import Clock, NodeCore
from nodes.flows import SERVED_FLOWS, Answerer, check_answer
from nodes.apply import apply
from nodes.transfer import recover as recover_transfers
from nodes.transfer import transfer
from nodes.transfer_store import TransferStore
from nodes.link import LinkShim
from nodes.stream import EXCHANGE_STREAM, HANDLE_STREAM, StreamMux, check_transport
from nodes.store import ProvinceStore
from tongban.v1 import (
    directory_pb2,
    ecert_pb2,
    envelope_pb2,
    healthcode_pb2,
    identity_pb2,
    joint_pb2,
    transfer_pb2,
    services_pb2,
    services_pb2_grpc,
)

__all__ = ["WINDOW_CLIENT", "ProvinceNode"]

log = logging.getLogger(__name__)
#: After this long registering with the hub, a province says it is still waiting (it waits up to 30 s).
_SAY_WAITING_S = 3.0

class ProvinceNode:
    """One province: its store, its identity, its servers and its hub channel.

    Co-hosting (``host``: another province of the same process, started first): the
    host's connections carry this node's exchanges, its stream to the hub and the hub's
    stream to it, so the provinces of one process exchange over one connection each way
    and their envelopes share writes (bench/results/profile-notes.md). The node keeps its
    own server, certificate, keys and ledger, and registers and fetches the directory
    itself. Its signed registration names the host and the host's lists it in
    ``carries``, which is how the hub knows to accept its envelopes from the host's TLS
    identity and to send it requests on the host's stream.
    """

    def __init__(
        self,
        *,
        code: str,
        pki_dir: Path,
        data_dir: Path,
        hub: str,
        clock: Clock = time.time_ns,
        request_timeout_s: float = 10.0,
        message_lifetime_ms: int = 30_000,
        directory_refresh_s: float = 5.0,
        links: LinkShim | None = None,
        transport: str = "stream",
        tls_gate: bool = True,
        host: ProvinceNode | None = None,
    ) -> None:
        if host is not None and host.host is not None:
            raise ConfigError(f"node {code}: its host {host.code} is itself hosted by {host.host.code}")
        self.transport = check_transport(transport)
        self.tls_gate = tls_gate
        self.code = code
        self.core = NodeCore(code=code, pki_dir=pki_dir, data_dir=data_dir, clock=clock)
        try:
            issuer = self.core.creds.issuer_signer
            if issuer is None:
                raise TongbanError(f"node {code} has no e-certificate issuing authority key in {pki_dir}")
            self.store = ProvinceStore(data_dir / f"{code}.sqlite", code=code)
            self.transfers = TransferStore(data_dir / f"{code}.sqlite", code=code, issuer_code=self.store.meta("issuer_code"),
                                           issuer_name=self.store.meta("issuer_name"))
            self.answerer = Answerer(code=code, store=self.store, issuer=issuer, transfers=self.transfers)
            self.hub_target = hub
            self.request_timeout_s = request_timeout_s
            self.lifetime_ms = message_lifetime_ms
            self.refresh_s = directory_refresh_s
            self.links = links or LinkShim()
            self._listen = ""
            self.server: Served | None = None
            self._watching_ledger = False
            self.endpoint = ""
            self._hub_channel: grpc.aio.Channel | None = None
            self._hub: services_pb2_grpc.HubServiceStub | None = None
            self._hub_mux: StreamMux | None = None
            self._refresher: asyncio.Task[None] | None = None
            self._peers: dict[str, tuple[str, grpc.aio.Channel, StreamMux]] = {}
            self.host = host
            #: co-hosted provinces whose requests arrive on this node's server
            self.carried: dict[str, ProvinceNode] = {}
            #: a host taken down keeps serving the provinces it carries, refusing its own calls
            self.down = False
            self._registered_carries: frozenset[str] = frozenset()  # as the hub last heard them
            self._stopping = False
            if host is not None:
                host.carried[code] = self
        except BaseException:  # the rest of setting up failed: let the ledger's file go now
            with contextlib.suppress(Exception):  # the first error is the one to report
                self.core.close()
            raise

    # -- lifecycle ---------------------------------------------------------
    async def start(self, listen: str, *, advertise_host: str | None = None) -> int:
        """Serve, register with the hub, and keep the directory fresh."""
        port = await self._serve(listen)
        host = advertise_host or listen.rsplit(":", 1)[0]
        self.endpoint = f"{host}:{port}"
        self._listen = f"{listen.rsplit(':', 1)[0]}:{port}"
        self._hub_channel = open_channel(self.hub_target, self.core.channel_creds(), peer=HUB_CODE)
        self._hub = services_pb2_grpc.HubServiceStub(self._hub_channel)
        if self.host is None:
            self._hub_mux = StreamMux(self._hub_channel, EXCHANGE_STREAM, hop="hub")
        else:
            if self.host._hub_mux is None:
                raise ConfigError(f"node {self.code}: its host {self.host.code} must start first")
            self._hub_mux = self.host._hub_mux
            if self.code not in self.host._registered_carries:  # the hub needs the host's word first
                await self.host.register()
        await self.register()
        await self.recover_transfers()
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())
        return port

    async def _serve(self, listen: str) -> int:
        self.server = await start_server(
            tls=self.core.tls_material(), listen=listen,
            services=[
                (services_pb2_grpc.add_NodeServiceServicer_to_server, _NodeServicer(self), "tongban.v1.NodeService"),
                (services_pb2_grpc.add_WindowServiceServicer_to_server, _WindowServicer(self),
                 "tongban.v1.WindowService"),
            ],
            on_undecodable=self.core.record_undecodable, gate=self.tls_gate,
            on_refused=self.core.record_handshake_refusal,
        )
        if not self._watching_ledger:  # once: a node brought up again serves anew
            self._watching_ledger = True
            not_serving_when_ledger_fails(lambda: self.server, self.core.ledger, self.code)
        return self.server.port

    async def go_down(self) -> None:
        """Fault injection: stop serving (callers see UNAVAILABLE) until come_up(). A host
        keeps its server for the provinces it carries and refuses its own calls."""
        if self.carried:
            self.down = True
            log.warning("node %s is down (its server still carries %s)", self.code, ", ".join(sorted(self.carried)))
        elif self.server is not None:
            await self.server.stop(0)
            self.server = None
            log.warning("node %s is down", self.code)

    async def come_up(self) -> None:
        """Serve again on the same port, as a restarted node would."""
        if self.down:
            self.down = False
            log.warning("node %s is up again", self.code)
        elif self.server is None:
            await self._serve(self._listen)
            log.warning("node %s is up again", self.code)

    async def register(self, timeout_s: float = 30.0) -> None:
        """Announce our endpoint; waits for the hub to be ready (bounded)."""
        assert self._hub is not None
        header = make_header(sender=self.code, receiver=HUB_CODE, now_ns=self.core.clock(),
                             lifetime_ms=self.lifetime_ms, purpose="register node endpoint")
        reg = directory_pb2.Registration(header=header, endpoint=self.endpoint,
                                         host=self.host.code if self.host is not None else "",
                                         carries=sorted(self.carried))
        env = seal(payloads.REGISTRATION, reg.SerializeToString(), self.core.signer).to_pb()
        self.core.record("sent", env, peer=HUB_CODE, header=header)
        call = self._hub.Register(services_pb2.RegisterRequest(envelope=env), timeout=timeout_s,
                                  wait_for_ready=True)
        answer = asyncio.ensure_future(call)
        try:
            done, _ = await asyncio.wait([answer], timeout=min(_SAY_WAITING_S, timeout_s))
            if not done:  # a hub that is not up yet, or the wrong address: say so, then go on waiting
                log.warning("node %s: waiting for the hub at %s to answer (up to %g s in all)",
                            self.code, self.hub_target, timeout_s)
            reply = await answer
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, hop=f"hub at {self.hub_target}") from None
        finally:
            if not answer.done():  # this start was cancelled (Ctrl-C): the call goes with it
                answer.cancel()
        self.core.accept_directory(DsseEnvelope.from_pb(reply.directory))
        self._registered_carries = frozenset(reg.carries)

    async def refresh_directory(self) -> int:
        """Fetch the hub's directory now; returns the version we hold."""
        assert self._hub is not None
        current = self.core.directory.version if self.core.directory else 0
        try:
            reply = await self._hub.GetDirectory(services_pb2.GetDirectoryRequest(known_version=current),
                                                 timeout=self.request_timeout_s)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, hop=f"hub at {self.hub_target}") from None
        env = DsseEnvelope.from_pb(reply.directory)
        if env != (self.core.directory.envelope if self.core.directory else None):
            self.core.accept_directory(env)
        return self.core.current_directory().version

    async def recover_transfers(self) -> int:
        """Finish transfers a crash interrupted; returns how many remain unfinished."""
        try:
            return await recover_transfers(self)
        except TongbanError as e:
            log.warning("node %s: transfer recovery deferred: %s", self.code, e)
            return -1

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh_directory()
            except TongbanError as e:
                log.warning("node %s: directory refresh failed: %s", self.code, e)
            await self.recover_transfers()

    async def stop(self, grace_s: float = 2.0) -> None:
        """Stop serving, let calls in progress finish, close everything; a second call does
        nothing. A host stops its server first, then the provinces it carries (whose calls
        arrive on that server, and whose requests leave on its hub stream), then the rest."""
        if self._stopping:
            return
        self._stopping = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self.server is not None:
            await self.server.stop(grace_s)
        await asyncio.gather(*(node.stop(grace_s) for node in self.carried.values()))
        if self._hub_mux is not None and self.host is None:
            await self._hub_mux.close()
        if self._hub_channel is not None:
            await self._hub_channel.close()
        for _, channel, mux in self._peers.values():
            await mux.close()
            await channel.close()
        self.transfers.close()
        self.store.close()
        self.core.close()

    # -- answering ---------------------------------------------------------
    async def dispatch(self, env: envelope_pb2.Envelope, peer: str,
                       timeout_s: float | None = None) -> envelope_pb2.Envelope:
        """A request that arrived on this node's server: ours, or (a host's) for a province
        it carries, which answers it as if it had arrived on its own server."""
        node = self._carried_for(env) if self.carried else self
        if node.down or (node is not self and node.server is None):
            raise PeerUnavailableError(f"node {node.code} is down")
        return await node.handle(env, peer, timeout_s)

    def _carried_for(self, env: envelope_pb2.Envelope) -> ProvinceNode:
        """The carried province ``env`` is for (its header's receiver, or where its subject
        routes), else this node, whose checks then refuse what is not its own."""
        try:
            to = addressed_to(payloads.parse_routed(env.payload_type, env.payload).header,
                              self.core.current_directory(), request=True)
        except TongbanError:
            return self
        return self.carried.get(to, self)

    async def handle(self, env: envelope_pb2.Envelope, peer: str,
                     timeout_s: float | None = None) -> envelope_pb2.Envelope:
        """Answer one request envelope from TLS peer ``peer`` (the hub, or the sender
        itself where the topology allows); raises the refusal, already ledgered."""
        core = self.core
        retry = core.retry_of(env, peer)
        if retry is not None:  # the same request again: the same answer, not processed twice
            out = await asyncio.shield(retry)
            core.record("sent", out, peer=peer, outcome="retry")
            return out
        try:
            core.admission.check_capacity()
            opened = core.open(env, expect="request")
            if peer not in (HUB_CODE, opened.header.sender):
                raise PeerIdentityError(
                    f"request from {opened.header.sender} arrived from TLS peer {peer!r}: expected the hub or the sender")
            directory = core.current_directory()
            if peer != HUB_CODE and not directory.direct(opened.header.sender, self.code):
                raise AccessDeniedError(
                    f"directory v{directory.version} ({directory.topology} topology) routes {opened.header.sender} "
                    f"to {self.code} through the hub: expected the request from the hub, found it from {peer}")
            if opened.spec.flow not in SERVED_FLOWS:
                raise PayloadTypeError(
                    f"node {self.code} serves {', '.join(SERVED_FLOWS)}, found a {opened.spec.flow} request")
            # The receiver enforces the access rules itself: a request that skips the
            # hub (or a hub that forgets) gets no further than it would through the hub.
            directory.check_access(
                sender=opened.header.sender, flow=opened.spec.flow, cert_type=opened.header.subject.cert_type)
        except TongbanError as e:
            core.record("rejected", env, peer=peer, error=e)
            raise
        ticket = core.admit(env, opened, peer=peer)
        try:
            core.record("received", env, peer=peer, header=opened.header)
            req_h = opened.header
            now = core.clock()
            header = make_header(sender=self.code, receiver=req_h.sender, now_ns=now, lifetime_ms=self.lifetime_ms,
                                 trace_id=req_h.trace_id, request_digest=opened.envelope.digest(),
                                 holder_id=req_h.subject.holder_id, cert_type=req_h.subject.cert_type)
            media, message = self.answerer.answer(opened, header, now_ns=now)
            out = seal(media, message.SerializeToString(), core.signer).to_pb()
            core.record("sent", out, peer=peer, header=header)
            ticket.done(out)
        except BaseException as e:
            ticket.failed(e)
            raise
        finally:
            ticket.release()
        return out

    # -- originating -------------------------------------------------------
    def _request(self, req: services_pb2.SubmitRequest,
                 extra: dict[str, str] | None = None) -> tuple[DsseEnvelope, str]:
        media = payloads.request_type_of(req.flow)
        header = make_header(sender=self.code, receiver=req.receiver, now_ns=self.core.clock(),
                             lifetime_ms=self.lifetime_ms, purpose=req.purpose, audit=req.audit,
                             trace_id=req.trace_id, holder_id=req.subject.holder_id,
                             cert_type=req.subject.cert_type)
        check_header_shape(header, is_request=True)
        if req.flow == "identity.verify":
            body = identity_pb2.IdentityVerifyRequest(header=header, name=req.name, photo_sha256=req.photo_sha256)
        elif req.flow == "transfer.out" and extra:
            body = transfer_pb2.TransferOutRequest(header=header, transfer_id=extra["transfer_id"])
        elif req.flow == "transfer.commit" and extra:
            body = transfer_pb2.TransferCommitRequest(header=header, transfer_id=extra["transfer_id"],
                                                      new_identifier=extra["new_identifier"])
        elif req.flow == "joint.act":
            body = joint_pb2.JointActRequest(header=header, item_name=req.item, action="本地办理")
        elif req.flow == "healthcode.check":
            body = healthcode_pb2.HealthCodeCheckRequest(header=header)
        elif req.flow == "ecert.fetch":
            if not req.subject.cert_type:
                raise HeaderError("ecert.fetch: expected subject.cert_type, found an empty string")
            body = ecert_pb2.EcertFetchRequest(header=header)
        else:
            raise HeaderError(f"flow {req.flow!r} cannot be submitted at a window")
        directory = self.core.current_directory()
        receiver = req.receiver or directory.route_subject(req.subject.holder_id, req.subject.cert_type)
        return seal(media, body.SerializeToString(), self.core.signer), receiver

    async def submit(self, req: services_pb2.SubmitRequest,
                     extra: dict[str, str] | None = None) -> services_pb2.SubmitResponse:
        """Seal a request, send it (through the hub, or directly where the topology
        says so), and verify the answer end to end."""
        if req.flow == "tongban.apply":
            return await apply(self, req)
        if req.flow == "ecert.transfer":
            return await transfer(self, req)
        core = self.core
        env, receiver = self._request(req, extra)
        pb = env.to_pb()
        header = payloads.parse_routed(env.payload_type, env.payload).header
        direct = core.current_directory().direct(self.code, receiver)
        via = receiver if direct else HUB_CODE
        core.record("sent", pb, peer=via, header=header)
        started = time.perf_counter_ns()
        out = services_pb2.SubmitResponse(request=pb, trace_id=header.trace_id)
        try:
            try:
                reply = await (self._send_direct(receiver, pb) if direct else self._send_via_hub(pb))
            except TongbanError as e:
                core.record("rejected", pb, peer=via, header=header, error=e)
                raise
            try:
                opened = core.open(reply, expect="response")
                check_binding(opened, request=env, requester=self.code, responder=receiver)
                result = check_answer(opened, request_subject=header.subject, directory=core.current_directory(),
                                      trust=core.trust, now_ns=core.clock())
            except TongbanError as e:
                core.record("rejected", reply, peer=via, error=e)
                raise
        except TongbanError as e:
            out.outcome, out.detail = e.code, str(e)
            out.latency_us = (time.perf_counter_ns() - started) // 1000
            self._observe(req.flow, out)
            return out
        core.record("received", reply, peer=via, header=opened.header)
        out.outcome, out.result, out.identifier = "ok", result.result, result.identifier
        out.response.CopyFrom(reply)
        out.latency_us = (time.perf_counter_ns() - started) // 1000
        self._observe(req.flow, out)
        return out

    def _observe(self, flow: str, out: services_pb2.SubmitResponse) -> None:
        if self.core.observer is not None:
            self.core.observer.exchange(node=self.code, flow=flow, outcome=out.outcome,
                                        seconds=out.latency_us / 1e6)

    async def _send_via_hub(self, pb: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        assert self._hub_mux is not None
        timeout = self.request_timeout_s
        await self.links.cross(self.code, timeout_s=timeout)
        reply = await self._hub_mux.send(pb, timeout, stream=self.transport == "stream")
        await self.links.cross(self.code, timeout_s=timeout)
        return reply

    async def _send_direct(self, receiver: str, pb: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        """Peer to peer (X-Road style): straight to the receiver's NodeService."""
        timeout = self.request_timeout_s
        try:
            endpoint = self.core.current_directory().endpoint(receiver)
        except RoutingError:  # a peer that registered after our last refresh
            await self.refresh_directory()
            endpoint = self.core.current_directory().endpoint(receiver)
        hit = await self._peer(receiver, endpoint)
        await self.links.cross_pair(self.code, receiver, timeout_s=timeout)
        reply = await hit[2].send(pb, timeout, stream=self.transport == "stream")
        await self.links.cross_pair(self.code, receiver, timeout_s=timeout)
        return reply

    async def _peer(self, receiver: str, endpoint: str) -> tuple[str, grpc.aio.Channel, StreamMux]:
        """The channel and stream to ``receiver`` at ``endpoint`` (a new one when it moved)."""
        hit = self._peers.get(receiver)
        if hit is None or hit[0] != endpoint:
            old = hit
            channel = open_channel(endpoint, self.core.channel_creds(), peer=receiver)
            hit = (endpoint, channel, StreamMux(channel, HANDLE_STREAM, hop=f"node {receiver}"))
            self._peers[receiver] = hit  # before any await: a concurrent caller takes this one
            if old is not None:
                await old[2].close()
                await old[1].close()
        return hit

    async def warm_links(self, *, parallel: int = 4, timeout_s: float = 60.0) -> tuple[int, list[str]]:
        """Connect now to every peer the directory routes this node to directly (regional
        and direct topologies), as the hub connects to each province when it registers,
        so that the load's requests do not pay for the mTLS handshakes. Returns how many
        links are up and the peers not connected within ``timeout_s`` in all (requests
        to them connect on first use)."""
        directory = self.core.current_directory()
        peers = [(code, m.endpoint) for code, m in sorted(directory.members.items())
                 if code not in (self.code, HUB_CODE) and m.endpoint and directory.direct(self.code, code)]
        loop = asyncio.get_running_loop()
        deadline, gate = loop.time() + timeout_s, asyncio.Semaphore(parallel)

        async def connect(code: str, endpoint: str) -> bool:
            async with gate:
                try:
                    channel = (await self._peer(code, endpoint))[1]
                    await asyncio.wait_for(channel.channel_ready(), max(deadline - loop.time(), 0.001))
                    return True
                except Exception as e:  # noqa: BLE001 - any failure leaves the link to connect on first use
                    log.warning("node %s: no link to %s at %s within %.0f s: %s", self.code, code, endpoint,
                                timeout_s, type(e).__name__)
                    return False

        up = await asyncio.gather(*(connect(code, endpoint) for code, endpoint in peers))
        return sum(up), [code for (code, _), ok in zip(peers, up, strict=True) if not ok]
