"""report.json's ``reconciliation.at_window``: submissions that failed at the asking
province's window, counted over the whole run. Reconciliation counts requests from the
ledgers, and these never reached one, so without this key they went unaccounted."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from exchange.loadgen import _Tally
from exchange.report.render import build_blocks, to_markdown
from exchange.runner import RunResult
from exchange.scenario import load_scenario
from tongban._summary import print_summary

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


def _rendered(tmp_path: Path, at_window: dict[str, int]) -> tuple[str, str]:
    """report.md's reconciliation paragraph and the printed reconciliation line."""
    tally = _Tally()
    for outcome, n in at_window.items():
        for _ in range(n):
            tally.sent(0)
            tally.record(REQ, outcome, 900, "", 5, counted=True)
    result = RunResult(scenario=load_scenario(ROOT / "scenarios" / "quickstart.toml"), out_dir=tmp_path)
    result.merge_loadgen(tally.to_json(10.0))
    report = result.report()
    md = to_markdown(build_blocks(report, []))
    [para] = [line for line in md.splitlines() if line.startswith("sent **")]
    console = Console(record=True, width=300)
    print_summary(report, tmp_path, console)
    [line] = [line for line in console.export_text().splitlines() if line.startswith("reconciliation:")]
    return para, line


def test_the_report_and_the_summary_say_what_failed_at_the_window(tmp_path: Path) -> None:
    para, line = _rendered(tmp_path, {"window_unavailable": 110})
    assert para == ("sent **0** · delivered **0** · rejected **0** · failed **0** · lost **0** · fired 110 · "
                    "planned 0: every request is accounted for. Not in these counts: 110 submissions that failed "
                    "at the asking province's window (window_unavailable 110). A window that refused a submission, "
                    "or could not be reached, sent nothing on, so no ledger has it.")
    assert line == ("reconciliation: sent 0, delivered 0, rejected 0, failed 0, lost 0; "
                    "failed at the window, outside these: window_unavailable 110")
    para, line = _rendered(tmp_path, {"window_deadline_exceeded": 1})
    assert line.endswith("failed at the window, outside these: window_deadline_exceeded 1 (one the window did not "
                         "answer in time may have gone on, and is then counted)")
    assert para.endswith("(window_deadline_exceeded 1). A window that refused a submission, or could not be "
                         "reached, sent nothing on, so no ledger has it; one that did not answer in time may have "
                         "sent it on, and then it is counted above.")
    para, line = _rendered(tmp_path, {})
    assert para.endswith("every request is accounted for.") and line.endswith("lost 0")
