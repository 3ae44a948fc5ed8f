"""Per-second stats over a long run: kept encoded once final, merged one second at a time.

A live latency histogram takes about 170 KiB. The load generator, the live progress view
and the runner each used to keep one per second of the run (612 MB an hour each); now
they keep the last few seconds live and the rest encoded, and the report's time series
is what it was.
"""

from __future__ import annotations

from pathlib import Path

from exchange.loadgen import _Tally
from exchange.metrics import FlowStats
from exchange.progress import LiveProgress
from exchange.runner import RunResult
from exchange.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
REQ = {"flow": "identity.verify", "origin": "110000", "target": "440000"}


def _ms(ms: int) -> float:
    """What a histogram gives back for ``ms`` (3 significant digits: 3 ms reads 3.001)."""
    s = FlowStats("x")
    s.record("ok", ms * 1000)
    return s.percentile_ms(99)


def _tally(seconds: int, per_second: int) -> _Tally:
    """Second t: ``per_second`` ok requests taking (t + 1) ms, and one timeout every third second."""
    tally = _Tally()
    for t in range(seconds):
        for _ in range(per_second):
            tally.record(REQ, "ok", (t + 1) * 1000, "match", t, True)
        if t % 3 == 0:
            tally.record(REQ, "window_deadline_exceeded", 10_000_000, "", t, True)
    return tally


def test_the_load_generator_keeps_two_seconds_live_and_reports_every_second() -> None:
    tally = _tally(120, 5)
    assert sorted(tally.seconds) == [118, 119]
    doc = tally.to_json(120.0)
    assert [s["flow"] for s in doc["seconds"]] == [str(t) for t in range(120)]
    for t in (0, 1, 59, 119):
        s = FlowStats.from_json(doc["seconds"][t])
        assert (s.ok, s.count - s.ok) == (5, 1 if t % 3 == 0 else 0)
        assert s.percentile_ms(50) == FlowStats.from_json(tally.second_json(t)).percentile_ms(50)
        assert abs(s.percentile_ms(50) - (t + 1)) <= 0.001 * (t + 1)
    assert tally.second_json(120) is None


def test_a_late_record_into_a_sealed_second_is_kept() -> None:
    tally = _tally(10, 2)
    tally.record(REQ, "ok", 50_000, "match", 3, True)  # the clock stepped back
    s = FlowStats.from_json(tally.second_json(3))
    assert (s.ok, s.count) == (3, 4)  # and its timeout
    assert s.percentile_ms(100) == _ms(50)
    assert len(tally.to_json(10.0)["seconds"]) == 10
    tally.record(REQ, "ok", 1000, "match", 10, True)  # the clock is back: second 3 is sealed again
    assert sorted(tally.seconds) == [9, 10]
    assert FlowStats.from_json(tally.second_json(3)).count == 4


def test_the_report_time_series_merges_each_second_across_load_generators(tmp_path: Path) -> None:
    result = RunResult(scenario=load_scenario(ROOT / "scenarios" / "quickstart.toml"), out_dir=tmp_path)
    first, second = _tally(6, 4), _tally(4, 1)
    for _ in range(3):  # second 7: only timeouts; second 6: nothing completed anywhere
        first.record(REQ, "window_deadline_exceeded", 10_000_000, "", 7, True)
    result.merge_loadgen(first.to_json(8.0))
    doc = second.to_json(4.0)
    doc["seconds"][2] = FlowStats("2").to_json()  # a second with nothing completed in this one
    result.merge_loadgen(doc)
    ts = result.report()["timeseries"]
    assert ts["t_s"] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert ts["ok"] == [5, 5, 4, 5, 4, 4, 0, 0]
    assert ts["failed"] == [2, 0, 0, 2, 0, 0, 0, 3]
    assert ts["p99_ms"] == [*(_ms(t + 1) for t in range(6)), None, None]  # no ok: a gap, not 0


def test_the_progress_view_forgets_old_seconds() -> None:
    progress = LiveProgress(total_s=100, enabled=False)
    tally = _tally(100, 3)
    for t in range(100):
        progress.event({"event": "progress", "t": t, "stats": tally.second_json(t)})
    assert sorted(progress.last_second) == [97, 98, 99]
    assert progress.running.count == 100 * 3 + 34
    progress.elapsed_s = 100.2
    assert progress._numbers()[3] == 3  # ok in the last full second


def test_recording_a_request_makes_no_histogram_once_its_flow_origin_and_second_exist(monkeypatch) -> None:
    """A histogram is 170 KiB and about 130 µs to make: the load generator once made two per
    request and threw them away (``setdefault(key, FlowStats(key))``), a tenth of its time."""
    import hdrh.histogram

    made = []
    init = hdrh.histogram.HdrHistogram.__init__

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(1)
        init(self, *args, **kwargs)

    tally = _tally(1, 1)  # the flow, the origin and second 0 exist
    monkeypatch.setattr(hdrh.histogram.HdrHistogram, "__init__", counting)
    for _ in range(200):
        tally.record(REQ, "ok", 1000, "match", 0, True)
    assert (len(made), tally.flows["identity.verify"].ok, tally.origins["110000"].ok) == (0, 201, 201)
    tally.record({**REQ, "origin": "120000"}, "ok", 1000, "match", 0, True)
    assert (len(made), tally.origins["120000"].flow) == (1, "120000")
