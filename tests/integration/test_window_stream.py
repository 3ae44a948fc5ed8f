"""WindowService.SubmitStream: many submissions over one stream, each answered as Submit
would answer it, tagged with its call id; a refusal is an answer and the stream goes on."""

from __future__ import annotations

import random
from typing import Any

import pytest

from exchange.ledger import read_entries
from nodes.stream import FRAMES, WINDOW_STREAM
from nodes.store import ProvinceStore
from tests.integration.conftest import Country
from tests.integration.test_exchange import _a_certificate, submit
from tongban.v1 import header_pb2, services_pb2

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
    assert refusal.message == ("unknown flow 'bogus.flow', expected one of: ecert.fetch, healthcode.check, "
                               "identity.verify, joint.act, transfer.commit, transfer.out")
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
