"""Routing per topology: the ledgers show who exchanged with whom."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from exchange.ledger import read_entries
from nodes.store import ProvinceStore
from tests.integration.conftest import Country, copy_world
from tongban.v1 import header_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration


@pytest.fixture(params=["star", "regional", "direct"])
def country(request: pytest.FixtureRequest, pki_dir: Path, world_dir: Path,
            tmp_path: Path) -> Iterator[Country]:
    c = Country(pki_dir, copy_world(world_dir, tmp_path), topology=request.param,
                provinces=("110000", "120000", "440000"))
    try:
        yield c
    finally:
        c.close()


def _fetch(country: Country, origin: str, target: str, *, expect: str = "ok") -> services_pb2.SubmitResponse:
    with ProvinceStore(country.data / f"{target}.sqlite", code=target) as s:
        cert = next(c for c in s.sample_certificates(random.Random(3), 50) if c.state == "01")
    with country.window_channel(origin) as ch:
        reply = services_pb2_grpc.WindowServiceStub(ch).Submit(services_pb2.SubmitRequest(
            flow="ecert.fetch", purpose="跨省通办 测试",
            subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code)), timeout=10)
    assert reply.outcome == expect, reply.detail
    if expect == "ok":
        assert reply.result == "ok"
    return reply


def _hops(country: Country, trace: str) -> dict[str, list[tuple[str, str]]]:
    country.flush_ledgers()
    out: dict[str, list[tuple[str, str]]] = {}
    for code in ("000000", "110000", "120000", "440000"):
        rows: list[Any] = [r.entry for r in read_entries(country.data / f"{code}.sqlite") if r.entry.trace_id == trace]
        if rows:
            out[code] = [(e.direction, e.peer) for e in rows]
    return out


def test_routes_follow_the_topology(country: Country) -> None:
    inside = _hops(country, _fetch(country, "110000", "120000").trace_id)   # both in 京津冀
    across = _hops(country, _fetch(country, "110000", "440000").trace_id)   # 京津冀 -> 广东
    via_hub_inside = {
        "110000": [("sent", "000000"), ("received", "000000")],
        "000000": [("received", "110000"), ("forwarded", "120000"), ("received", "120000"), ("forwarded", "110000")],
        "120000": [("received", "000000"), ("sent", "000000")],
    }
    direct_inside = {"110000": [("sent", "120000"), ("received", "120000")],
                     "120000": [("received", "110000"), ("sent", "110000")]}
    via_hub_across = {
        "110000": [("sent", "000000"), ("received", "000000")],
        "000000": [("received", "110000"), ("forwarded", "440000"), ("received", "440000"), ("forwarded", "110000")],
        "440000": [("received", "000000"), ("sent", "000000")],
    }
    direct_across = {"110000": [("sent", "440000"), ("received", "440000")],
                     "440000": [("received", "110000"), ("sent", "110000")]}
    expected = {
        "star": (via_hub_inside, via_hub_across),
        "regional": (direct_inside, via_hub_across),
        "direct": (direct_inside, direct_across),
    }[country.topology]
    assert (inside, across) == expected


def test_direct_exchange_survives_the_hub_going_down(country: Country) -> None:
    for node in country.provinces.values():  # what the periodic refresh does within seconds of start
        country.call(node.refresh_directory())
    country.call(country.hub.go_down())
    try:
        if country.topology == "star":  # every exchange needs the hub
            _fetch(country, "110000", "120000", expect="unavailable")
        else:  # inside a region: direct in both regional and direct
            reply = _fetch(country, "110000", "120000")
            assert _hops(country, reply.trace_id).keys() == {"110000", "120000"}
        _fetch(country, "110000", "440000", expect="ok" if country.topology == "direct" else "unavailable")
    finally:
        country.call(country.hub.come_up())


def test_warm_links_connect_every_direct_peer_and_the_exchange_uses_them(country: Country) -> None:
    """What a run does before its load in regional and direct topologies (the hub does it
    for its provinces when they register): no counted request pays for a handshake."""
    nodes = country.provinces
    for node in nodes.values():
        country.call(node.refresh_directory())
    country.call(nodes["120000"].go_down())
    try:  # a peer that does not answer is named, and the others still connect
        missed = country.call(nodes["110000"].warm_links(timeout_s=3))
    finally:
        country.call(nodes["120000"].come_up())
    assert missed == {"star": (0, []), "regional": (0, ["120000"]), "direct": (1, ["120000"])}[country.topology]
    got = {code: country.call(node.warm_links()) for code, node in nodes.items()}
    assert got == {
        "star": {"110000": (0, []), "120000": (0, []), "440000": (0, [])},
        "regional": {"110000": (1, []), "120000": (1, []), "440000": (0, [])},  # 京津冀 only
        "direct": {"110000": (2, []), "120000": (2, []), "440000": (2, [])},
    }[country.topology]
    links = {(a, b): hit for a, node in nodes.items() for b, hit in node._peers.items()}
    assert len(links) == sum(up for up, _ in got.values())
    assert all(channel.get_state() == grpc.ChannelConnectivity.READY for _, channel, _ in links.values())
    _fetch(country, "110000", "120000")
    assert {(a, b): hit for a, node in nodes.items() for b, hit in node._peers.items()} == links  # reused, not new
