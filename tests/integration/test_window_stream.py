"""WindowService.SubmitStream: many submissions over one stream, each answered as Submit
would answer it, tagged with its call id; a refusal is an answer and the stream goes on."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import grpc
import pytest

from exchange.errors import TimedOutError
from exchange.ledger import read_entries
from nodes.stream import FRAMES, WINDOW_STREAM, StreamMux
from nodes.store import ProvinceStore
from tests.integration.conftest import Country
from tests.integration.test_exchange import _a_certificate, submit
from tongban.v1 import header_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration


def _frame(*calls: services_pb2.WindowCall) -> services_pb2.SubmitStreamRequest:
    return services_pb2.SubmitStreamRequest(calls=list(calls))


def _window_stream(country: Country, origin: str, frames: list[Any], *, node_peer: str | None = None) -> dict[int, Any]:
    """Send ``frames`` (messages, or raw bytes as they are) on one SubmitStream; the answers by call id."""
    raw = [f if isinstance(f, bytes) else f.SerializeToString() for f in frames]
    ch = (country.window_channel(origin) if node_peer is None else
          country.node_channel(node_peer, target=country.provinces[origin].endpoint, peer=origin))
    with ch:
        call = ch.stream_stream(WINDOW_STREAM, request_serializer=None,
                                response_deserializer=FRAMES[WINDOW_STREAM][1].FromString)
        answers = [a for reply in call(iter(raw), timeout=30) for a in reply.answers]
    assert len({a.call_id for a in answers}) == len(answers), "one answer per call"
    return {a.call_id: a for a in answers}


def _verify(origin: str, person: Any, call_id: int) -> services_pb2.WindowCall:
    return services_pb2.WindowCall(call_id=call_id, timeout_ms=10_000, request=services_pb2.SubmitRequest(
        flow="identity.verify", subject=header_pb2.Subject(holder_id=person.id_number), name=person.name,
        photo_sha256=person.photo_sha256, purpose="跨省通办 测试"))


def test_one_stream_carries_many_submissions_answered_by_call_id(country: Country) -> None:
    with ProvinceStore(country.data / "110000.sqlite", code="110000") as s:
        people = s.sample_persons(random.Random(5), 12)
    cert = _a_certificate(country, "110000")
    fetch = services_pb2.WindowCall(call_id=99, request=services_pb2.SubmitRequest(
        flow="ecert.fetch", subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code),
        purpose="跨省通办 测试"))
    answers = _window_stream(country, "440000", [_frame(*(_verify("440000", p, 10 + i) for i, p in enumerate(people))),
                                                 _frame(fetch)])
    assert sorted(answers) == [*range(10, 22), 99]
    for i in range(12):
        r = answers[10 + i].response
        assert (r.outcome, r.result, r.detail) == ("ok", "match", "")
        assert r.response.payload_type and r.request.payload_type  # both signed envelopes, as Submit returns them
    fetched = answers[99].response
    unary = submit(country, "440000", flow="ecert.fetch",
                   subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code))
    assert (fetched.outcome, fetched.result, fetched.identifier) == (unary.outcome, unary.result, unary.identifier)
    country.flush_ledgers()
    sent = {r.entry.trace_id for r in read_entries(country.data / "440000.sqlite", direction="sent")}
    received = {r.entry.trace_id for r in read_entries(country.data / "440000.sqlite", direction="received")}
    for a in answers.values():  # every submission sealed, sent and its answer verified by 440000
        assert a.response.trace_id in sent and a.response.trace_id in received


def test_a_refused_submission_is_an_answer_and_the_stream_goes_on(country: Country) -> None:
    with ProvinceStore(country.data / "110000.sqlite", code="110000") as s:
        [person] = s.sample_persons(random.Random(6), 1)
    bogus = services_pb2.WindowCall(call_id=1, request=services_pb2.SubmitRequest(flow="bogus.flow"))
    answers = _window_stream(country, "440000", [_frame(bogus), _frame(_verify("440000", person, 2))])
    refusal = answers[1].refusal
    assert (refusal.status, refusal.reason) == ("INVALID_ARGUMENT", "payload_type")
    assert refusal.message == ("flow: expected one of the flows a window submits (ecert.fetch, ecert.transfer, "
                               "healthcode.check, identity.verify, joint.act, tongban.apply), found 'bogus.flow'")
    assert (answers[2].response.outcome, answers[2].response.result) == ("ok", "match")


def test_only_a_window_certificate_may_submit_on_the_stream(country: Country) -> None:
    with ProvinceStore(country.data / "110000.sqlite", code="110000") as s:
        [person] = s.sample_persons(random.Random(7), 1)
    answers = _window_stream(country, "440000", [_frame(_verify("440000", person, 3))], node_peer="510000")
    refusal = answers[3].refusal
    assert (refusal.status, refusal.reason) == ("UNAUTHENTICATED", "peer_identity")
    assert refusal.message == "WindowService serves the client 'window', found TLS peer '510000'"


def test_an_undecodable_submission_frame_is_refused_ledgered_and_the_stream_goes_on(country: Country) -> None:
    with ProvinceStore(country.data / "110000.sqlite", code="110000") as s:
        [person] = s.sample_persons(random.Random(8), 1)
    answers = _window_stream(country, "440000", [b"\xff\xff\xff\xff", _frame(_verify("440000", person, 4))])
    bad = answers[0].refusal
    assert (bad.status, bad.reason) == ("INVALID_ARGUMENT", "malformed")
    assert bad.message.startswith(
        "request body: expected a serialised tongban.v1.SubmitStreamRequest, found 4 bytes that do not parse (")
    assert answers[4].response.outcome == "ok"
    country.flush_ledgers()
    row = [r.entry for r in read_entries(country.data / "440000.sqlite", direction="rejected")
           if r.entry.outcome == "malformed"][-1]
    assert (row.peer, row.size_bytes, row.reason) == ("window", 4, bad.message)


class _SlowWindow(services_pb2_grpc.WindowServiceServicer):
    """Answers each submission after the delay its ``purpose`` names, in seconds."""

    async def SubmitStream(self, request_iterator: Any, context: Any) -> Any:
        pending: set[asyncio.Task[Any]] = set()
        for_answer: asyncio.Queue[Any] = asyncio.Queue()

        async def later(call: services_pb2.WindowCall) -> None:
            await asyncio.sleep(float(call.request.purpose))
            await for_answer.put(services_pb2.SubmitStreamResponse(answers=[services_pb2.WindowAnswer(
                call_id=call.call_id, response=services_pb2.SubmitResponse(outcome="ok", detail=call.request.purpose))]))

        async def read() -> None:
            async for frame in request_iterator:
                for call in frame.calls:
                    pending.add(asyncio.ensure_future(later(call)))

        reader = asyncio.ensure_future(read())
        try:
            while True:
                yield await for_answer.get()
        finally:
            reader.cancel()
            for t in pending:
                t.cancel()


def test_a_window_submission_that_times_out_leaves_the_others_on_the_stream() -> None:
    # Between nodes, a call that times out with nothing received since it was sent means a
    # dead stream, and the stream is dropped. A window's flow may take the node's whole
    # timeout while the stream carries other submissions: they must get their answers.
    async def go() -> tuple[str, str]:
        server = grpc.aio.server()
        services_pb2_grpc.add_WindowServiceServicer_to_server(_SlowWindow(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        mux = StreamMux(channel, WINDOW_STREAM, hop="window service of 440000")
        try:
            slow = asyncio.ensure_future(mux.send(services_pb2.SubmitRequest(purpose="1.5"), 0.3))
            other = asyncio.ensure_future(mux.send(services_pb2.SubmitRequest(purpose="0.6"), 5.0))
            with pytest.raises(TimedOutError) as e:
                await slow
            return str(e.value), (await other).detail
        finally:
            await mux.close()
            await channel.close()
            await server.stop(0)

    timed_out, answered = asyncio.run(go())
    assert timed_out == "window service of 440000 timed out: no answer within 0.3 s"
    assert answered == "0.6"  # answered after the other one gave up, on the same stream
