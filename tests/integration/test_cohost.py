"""Co-hosting: the provinces of one process share one connection each way.

110000 hosts 440000 and 510000 (``ProvinceNode(host=...)``, ``tongban node province
--cohost``): the hub forwards their requests on its stream to 110000, and their own
requests reach the hub on 110000's stream, each envelope still signed by its own province.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from certs.pki import load_node_credentials
from exchange import payloads
from exchange.dsse import seal
from exchange.header import make_header
from exchange.ledger import read_entries
from nodes.province import ProvinceNode
from tests.integration.conftest import Country, copy_world, running
from tests.integration.test_exchange import _a_certificate, exchange_as, fetch_ok, rejected_rows, sealed_request, submit
from tongban.v1 import directory_pb2, header_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration
HOST = "110000"


class CohostCountry(Country):
    async def _make_province(self, code: str) -> ProvinceNode:
        return ProvinceNode(code=code, pki_dir=self.pki, data_dir=self.data, hub=f"127.0.0.1:{self.hub_port}",
                            host=self.provinces.get(HOST))


@pytest.fixture(scope="module")
def country(pki_dir: Path, world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Country]:
    yield from running(CohostCountry(pki_dir, copy_world(world_dir, tmp_path_factory.mktemp("data"))))


def _trace_rows(country: Country, code: str, trace: str) -> list[tuple[str, str]]:
    return [(r.entry.direction, r.entry.peer) for r in read_entries(country.data / f"{code}.sqlite")
            if r.entry.trace_id == trace]


def test_the_directory_names_each_host_and_the_hub_keeps_one_connection(country: Country) -> None:
    directory = country.hub.core.current_directory()
    assert {c: directory.carrier(c) for c in ("110000", "440000", "510000")} == {
        "110000": HOST, "440000": HOST, "510000": HOST}
    assert [m.host for m in directory.pb.members if m.code in ("110000", "440000", "510000")] == ["", HOST, HOST]
    fetch_ok(country, origin="110000", target="440000")
    fetch_ok(country, origin="440000", target="510000")
    assert [code for code, _ in country.hub._channels] == [HOST]


def test_an_exchange_between_two_carried_provinces_rides_the_hosts_connections(country: Country) -> None:
    reply = fetch_ok(country, origin="440000", target="510000")
    country.flush_ledgers()
    # The hub saw the request arrive on the host's TLS identity and answered on it;
    # each province ledgered its own side, against the hub, as it would on its own connections.
    assert {code: _trace_rows(country, code, reply.trace_id) for code in ("440000", "000000", "510000", HOST)} == {
        "440000": [("sent", "000000"), ("received", "000000")],
        "000000": [("received", HOST), ("forwarded", "510000"), ("received", "510000"), ("forwarded", "440000")],
        "510000": [("received", "000000"), ("sent", "000000")],
        HOST: [],
    }


def test_the_host_may_carry_a_hosted_provinces_envelope_but_not_the_reverse(country: Country) -> None:
    cert = _a_certificate(country, "510000")
    carried = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
    assert exchange_as(country, HOST, carried).envelope.payload  # 440000's envelope on the host's connection
    own = sealed_request(HOST, country.pki, holder=cert.holder_code, cert_type=cert.type_code)
    with pytest.raises(grpc.RpcError) as e:
        exchange_as(country, "440000", own)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert e.value.details() == "envelope signed by 110000, but the TLS peer is '440000': expected the sender itself"
    header = payloads.parse_routed(own.payload_type, own.payload).header
    assert header.message_id in [r.message_id for r in rejected_rows(country, "000000", "peer_identity")]


def test_another_province_cannot_carry_a_hosted_provinces_envelope(country: Country) -> None:
    cert = _a_certificate(country, "510000")
    env = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
    with pytest.raises(grpc.RpcError) as e:
        exchange_as(country, "120000", env)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert e.value.details() == ("envelope signed by 440000, but the TLS peer is '120000': "
                                 "expected the sender itself or its host 110000")


def _register(country: Country, code: str, host: str, *, carries: tuple[str, ...] = (),
              endpoint: str = "127.0.0.1:9") -> Any:
    header = make_header(sender=code, receiver="000000", now_ns=time.time_ns(), lifetime_ms=30_000,
                         purpose="register node endpoint")
    reg = directory_pb2.Registration(header=header, endpoint=endpoint, host=host, carries=carries)
    env = seal(payloads.REGISTRATION, reg.SerializeToString(), load_node_credentials(country.pki, code).sign_signer)
    with country.node_channel(code) as ch:
        return services_pb2_grpc.HubServiceStub(ch).Register(services_pb2.RegisterRequest(envelope=env.to_pb()),
                                                             timeout=10)


@pytest.mark.parametrize(("code", "host", "found"), [
    # a host has to say whom it carries: nobody can make 110000 receive another's requests
    ("120000", HOST, "110000, which does not carry it (it carries: 440000, 510000)"),
    ("120000", "440000", "440000, which is itself hosted by 110000"),
    ("120000", "000000", "'000000', not a province of this exchange"),
    ("440000", "120000", "120000, which has not registered"),
])
def test_a_registration_naming_a_host_that_cannot_carry_it_is_refused(country: Country, code: str, host: str,
                                                                       found: str) -> None:
    before = country.hub.core.current_directory().version
    with pytest.raises(grpc.RpcError) as e:
        _register(country, code, host)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == (f"payload host: expected a registered province that hosts itself and carries {code}, "
                                 f"found {found}")
    assert country.hub.core.current_directory().version == before
    fetch_ok(country, origin="440000", target="510000")


def test_a_host_that_carries_others_cannot_itself_be_hosted(country: Country) -> None:
    with pytest.raises(grpc.RpcError) as e:
        _register(country, HOST, "510000", carries=("440000", "510000"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == ("payload host: expected a registered province that hosts itself and carries 110000, "
                                 "found 510000, but 110000 carries 440000, 510000 itself")


def _hub_state(country: Country) -> dict[str, Any]:
    with closing(sqlite3.connect(country.data / "000000.sqlite")) as db:
        state = dict(db.execute("SELECT key, value FROM hub_state").fetchall())
    return {k: json.loads(state[k]) for k in ("hosts", "carries")}


def test_a_host_that_stops_carrying_a_province_hands_it_back_to_its_own_connections(country: Country) -> None:
    host = country.provinces[HOST]
    assert _hub_state(country) == {"hosts": {"440000": HOST, "510000": HOST}, "carries": {HOST: ["440000", "510000"]}}
    try:
        _register(country, HOST, "", carries=("440000",), endpoint=host.endpoint)
        directory = country.hub.core.current_directory()
        assert (directory.carrier("440000"), directory.carrier("510000")) == (HOST, "510000")
        assert _hub_state(country) == {"hosts": {"440000": HOST}, "carries": {HOST: ["440000"]}}
        reply = fetch_ok(country, origin="440000", target="510000")  # to 510000's own server now
        country.flush_ledgers()
        assert _trace_rows(country, "000000", reply.trace_id)[:2] == [("received", HOST), ("forwarded", "510000")]
        assert ("510000", country.provinces["510000"].endpoint) in country.hub._channels
    finally:
        country.call(host.register())
        country.call(country.provinces["510000"].register())
    assert country.hub.core.current_directory().carrier("510000") == HOST


def _fetch(country: Country, origin: str, target: str) -> services_pb2.SubmitResponse:
    cert = _a_certificate(country, target)
    return submit(country, origin, flow="ecert.fetch",
                  subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code))


def test_a_carried_province_taken_down_is_unavailable_and_the_others_keep_serving(country: Country) -> None:
    node = country.provinces["510000"]
    country.call(node.go_down())
    try:
        down = _fetch(country, "440000", "510000")
        # its host answers for it, as the hop the hub's stream reaches
        assert (down.outcome, down.detail) == ("unavailable", "hub refused: node 110000 refused: node 510000 is down")
        fetch_ok(country, origin="440000", target=HOST)
    finally:
        country.call(node.come_up())
    fetch_ok(country, origin="440000", target="510000")


def test_a_host_taken_down_refuses_its_own_calls_and_still_carries_the_others(country: Country) -> None:
    host = country.provinces[HOST]
    country.call(host.go_down())
    try:
        down = _fetch(country, "440000", HOST)
        assert (down.outcome, down.detail) == ("unavailable", "hub refused: node 110000 refused: node 110000 is down")
        with pytest.raises(grpc.RpcError) as e:
            _fetch(country, HOST, "440000")
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAVAILABLE, "node 110000 is down")
        fetch_ok(country, origin="440000", target="510000")
    finally:
        country.call(host.come_up())
    fetch_ok(country, origin=HOST, target="440000")
