"""The streaming transport: many envelopes over one stream, each checked, ledgered and
answered exactly as by the unary call; refusals as frames; the stream survives them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from certs.pki import load_node_credentials
from exchange import payloads
from exchange.dsse import pae_digest
from exchange.errors import PeerUnavailableError, RemoteError
from exchange.ledger import read_entries
from nodes._grpc import channel_credentials, open_channel
from nodes.stream import EXCHANGE_STREAM, FRAMES, HANDLE_STREAM, StreamMux
from tests.integration.conftest import Country, copy_world
from tests.integration.test_exchange import _a_certificate, _a_person, fetch_ok, rejected_rows, sealed_request
from tongban.v1 import services_pb2

pytestmark = pytest.mark.integration

def Frame(**call: Any) -> services_pb2.ExchangeStreamRequest:  # noqa: N802 - reads as a message
    return services_pb2.ExchangeStreamRequest(calls=[services_pb2.StreamCall(**call)])


def _answers(replies: list[Any]) -> list[services_pb2.StreamAnswer]:
    return [a for r in replies for a in r.answers]


def _stream(country: Country, code: str, frames: list[Any], *, method: str = EXCHANGE_STREAM,
            target: str | None = None, peer: str = "000000") -> list[Any]:
    """Send ``frames`` (messages, or raw bytes sent as they are) on one stream; every answer."""
    raw = [f if isinstance(f, bytes) else f.SerializeToString() for f in frames]
    with country.node_channel(code, target=target, peer=peer) as ch:
        call = ch.stream_stream(method, request_serializer=None, response_deserializer=FRAMES[method][1].FromString)
        return _answers(list(call(iter(raw), timeout=20)))


def test_one_stream_carries_many_exchanges_answered_by_call_id(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    envs = [sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
            for _ in range(20)]
    replies = _stream(country, "440000", [Frame(call_id=100 + i, envelope=e) for i, e in enumerate(envs)])
    assert sorted(r.call_id for r in replies) == list(range(100, 120))
    assert {r.WhichOneof("outcome") for r in replies} == {"envelope"}
    by_id = {r.call_id: r.envelope for r in replies}
    for i, env in enumerate(envs):  # each answer is bound to its own request
        request = payloads.parse_routed(env.payload_type, env.payload).header
        answer = by_id[100 + i]
        header = payloads.parse_routed(answer.payload_type, answer.payload).header
        assert (header.sender, header.receiver, header.trace_id) == ("110000", "440000", request.trace_id)
    country.flush_ledgers()
    for env in envs:  # the same ledger rows as a unary exchange
        mid = payloads.parse_routed(env.payload_type, env.payload).header.message_id
        assert [r.entry.direction for r in read_entries(country.data / "000000.sqlite", message_id=mid)] == [
            "received", "forwarded"]
        assert [r.entry.direction for r in read_entries(country.data / "110000.sqlite", message_id=mid)] == [
            "received"]


def test_a_refusal_is_a_frame_and_the_stream_goes_on(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    long_ago = time.time_ns() - 120 * 1_000_000_000
    stale = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code,
                           now_ns=long_ago)
    good = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
    replies = {r.call_id: r for r in _stream(country, "440000", [Frame(call_id=1, envelope=stale),
                                                                   Frame(call_id=2, envelope=good)])}
    header = payloads.parse_routed(stale.payload_type, stale.payload).header
    refusal = replies[1].refusal
    assert (refusal.status, refusal.reason) == ("UNAUTHENTICATED", "stale")
    assert refusal.message.startswith(
        f"envelope {header.message_id} from 440000 expired at {header.expires_at.ToJsonString()}: "
        "expected an unexpired message, it is now ")
    assert replies[2].WhichOneof("outcome") == "envelope"
    assert header.message_id in [r.message_id for r in rejected_rows(country, "000000", "stale")]


def test_an_undecodable_frame_is_refused_ledgered_and_the_stream_goes_on(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    good = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
    garbage = b"\xff\xff\xff\xff"
    replies = _stream(country, "440000", [garbage, Frame(call_id=7, envelope=good)])
    bad = next(r for r in replies if r.call_id == 0)
    assert (bad.refusal.status, bad.refusal.reason) == ("INVALID_ARGUMENT", "malformed")
    assert bad.refusal.message.startswith(
        "request body: expected a serialised tongban.v1.ExchangeStreamRequest, found 4 bytes that do not parse (")
    assert next(r for r in replies if r.call_id == 7).WhichOneof("outcome") == "envelope"
    row = rejected_rows(country, "000000", "malformed")[-1]
    assert (row.peer, row.size_bytes, row.reason) == ("440000", 4, bad.refusal.message)


def test_a_province_answers_on_its_stream_only_from_the_hub_in_a_star(country: Country) -> None:
    p = _a_person(country, "110000")
    env = sealed_request("440000", country.pki, holder=p.id_number, receiver="110000")
    frame = services_pb2.HandleStreamRequest(calls=[services_pb2.StreamCall(call_id=5, envelope=env)])
    [reply] = _stream(country, "440000", [frame], method=HANDLE_STREAM,
                      target=country.provinces["110000"].endpoint, peer="110000")
    assert (reply.call_id, reply.refusal.status, reply.refusal.reason) == (5, "PERMISSION_DENIED", "access_denied")
    assert reply.refusal.message.endswith("expected the request from the hub, found it from 440000")


def _mux_call(country: Country, code: str, env: Any, *, timeout_s: float = 10) -> Any:
    async def go() -> Any:
        c = load_node_credentials(country.pki, code)
        creds = channel_credentials(key_pem=c.tls_key_pem, chain_pem=c.tls_chain_pem, root_pem=c.root_pem)
        channel = open_channel(country.hub_target, creds, peer="000000")
        mux = StreamMux(channel, EXCHANGE_STREAM, hop="hub")
        try:
            return await mux.call(env, timeout_s)
        finally:
            await mux.close()
            await channel.close()
    return country.call(go())


def test_the_callers_mux_turns_refusal_frames_into_the_unary_errors(country: Country) -> None:
    p = _a_person(country, "110000")
    env = sealed_request("440000", country.pki, holder=p.id_number)
    with pytest.raises(RemoteError) as e:
        _mux_call(country, "510000", env)  # signed by 440000, sent over 510000's TLS
    assert (e.value.status, e.value.code) == ("UNAUTHENTICATED", "peer_identity")
    assert str(e.value) == ("hub refused: envelope signed by 440000, but the TLS peer is '510000': "
                            "expected the sender itself")


def test_a_province_that_goes_down_fails_calls_in_flight_and_is_reached_again(
        pki_dir: Path, world_dir: Path, tmp_path: Path) -> None:
    c = Country(pki_dir, copy_world(world_dir, tmp_path))
    try:
        fetch_ok(c)  # the hub's stream to 110000 is open
        c.call(c.provinces["110000"].go_down())
        cert = _a_certificate(c, "110000")
        env = sealed_request("440000", c.pki, holder=cert.holder_code, cert_type=cert.type_code)
        with pytest.raises(RemoteError) as e:
            _mux_call(c, "440000", env)
        assert (e.value.status, e.value.code) == ("UNAVAILABLE", "unavailable")
        assert str(e.value).startswith("hub refused: node 110000 ")
        c.call(c.provinces["110000"].come_up())
        endpoint = c.provinces["110000"].endpoint
        c.call(asyncio.wait_for(c.hub._channels[("110000", endpoint)][0].channel_ready(), 10))  # reconnected
        fetch_ok(c)  # on a new stream: nothing to restart
    finally:
        c.close()


class _UnaryOnly:
    """A node built on the unary protocol only: no HandleStream (UNIMPLEMENTED)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def Handle(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        return await self.inner.Handle(request, context)


def test_the_hub_falls_back_to_unary_calls_for_a_node_without_streams(
        pki_dir: Path, world_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nodes.province as province

    real = province._NodeServicer

    def unary_only(node: Any) -> Any:
        return _UnaryOnly(real(node)) if node.code == "110000" else real(node)

    add_real = province.services_pb2_grpc.add_NodeServiceServicer_to_server

    def add(servicer: Any, server: grpc.aio.Server) -> None:
        if not isinstance(servicer, _UnaryOnly):
            return add_real(servicer, server)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tongban.v1.NodeService", {
            "Handle": grpc.unary_unary_rpc_method_handler(
                servicer.Handle, request_deserializer=services_pb2.HandleRequest.FromString,
                response_serializer=services_pb2.HandleResponse.SerializeToString)}),))

    monkeypatch.setattr(province, "_NodeServicer", unary_only)
    monkeypatch.setattr(province.services_pb2_grpc, "add_NodeServiceServicer_to_server", add)
    c = Country(pki_dir, copy_world(world_dir, tmp_path))
    try:
        for _ in range(3):
            fetch_ok(c)
        mux = c.hub._stub("110000")
        assert mux.unsupported
    finally:
        c.close()


def test_a_stream_that_cannot_connect_fails_its_call_at_once(country: Country) -> None:
    async def go() -> float:
        channel = grpc.aio.insecure_channel("127.0.0.1:9")  # discard port: nothing listens
        mux = StreamMux(channel, EXCHANGE_STREAM, hop="hub")
        cert = _a_certificate(country, "110000")
        env = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
        t0 = time.monotonic()
        try:
            with pytest.raises(PeerUnavailableError) as e:
                await mux.call(env, 5)
            assert str(e.value).startswith("hub unavailable: ")
            return time.monotonic() - t0
        finally:
            await mux.close()
            await channel.close()
    assert country.call(go()) < 5  # refused, not waited out


@pytest.fixture
def many() -> Iterator[int]:
    yield 64


def test_concurrent_submits_share_the_streams(country: Country, many: int) -> None:
    cert = _a_certificate(country, "110000")
    node = country.provinces["440000"]

    async def go() -> list[str]:
        reqs = [services_pb2.SubmitRequest(flow="ecert.fetch", purpose="跨省通办 测试",
                                           subject={"holder_id": cert.holder_code, "cert_type": cert.type_code})
                for _ in range(many)]
        out = await asyncio.gather(*(node.submit(r) for r in reqs))
        return [o.outcome for o in out]

    assert country.call(go()) == ["ok"] * many
    assert node._hub_mux is not None and 1 <= node._hub_mux.streams_open <= node._hub_mux.max_lanes


def test_a_mux_allowed_two_lanes_opens_the_second_while_the_first_writes(country: Country) -> None:
    """One lane is the default; with ``max_lanes=2`` concurrent calls open a second stream
    (a lane busy writing is passed over), take turns, and every call gets its own answer."""
    cert = _a_certificate(country, "110000")
    envs = [sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
            for _ in range(24)]

    async def go() -> tuple[int, list[str]]:
        c = load_node_credentials(country.pki, "440000")
        creds = channel_credentials(key_pem=c.tls_key_pem, chain_pem=c.tls_chain_pem, root_pem=c.root_pem)
        channel = open_channel(country.hub_target, creds, peer="000000")
        mux = StreamMux(channel, EXCHANGE_STREAM, hop="hub", max_lanes=2)
        try:
            replies = await asyncio.gather(*(mux.call(e, 10) for e in envs))
            return mux.streams_open, [payloads.parse_routed(r.payload_type, r.payload).header.request_digest.hex()
                                      for r in replies]
        finally:
            await mux.close()
            await channel.close()

    lanes, digests = country.call(go())
    assert lanes == 2
    assert digests == [pae_digest(e.payload_type, e.payload).hex() for e in envs]  # each its own answer


def test_a_big_frame_is_passed_on_in_chunks_so_the_next_node_starts_early() -> None:
    """40 calls in one frame: the first answers go back before the last calls are even
    started (at most 16 per chunk), so the node that sent them gets to work on them
    while this one handles the rest, instead of every node taking the batch in turn."""
    from nodes.stream import serve_frames

    started: list[int] = []

    async def handle(env: Any, peer: str, timeout: float | None) -> Any:
        started.append(len(started))
        return env

    async def frames() -> Any:
        yield services_pb2.ExchangeStreamRequest(calls=[services_pb2.StreamCall(call_id=i + 1) for i in range(40)])

    async def first_batch() -> tuple[list[int], int]:
        gen = serve_frames(frames(), method=EXCHANGE_STREAM, peer="440000", handle=handle)
        first = await gen.__anext__()
        seen = len(started)
        rest = [a.call_id async for batch in gen for a in batch.answers]
        return [a.call_id for a in first.answers] + rest, seen

    ids, started_before_first_answer = asyncio.run(first_batch())
    assert sorted(ids) == list(range(1, 41))  # every call answered, once
    assert started_before_first_answer <= 16, f"the first answers waited for {started_before_first_answer} of 40 calls"
