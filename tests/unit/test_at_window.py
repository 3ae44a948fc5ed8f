"""report.json's ``reconciliation.at_window``: submissions that failed at the asking
province's window, counted over the whole run. Reconciliation counts requests from the
ledgers, and these never reached one, so without this key they went unaccounted."""

from __future__ import annotations

from pathlib import Path

from exchange.loadgen import _Tally
from exchange.runner import RunResult
from exchange.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
REQ = {"flow": "identity.verify", "origin": "440000", "target": "110000"}


def test_window_failures_are_counted_warm_up_included_and_merged(tmp_path: Path) -> None:
    first, second = _Tally(), _Tally()
    first.record(REQ, "window_unavailable", 900, "", 0, counted=False)  # in the warm-up
    first.record(REQ, "window_unavailable", 900, "", 5, counted=True)
    first.record(REQ, "ok", 900, "match", 5, counted=True)
    first.record(REQ, "unavailable", 900, "", 5, counted=True)  # in the exchange: the ledgers have it
    second.record(REQ, "window_deadline_exceeded", 900, "", 6, counted=True)
    assert first.to_json(10.0)["at_window"] == {"window_unavailable": 2}
    result = RunResult(scenario=load_scenario(ROOT / "scenarios" / "quickstart.toml"), out_dir=tmp_path)
    for t in (first, second):
        result.merge_loadgen(t.to_json(10.0))
    report = result.report()
    assert report["reconciliation"]["at_window"] == {"window_deadline_exceeded": 1, "window_unavailable": 2}
    # the measured window's flow counts leave the warm-up's failure out
    assert report["flows"]["identity.verify"]["failed_by_reason"] == {
        "unavailable": 1, "window_deadline_exceeded": 1, "window_unavailable": 1}


def test_a_load_generator_result_without_the_key_still_merges(tmp_path: Path) -> None:
    doc = _Tally().to_json(1.0)
    del doc["at_window"]  # a result file written before the key existed
    result = RunResult(scenario=load_scenario(ROOT / "scenarios" / "quickstart.toml"), out_dir=tmp_path)
    result.merge_loadgen(doc)
    assert result.report()["reconciliation"]["at_window"] == {}
