"""A load generator that falls behind its plan: the lag is measured, reported and in the latency.

Timing a request from when it went out would leave out the time it waited in a busy
load generator, just when the system is slowest (coordinated omission). The load
generator times from the planned time, counts the requests it sent late, and the
report says so.
"""

from __future__ import annotations

import os
from pathlib import Path

from exchange.loadgen import _Tally
from exchange.metrics import LATE_US
from exchange.progress import LiveProgress
from exchange.report.render import build_blocks, to_markdown
from exchange.runner import RunResult
from exchange.scenario import load_scenario
from tongban._summary import print_summary
from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]


def _sent(lags_us: list[int]) -> _Tally:
    tally = _Tally()
    for lag in lags_us:
        tally.sent(lag)
    return tally


def _report(tmp_path: Path, *tallies: _Tally) -> dict:
    result = RunResult(scenario=load_scenario(ROOT / "scenarios" / "quickstart.toml"), out_dir=tmp_path)
    for t in tallies:
        result.merge_loadgen(t.to_json(1.0))
    return result.report()


def test_requests_sent_late_are_counted_from_the_threshold() -> None:
    tally = _sent([0, 700, LATE_US - 1, LATE_US, 450_000])
    assert tally.fired == 5
    assert tally.sent_late == 2
    doc = tally.to_json(1.0)
    assert (doc["fired"], doc["sent_late"]) == (5, 2)
    assert doc["send_lag"]  # the histogram, encoded for the runner to merge


def test_the_report_merges_every_load_generator_lag(tmp_path: Path) -> None:
    first = _sent([1000] * 98 + [450_000, 753_000])
    second = _sent([2000] * 60)
    load = _report(tmp_path, first, second)["load"]
    assert load["sent_late"] == 2
    assert load["late_ms"] == 10.0
    assert load["send_lag_ms"]["p50"] == 1.0
    assert load["send_lag_ms"]["p99"] == 2.0
    assert load["send_lag_ms"]["max"] == 753.151
    assert _report(tmp_path)["load"] == {"send_lag_ms": {"p50": 0.0, "p99": 0.0, "max": 0.0}, "sent_late": 0,
                                         "late_ms": 10.0}


def test_the_report_says_how_busy_the_machine_was_and_how_much_the_load_generators_took(tmp_path: Path) -> None:
    result = RunResult(scenario=load_scenario(ROOT / "scenarios" / "quickstart.toml"), out_dir=tmp_path)
    for cpu_s in (3.0, 1.5):  # two load generators, over a 20 s load
        result.merge_loadgen(_sent([700] * 50).to_json(20.0, cpu_s=cpu_s))
    assert "cores" not in result.report()["load"]  # not measured (interrupted before the load, or not Linux)
    result.busy_cores = 1.9371
    load = result.report()["load"]
    assert (load["busy_cores"], load["load_generator_cores"], load["cores"]) == (1.94, 0.23, os.cpu_count())
    report = result.report()
    report["reconciliation"]["fired"] = 100
    assert (f"10 ms or more. Latencies run from the planned time, so they include this wait. During the load, "
            f"1.94 of this machine's {os.cpu_count()} cores were busy on average, 0.23 of them the load "
            "generator's._") in _markdown(report)


def _markdown(report: dict) -> str:
    return to_markdown(build_blocks(report, []))


def test_the_report_notes_the_lag_and_alerts_when_the_load_generator_fell_behind(tmp_path: Path) -> None:
    on_time = _report(tmp_path, _sent([700] * 99 + [2400]))
    on_time["reconciliation"]["fired"] = 100
    md = _markdown(on_time)
    assert ("_Load generator: requests went out p50 0.70 ms, p99 0.70 ms and at most 2.40 ms behind their "
            "planned time; 0 of 100 (0.0 %) 10 ms or more. Latencies run from the planned time, so they "
            "include this wait._") in md
    assert "fell behind" not in md

    behind = _report(tmp_path, _sent([700] * 98 + [450_000, 753_000]))
    behind["reconciliation"]["fired"] = 100
    md = _markdown(behind)
    assert ("> **The load generator fell behind its plan**: this machine could not keep up with the offered "
            "load, and the arrivals came later and more bunched than planned. Requests went out p50 0.70 ms, "
            "p99 450 ms and at most 753 ms behind their planned time; 2 of 100 (2.0 %) 10 ms or more.") in md

    del behind["load"]  # a report from before: nothing to say
    assert "Load generator" not in _markdown(behind) and "fell behind" not in _markdown(behind)


def test_the_run_summary_warns_only_when_requests_went_out_late(tmp_path: Path) -> None:
    def summary(report: dict) -> str:
        console = Console(record=True, width=200)
        print_summary(report, tmp_path, console)
        return console.export_text()

    behind = _report(tmp_path, _sent([700] * 98 + [450_000, 753_000]))
    behind["reconciliation"]["fired"] = 100
    assert ("load generator behind plan: 2 of 100 requests sent 10 ms or more late (p99 450.0 ms, max 753.2 ms); "
            "latencies include it") in summary(behind)
    behind["load"] |= {"cores": 2, "busy_cores": 1.97, "load_generator_cores": 0.19}
    assert ("load generator behind plan: 2 of 100 requests sent 10 ms or more late (p99 450.0 ms, max 753.2 ms), "
            "1.97 of 2 cores busy; latencies include it") in summary(behind)
    on_time = _report(tmp_path, _sent([700] * 100))
    assert "behind plan" not in summary(on_time)
    one_hiccup = _report(tmp_path, _sent([700] * 199 + [450_000]))  # 0.5 %: the report only notes it
    one_hiccup["reconciliation"]["fired"] = 200
    assert "behind plan" not in summary(one_hiccup)
    assert "fell behind" not in _markdown(one_hiccup)


def test_the_progress_view_shows_the_last_second_reported_not_zero() -> None:
    progress = LiveProgress(total_s=60, enabled=False)
    tally = _Tally()
    for t in range(8):
        for _ in range(400 + t):
            tally.record({"flow": "identity.verify", "origin": "110000", "target": "440000"}, "ok", 5000,
                         "match", t, True)
        progress.event({"event": "progress", "t": t, "stats": tally.second_json(t)})
    progress.elapsed_s = 9.0  # second 8's line is not in yet (a busy load generator sends it late)
    assert progress._numbers()[3] == 407
    assert "407 ok/s" in progress._line()


def test_with_two_load_generators_the_progress_view_shows_a_second_both_have_reported() -> None:
    progress = LiveProgress(total_s=60, enabled=False)
    progress.sources = 2
    req = {"flow": "identity.verify", "origin": "110000", "target": "440000"}
    fast, slow = _Tally(), _Tally()
    for t in range(7):
        for tally, n in ((fast, 300), (slow, 200)):
            for _ in range(n + t):
                tally.record(req, "ok", 5000, "match", t, True)
    for t in range(7):
        progress.event({"event": "progress", "t": t, "stats": fast.second_json(t)})
        if t < 6:  # the slow one's line for second 6 is not in yet
            progress.event({"event": "progress", "t": t, "stats": slow.second_json(t)})
    progress.elapsed_s = 7.4
    assert progress._numbers()[3] == 510  # second 5, whole; not second 6 with one of the two (306)
    progress.event({"event": "progress", "t": 6, "stats": slow.second_json(6)})
    assert progress._numbers()[3] == 512  # second 6, now whole
    progress.event({"event": "progress", "t": 7, "stats": None})  # a second with nothing completed
    progress.event({"event": "progress", "t": 7, "stats": None})
    progress.elapsed_s = 8.1
    assert progress._numbers()[3] == 0


def test_a_stop_while_waiting_for_the_next_planned_request_ends_the_run_at_once(pki_dir: Path,
                                                                                 tmp_path: Path) -> None:
    """The wait for a request's planned time is a plain timer now, checked for a stop in
    short steps: SIGTERM an hour before the next request still ends the run in seconds."""
    import json
    import signal
    import subprocess
    import sys
    import threading
    import time

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({
        "pki": str(pki_dir), "endpoints": {"110000": "127.0.0.1:9"}, "timeout_s": 1.0,
        "requests": [{"flow": "identity.verify", "origin": "110000", "target": "440000", "holder": "x",
                      "at_s": 3600.0}]}), encoding="utf-8")
    result = tmp_path / "result.json"
    with (tmp_path / "loadgen.log").open("wb") as log, subprocess.Popen(
            [sys.executable, "-m", "exchange.loadgen", str(plan), str(result)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=ROOT) as proc:
        watchdog = threading.Timer(60, proc.kill)  # a hung load generator fails the test, not the suite
        watchdog.start()
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())  # its first progress line: running and waiting
            assert (first["event"], first["fired"]) == ("progress", 0)
            stopped = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert time.monotonic() - stopped < 10.0  # not the hour to its next request
        finally:
            watchdog.cancel()
            proc.kill()
    assert "Traceback" not in (tmp_path / "loadgen.log").read_text(encoding="utf-8")
    doc = json.loads(result.read_text(encoding="utf-8"))
    assert (doc["interrupted"], doc["fired"], doc["done"]) == (True, 0, 0)
