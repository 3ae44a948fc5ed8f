"""Several hosts, for real: the hub and four provinces each in its own network
namespace, joined by veth pairs to a bridge (itself in a namespace of its own, so
the host's network is untouched), each node a separate process bound to its
namespace's address, found through a topology file, exactly as on separate
machines. This kernel has no netem, so delay comes from the nodes' own link shim
and a bandwidth limit from ``tc tbf``; the test checks the measured latency and
throughput reflect both, and removes every namespace afterwards, also on failure.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange._procs import Children
from exchange.ledger import read_entries
from exchange.metrics import FlowStats
from nodes.store import ProvinceStore
from tests.integration.conftest import copy_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TAG = f"tb{os.getpid() % 100000}"
SUBNET = "10.231.77"
HOSTS = {"000000": 1, "110000": 2, "120000": 3, "440000": 4, "510000": 5}
PORT = 7443
DELAY_MS = 25.0        # link shim: 440000's link to the hub, one way
TBF_RATE_KBIT = 256    # tbf: 510000's egress


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    subprocess.run(cmd, check=True, capture_output=True, timeout=20)


def _usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "needs iproute2 (ip, tc)"
    probe = f"{TAG}probe"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=20)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=20)
    return None


@pytest.fixture
def hosts() -> Iterator[dict[str, str]]:
    """Namespace name per node code, wired to a bridge; removed afterwards."""
    reason = _usable()
    if reason:
        pytest.skip(reason)
    bridge_ns = f"{TAG}br"
    names = {code: f"{TAG}n{i}" for code, i in HOSTS.items()}
    made: list[str] = []
    try:
        for ns in (bridge_ns, *names.values()):
            _ip("ip", "netns", "add", ns)
            made.append(ns)
            _ip("ip", "link", "set", "lo", "up", ns=ns)
        _ip("ip", "link", "add", "br0", "type", "bridge", ns=bridge_ns)
        _ip("ip", "link", "set", "br0", "up", ns=bridge_ns)
        for code, ns in names.items():
            i = HOSTS[code]
            host_end, bridge_end = f"{TAG}h{i}", f"{TAG}b{i}"
            _ip("ip", "link", "add", host_end, "type", "veth", "peer", "name", bridge_end)
            _ip("ip", "link", "set", host_end, "netns", ns)
            _ip("ip", "link", "set", bridge_end, "netns", bridge_ns)
            _ip("ip", "link", "set", host_end, "name", "eth0", ns=ns)
            _ip("ip", "addr", "add", f"{SUBNET}.{i}/24", "dev", "eth0", ns=ns)
            _ip("ip", "link", "set", "eth0", "up", ns=ns)
            _ip("ip", "link", "set", bridge_end, "master", "br0", ns=bridge_ns)
            _ip("ip", "link", "set", bridge_end, "up", ns=bridge_ns)
        _ip("tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", f"{TBF_RATE_KBIT}kbit", "burst", "16kb",
            "latency", "2000ms", ns=names["510000"])
        yield names
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def _plan(data: Path, topo: dict[str, Any], pki: Path, seconds: float) -> dict[str, Any]:
    rng = random.Random(9)
    def people(code: str) -> list[Any]:
        with ProvinceStore(data / f"{code}.sqlite", code=code) as s:
            return s.sample_persons(rng, 40)
    def certs(code: str) -> list[Any]:
        with ProvinceStore(data / f"{code}.sqlite", code=code) as s:
            return [c for c in s.sample_certificates(rng, 100) if c.state == "01"]
    reqs: list[dict[str, Any]] = []
    for flow, rate, target in (("identity.verify", 10, "440000"), ("healthcode.check", 10, "120000"),
                               ("ecert.fetch", 40, "510000")):
        pool = certs(target) if flow == "ecert.fetch" else people(target)
        t = rng.expovariate(rate)
        while t < seconds:
            x = rng.choice(pool)
            req = {"at_s": t, "flow": flow, "origin": "110000", "target": target}
            if flow == "ecert.fetch":
                req.update(holder=x.holder_code, cert_type=x.type_code)
            else:
                req.update(holder=x.id_number, name=x.name, photo=x.photo_sha256)
            reqs.append(req)
            t += rng.expovariate(rate)
    return {"endpoints": {c: e for c, e in topo["nodes"].items()}, "requests": reqs, "pki": str(pki),
            "timeout_s": 10, "start_at": time.time() + 0.5}


def test_hub_and_provinces_on_separate_hosts(hosts: dict[str, str], pki_dir: Path, world_dir: Path,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    data = copy_world(world_dir, tmp_path / "data")
    topo = {"hub": f"{SUBNET}.1:{PORT}", "nodes": {c: f"{SUBNET}.{i}:{PORT}" for c, i in HOSTS.items() if c != "000000"}}
    (tmp_path / "topology.json").write_text(json.dumps(topo), encoding="utf-8")
    (tmp_path / "links.json").write_text(json.dumps({"links": {"440000": {"delay_ms": DELAY_MS}}}), encoding="utf-8")
    topo = json.loads((tmp_path / "topology.json").read_text(encoding="utf-8"))  # as another host would read it
    logs = tmp_path / "logs"
    logs.mkdir()
    kids = Children(logs)
    common = ["--pki", str(pki_dir), "--data", str(data), "--links", str(tmp_path / "links.json")]
    try:
        hub = kids.start(["node", "hub", *common, "--listen", topo["hub"]], "hub",
                         prefix=["ip", "netns", "exec", hosts["000000"]])
        kids.wait_ready(hub, ["000000"])
        for code, endpoint in topo["nodes"].items():
            p = kids.start(["node", "province", code, *common, "--listen", endpoint, "--hub", topo["hub"]], code,
                           prefix=["ip", "netns", "exec", hosts[code]])
            assert kids.wait_ready(p, [code]) == {code: endpoint}
        # the window client runs on the hub's host and reaches the provinces over the bridge
        seconds = 8.0
        plan = _plan(data, topo, pki_dir, seconds)
        (tmp_path / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
        lg = subprocess.run(["ip", "netns", "exec", hosts["000000"], os.sys.executable, "-m", "exchange.loadgen",
                             str(tmp_path / "plan.json"), str(tmp_path / "result.json")],
                            capture_output=True, timeout=120)
        assert lg.returncode == 0, lg.stderr.decode()[-2000:]
    finally:
        kids.stop()
    doc = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    flows = {f["flow"]: FlowStats.from_json(f) for f in doc["flows"]}
    control = flows["healthcode.check"].percentile_ms(50)
    delayed = flows["identity.verify"].percentile_ms(50)
    throttled = flows["ecert.fetch"]
    # ledgers: who exchanged with whom, over the namespace addresses
    hub_rows = [r.entry for r in read_entries(data / "000000.sqlite")]
    assert {e.peer for e in hub_rows if e.direction == "forwarded"} >= {"110000", "120000", "440000", "510000"}
    # bandwidth: what 510000 sent back (envelope bytes, ledgered when sealed) until the last
    # answer arrived (the load generator's elapsed time), against tbf's rate on the wire
    sent = [e for e in (r.entry for r in read_entries(data / "510000.sqlite")) if e.direction == "sent"]
    kbit_s = sum(e.size_bytes for e in sent) * 8 / 1000 / doc["elapsed_s"]
    burst_kbit_s = 16 * 8 / doc["elapsed_s"]  # tbf lets one burst of 16 kB through at line rate
    with capsys.disabled():
        print(f"\nnetns: control p50 {control:.1f} ms, +{DELAY_MS:g} ms link p50 {delayed:.1f} ms, "
              f"tbf {TBF_RATE_KBIT} kbit/s: {kbit_s:.0f} kbit/s of envelopes, p50 {throttled.percentile_ms(50):.0f} ms, "
              f"{throttled.ok}/{throttled.count} ok")
    assert flows["identity.verify"].ok == flows["identity.verify"].count > 0
    assert control < 30
    assert delayed >= 2 * DELAY_MS and delayed >= control + 2 * DELAY_MS - 5  # the shim, both ways on the link
    assert kbit_s <= TBF_RATE_KBIT + burst_kbit_s  # never more than the wire allows
    assert kbit_s >= 0.3 * TBF_RATE_KBIT  # offered more than that, so the limit is what shows
    assert throttled.percentile_ms(50) > 4 * control  # and it queues
