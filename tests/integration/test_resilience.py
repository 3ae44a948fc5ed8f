"""Back-pressure and isolation: a node at capacity sheds load, and a slow province
does not slow the exchanges that do not involve it."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hdrh.histogram import HdrHistogram

from exchange import payloads
from exchange.loadgen import drive
from exchange.metrics import FlowStats
from nodes.store import ProvinceStore
from tests.integration.conftest import Country, copy_world
from tests.integration.test_exchange import _a_certificate, exchange_as, fetch_ok, rejected_rows, sealed_request

pytestmark = pytest.mark.integration


def test_a_node_at_capacity_sheds_with_resource_exhausted(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    admission = country.hub.core.admission
    limit = admission.max_inflight
    admission.max_inflight = 0
    try:
        env = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
        with pytest.raises(grpc.RpcError) as e:
            exchange_as(country, "440000", env)
    finally:
        admission.max_inflight = limit
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert e.value.details() == "node at capacity: 0 requests in progress, expected fewer than 0; retry later"
    header = payloads.parse_routed(env.payload_type, env.payload).header
    assert header.message_id in [r.message_id for r in rejected_rows(country, "000000", "overloaded")]
    exchange_as(country, "440000", env)  # shed, not processed: the same request is welcome later
    fetch_ok(country)


HEALTHY = ("110000", "120000", "440000")
SLOW = "510000"


@pytest.fixture
def four(pki_dir: Path, world_dir: Path, tmp_path: Path) -> Iterator[Country]:
    c = Country(pki_dir, copy_world(world_dir, tmp_path), provinces=(*HEALTHY, SLOW))
    try:
        yield c
    finally:
        c.close()


def _plan(c: Country, seconds: float) -> dict[str, Any]:
    rng = random.Random(4)
    people = {}
    for code in (*HEALTHY, SLOW):
        with ProvinceStore(c.data / f"{code}.sqlite", code=code) as s:
            people[code] = s.sample_persons(rng, 50)
    reqs = []
    for flow, rate, targets in (("identity.verify", 40, HEALTHY), ("healthcode.check", 20, (SLOW,))):
        t = rng.expovariate(rate)
        while t < seconds:
            target = rng.choice(targets)
            origin = rng.choice([o for o in HEALTHY if o != target])
            p = rng.choice(people[target])
            reqs.append({"at_s": t, "flow": flow, "origin": origin, "target": target, "holder": p.id_number,
                         "name": p.name, "photo": p.photo_sha256})
            t += rng.expovariate(rate)
    return {"endpoints": {code: n.endpoint for code, n in c.provinces.items()}, "requests": reqs,
            "pki": str(c.pki), "timeout_s": 10, "start_at": time.time() + 0.3}


def _p99(c: Country, seconds: float) -> dict[str, FlowStats]:
    doc = asyncio.run(drive(_plan(c, seconds)))
    return {f["flow"]: FlowStats.from_json(f) for f in doc["flows"]}


@pytest.mark.slow
def test_a_slow_province_does_not_stall_the_others(four: Country, capsys: pytest.CaptureFixture[str]) -> None:
    # alternate the two conditions and keep each one's best p99: noise on a shared
    # 2-core machine only ever adds latency, the effect measured here must survive it
    runs: dict[bool, list[dict[str, FlowStats]]] = {False: [], True: []}
    for slow in (False, True, False, True):
        four.hub.links.set(SLOW, delay_ms=250 if slow else 0)  # the hub's path to 510000: +500 ms
        runs[slow].append(_p99(four, 4))
    healthy = min(runs[False], key=lambda r: r["identity.verify"].percentile_ms(99))
    slowed = min(runs[True], key=lambda r: r["identity.verify"].percentile_ms(99))
    base, now = healthy["identity.verify"].percentile_ms(99), slowed["identity.verify"].percentile_ms(99)
    assert healthy["identity.verify"].ok == healthy["identity.verify"].count > 80
    assert slowed["identity.verify"].ok == slowed["identity.verify"].count > 80
    assert slowed["healthcode.check"].percentile_ms(50) >= 500  # the slow province is really slow
    with capsys.disabled():
        print(f"\nslow-province isolation: unaffected p99 {base:.2f} ms healthy, {now:.2f} ms with 510000 "
              f"at +500 ms ({now / base:.2f}x)")
    # within 1.5x, with a 15 ms floor for p99s of a few tens of ms measured on 2 shared cores
    # (a stalled hub would put them near the slow province's 500 ms)
    assert now <= max(1.5 * base, base + 15.0)


def _on_time_and_late(c: Country, behind_s: float) -> dict[str, Any]:
    """Five verifications 10 ms apart, with the plan's start ``behind_s`` in the past."""
    with ProvinceStore(c.data / "110000.sqlite", code="110000") as s:
        people = s.sample_persons(random.Random(7), 5)
    reqs = [{"at_s": i * 0.01, "flow": "identity.verify", "origin": "440000", "target": "110000",
             "holder": p.id_number, "name": p.name, "photo": p.photo_sha256} for i, p in enumerate(people)]
    return asyncio.run(drive({"endpoints": {code: n.endpoint for code, n in c.provinces.items()}, "requests": reqs,
                              "pki": str(c.pki), "timeout_s": 10, "start_at": time.time() - behind_s}))


def test_a_load_generator_behind_its_plan_counts_the_wait_in_the_latency(country: Country) -> None:
    on_time = _on_time_and_late(country, -0.2)
    late = _on_time_and_late(country, 3.0)  # as if the load generator had been stalled for 3 s
    for doc in (on_time, late):
        [flow] = [FlowStats.from_json(f) for f in doc["flows"]]
        assert (doc["fired"], flow.count, flow.ok) == (5, 5, 5)
    assert FlowStats.from_json(on_time["flows"][0]).percentile_ms(100) < 2000
    assert late["sent_late"] == 5
    lag = HdrHistogram.decode(late["send_lag"])
    assert lag.get_min_value() >= 2_950_000  # µs: 3 s behind, less the last one's 40 ms
    # from the planned time, not from the send: every latency holds the 3 s the request waited
    assert FlowStats.from_json(late["flows"][0]).latency_us.get_min_value() >= 2_950_000
