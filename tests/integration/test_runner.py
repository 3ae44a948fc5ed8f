"""The scenario engine end to end: faults in their window, link delay in the
latency, every report file, and Ctrl-C leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exchange.ledger import read_entries
from exchange.progress import LiveProgress
from exchange.runner import run_scenario
from exchange.scenario import load_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NODES = '["110000", "310000", "440000", "510000"]'


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"# {name}: a test scenario\n[world]\nscale = 1e-5\nseed = 7\n{body}", encoding="utf-8")
    return path


def _one_fault(kind: str, *, at_s: float, duration_s: float, load_s: float, topology: str = "",
               load: str = "") -> str:
    """A scenario body: four provinces, no link delay, identity checks at 40/s with a 2 s
    deadline, and one fault on 440000."""
    return f"""
[topology]
nodes = {NODES}
{topology}delay = 0
[load]
duration_s = {load_s:g}
{load}request_timeout_s = 2
[load.flows."identity.verify"]
rate_per_s = 40
[[faults]]
kind = "{kind}"
at_s = {at_s:g}
duration_s = {duration_s:g}
nodes = ["440000"]
"""


def _run(path: Path, out: Path, cache: Path) -> dict:
    scenario = load_scenario(path)
    run_scenario(scenario, out_dir=out, cache_dir=cache, progress=LiveProgress(total_s=1, enabled=False))
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("cohost", [False, True], ids=["own-connections", "cohosted"])
def test_node_down_fails_only_inside_its_window_and_recovers(tmp_path: Path, cache: Path, cohost: bool) -> None:
    # co-hosted, 110000 carries 440000 (the node taken down) and 310000 carries 510000
    path = _write(tmp_path, "down", _one_fault(
        "node_down", at_s=2, duration_s=2, load_s=8,
        topology=f"province_processes = 2\ncohost = {str(cohost).lower()}\n"))
    report = _run(path, tmp_path / "out", cache)
    ts = report["timeseries"]
    failed = dict(zip(ts["t_s"], ts["failed"], strict=True))
    ok = dict(zip(ts["t_s"], ts["ok"], strict=True))
    # failures start with the fault and end within the deadline (2 s) after it
    assert sum(failed.values()) > 0
    assert all(n == 0 for t, n in failed.items() if t < 2 or t >= 4 + 2), failed
    assert sum(failed[t] for t in (2, 3) if t in failed) > 0, failed
    # and traffic recovers: the last seconds are all ok again
    assert all(ok[t] > 0 and failed.get(t, 0) == 0 for t in (6, 7)), (ok, failed)
    flow = report["flows"]["identity.verify"]
    assert set(flow["failed_by_reason"]) <= {"unavailable", "window_unavailable"}
    rec = report["reconciliation"]
    assert rec["lost"] == 0 and rec["sent"] == rec["delivered"] + rec["rejected"] + rec["failed"]
    # submissions the downed window could not take never reached a ledger: counted apart
    assert set(rec["at_window"]) <= {"window_unavailable"}
    assert rec["at_window"].get("window_unavailable", 0) >= flow["failed_by_reason"].get("window_unavailable", 0)
    assert report["faults"] == [{"kind": "node_down", "nodes": ["440000"], "at_s": 2.0, "end_s": 4.0,
                                 "detail": "stops serving", "applied": True}]
    # which connection carried each province's requests to the hub: its own, or its host's
    carriers = {(r.entry.sender, r.entry.peer) for r in read_entries(tmp_path / "out" / "data" / "000000.sqlite",
                                                                     direction="received")
                if r.entry.payload_type == "application/vnd.tongban.identity-request.v1+proto"}
    hosts = {"440000": "110000", "510000": "310000"} if cohost else {}
    assert carriers == {(code, hosts.get(code, code)) for code in ("110000", "310000", "440000", "510000")}


def test_configured_link_delay_shows_in_the_measured_p50(tmp_path: Path, cache: Path) -> None:
    path = _write(tmp_path, "slow", f"""
[topology]
nodes = {NODES}
province_processes = 1
delay = 30
[load]
duration_s = 3
[load.flows."identity.verify"]
rate_per_s = 20
""")
    report = _run(path, tmp_path / "out", cache)
    # each exchange crosses the asker's link and the answerer's link, both ways: 4 x 30 ms
    p50 = report["flows"]["identity.verify"]["latency_ms"]["p50"]
    assert 120 <= p50 <= 175, p50
    assert 30 <= report["hops"]["origin_to_hub_ms"]["p50"] <= 45
    assert report["reconciliation"]["lost"] == 0


def test_every_report_file_is_written_and_rerendered(tmp_path: Path, cache: Path) -> None:
    from tongban.cli import main

    path = _write(tmp_path, "files", f"""
[topology]
nodes = {NODES}
province_processes = 1
[load]
duration_s = 2
[load.flows."ecert.fetch"]
rate_per_s = 10
""")
    out = tmp_path / "out"
    report = _run(path, out, cache)
    names = {"report.json", "report.md", "report.html"}
    charts = {"latency_cdf.png", "timeseries.png", "matrix.png", "province_p99.png"}
    assert names <= {p.name for p in out.iterdir()}
    assert charts == {p.name for p in (out / "charts").iterdir()}
    assert report["flows"]["ecert.fetch"]["ok"] == report["flows"]["ecert.fetch"]["count"] > 0
    sizes = report["bytes"]["ecert.fetch"]  # a signed request is small, an answer carries a signed certificate
    assert 0 < sizes["requests"] < sizes["responses"]
    # the load generator's plan: its settings, and its requests one per line in time order (streamed)
    plan = json.loads((out / "plan-0.json").read_text(encoding="utf-8"))
    assert plan["requests_file"] == "plan-0.requests.jsonl" and "requests" not in plan
    lines = (out / "plan-0.requests.jsonl").read_text(encoding="utf-8").split("\n")[:-1]  # as the loadgen reads
    times = [json.loads(line)["at_s"] for line in lines]
    assert len(times) == report["reconciliation"]["planned"] == report["reconciliation"]["fired"] > 0
    assert times == sorted(times)
    before = (out / "report.md").read_bytes()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_bytes() == before


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                found.append(cmd)
    return found


def test_sigint_gives_a_partial_report_and_leaves_no_process(tmp_path: Path, cache: Path) -> None:
    path = _write(tmp_path, "interrupt", f"""
[topology]
nodes = {NODES}
province_processes = 2
[load]
duration_s = 60
[load.flows."identity.verify"]
rate_per_s = 20
""")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tongban", "run", str(path), "--out", str(out),
                             "--cache", str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until requests complete, as a user watching the progress would
        words = line.split()
        if b"done" in words and int(words[words.index(b"done") + 1]) > 0:
            break
    else:
        pytest.fail(f"run never started driving load: {proc.wait()}")
    deadline = time.monotonic() + 30
    while not (out / "loadgen-0.json").exists() and time.monotonic() < deadline:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=60)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()
    assert proc.returncode == 1
    assert _processes_mentioning(str(out)) == []
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["interrupted"] is True
    assert all(v["verified"] for v in report["ledgers"].values())
    assert report["reconciliation"]["sent"] > 0


def test_sigkill_of_a_province_and_of_the_hub_loses_nothing(tmp_path: Path, cache: Path) -> None:
    path = _write(tmp_path, "crash", f"""
[topology]
nodes = {NODES}
province_processes = 2
delay = 0
[load]
duration_s = 9
request_timeout_s = 2
[load.flows."identity.verify"]
rate_per_s = 40
[[faults]]
kind = "node_crash"
at_s = 2
duration_s = 1.5
nodes = ["440000"]
[[faults]]
kind = "hub_crash"
at_s = 5
duration_s = 1
""")
    report = _run(path, tmp_path / "out", cache)
    rec = report["reconciliation"]
    assert all(v["verified"] for v in report["ledgers"].values()), report["ledgers"]
    assert rec["lost"] == 0 and rec["sent"] == rec["delivered"] + rec["rejected"] + rec["failed"]
    assert rec["failed"] > 0  # the kills were felt
    ts = report["timeseries"]
    failed = dict(zip(ts["t_s"], ts["failed"], strict=True))
    assert all(failed.get(t, 0) == 0 for t in (8,)), failed  # and everything works again afterwards
    assert [f["applied"] for f in report["faults"]] == [True, True]


def test_a_partition_near_the_end_loses_nothing_and_the_nodes_keep_the_scenario_deadline(
        tmp_path: Path, cache: Path) -> None:
    # request_timeout_s = 2: the provinces fail a request the partition holds at 2 s (they used
    # to wait 10 s whatever the scenario said, and the run ended with those requests in no ledger:
    # "lost"); one sent late in the partition crosses when it heals, 1 s before the load ends
    path = _write(tmp_path, "cut", _one_fault("partition", at_s=2, duration_s=3, load_s=6, load="warmup_s = 0\n"))
    report = _run(path, tmp_path / "out", cache)
    rec = report["reconciliation"]
    assert rec["lost"] == 0 and rec["failed"] > 0, rec
    assert rec["sent"] == rec["delivered"] + rec["rejected"] + rec["failed"]
    failures = [r.entry for r in read_entries(tmp_path / "out" / "data" / "440000.sqlite", direction="rejected")]
    assert failures and {e.reason for e in failures} == {
        "link between 440000 and the hub is partitioned: nothing arrived within 2 s"}
    assert report["faults"][0]["end_s"] == 5.0
