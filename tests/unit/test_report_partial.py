"""`tongban report` on what users actually feed it: direct runs without hub hops, small or odd
report.json files, scenario names with brackets, faults still active at the end of the run."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from exchange.report import render_report
from exchange.report.compare import comparison_rows
from tongban._summary import print_summary
from tongban.cli import main

EXPECTED = "expected a tongban report.json (an object with schema_version 1), found"


def _direct_run() -> dict[str, Any]:
    """A direct-topology run as `tongban run` writes it: only the target's own hop has samples."""
    return {
        "schema_version": 1,
        "scenario": {"name": "hub-outage-direct", "seed": 2020, "topology": "direct", "duration_s": 22.0,
                     "warmup_s": 5.0},
        "duration_s": 22.019,
        "flows": {"identity.verify": {"count": 1000, "ok": 1000, "failed_by_reason": {}, "results": {"match": 1000},
                                      "throughput_per_s": 58.76, "latency_ms": {"p50": 18.3, "p99": 53.5}}},
        "hops": {"origin_to_hub_ms": {"count": 0}, "hub_ms": {"count": 0}, "hub_to_target_ms": {"count": 0},
                 "target_ms": {"count": 1760, "p50": 0.26, "p99": 0.823}, "target_to_hub_ms": {"count": 0},
                 "hub_to_origin_ms": {"count": 0}},
        "faults": [{"kind": "hub_down", "nodes": ["000000"], "at_s": 20.0, "end_s": 40.0, "detail": "hub stops"},
                   {"kind": "key_revoked", "nodes": ["440000"], "at_s": 20.0, "end_s": None, "detail": "k1"}],
        "reconciliation": {"sent": 1000, "delivered": 1000, "rejected": 0, "failed": 0, "lost": 0},
        "report": {"charts": False},
    }


def _md(tmp_path: Path, report: dict[str, Any]) -> list[str]:
    render_report(tmp_path, report)
    return (tmp_path / "report.md").read_text(encoding="utf-8").splitlines()


def _section(lines: list[str], heading: str) -> list[str]:
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [line for line in lines[start:end] if line]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------ report.md


def test_hop_table_has_an_integer_count_column_and_leaves_out_hops_without_samples(tmp_path: Path) -> None:
    assert _section(_md(tmp_path, _direct_run()), "## Latency per hop") == [
        "## Latency per hop",
        "| hop | p50 ms | p99 ms | count |",
        "|---|---:|---:|---:|",
        "| `target_ms` | 0.26 | 0.82 | 1,760 |",
    ]


def test_hop_rows_follow_the_request_out_and_its_answer_back(tmp_path: Path) -> None:
    report = _direct_run()
    report["hops"] = {name: {"count": 1314, "p50": 1.0, "p99": 2.0} for name in report["hops"]}
    rows = [line.split(" | ")[0] for line in _section(_md(tmp_path, report), "## Latency per hop")[3:]]
    assert rows == ["| `origin_to_hub_ms`", "| `hub_ms`", "| `hub_to_target_ms`", "| `target_ms`",
                    "| `target_to_hub_ms`", "| `hub_to_origin_ms`"]


def test_hop_table_is_left_out_when_no_hop_has_samples(tmp_path: Path) -> None:
    report = _direct_run()
    report["hops"]["target_ms"] = {"count": 0}
    md = "\n".join(_md(tmp_path, report))
    assert "Latency per hop" not in md and "| hop |" not in md


def test_the_ok_per_s_note_names_the_measured_window(tmp_path: Path) -> None:
    lines = _md(tmp_path, _direct_run())
    assert ("_count = ok + failed; latencies are of successful requests, from each request's planned send time, "
            "read from merged HDR histograms; ok/s = ok ÷ the measured window (the run's duration less its "
            "warm-up, 17.02 s)._") in lines
    assert "| `identity.verify` | 1,000 | 1,000 | 0 | – | match 1,000 | 58.8 | 18.3 | – | 53.5 | – | – |" in lines


def test_the_headline_counts_refusals_with_failures_as_the_reconciliation_splits_them(tmp_path: Path) -> None:
    # key-compromise: 70 requests refused after the revocation, none failed to get through
    report = _direct_run()
    report["flows"]["identity.verify"] |= {"count": 1070, "failed_by_reason": {"untrusted_key": 70}}
    report["reconciliation"] |= {"sent": 1070, "rejected": 70}
    lines = _md(tmp_path, report)
    assert ("**1,070 requests**, 1,000 ok (93.5 %), 70 refused or failed; 58.8 ok/s over 1 flow; "
            "worst p99 53.5 ms (`identity.verify`).") in lines


# ------------------------------------------------------------------------------ the printed summary


def _summary(report: dict[str, Any]) -> list[str]:
    printed = io.StringIO()
    print_summary(report, Path("runs/x"), Console(file=printed, width=200))
    return printed.getvalue().splitlines()


def test_summary_fault_lines_say_seconds_and_the_end_of_the_run() -> None:
    lines = _summary(_direct_run())
    assert "fault: hub_down 000000 from 20 s to 40 s" in lines
    assert "fault: key_revoked 440000 from 20 s to the end of the run" in lines


@pytest.mark.parametrize("name", ["outage[v2]", "a[/]b", "[bold]x", "trailing\\"])
def test_summary_title_shows_the_scenario_name_as_written(name: str) -> None:
    report = _direct_run()
    report["scenario"]["name"] = name
    assert _summary(report)[0].strip() == f"{name}: 22.0 s, seed 2020"


# ------------------------------------------------------------------------------ tongban report DIR


def _write(run: Path, doc: Any) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "report.json").write_text(json.dumps(doc), encoding="utf-8")
    return run


def test_report_renders_a_report_with_only_a_schema_version(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = _write(tmp_path / "run", {"schema_version": 1})
    code, out, err = _cli(["report", str(run)], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == ["unnamed scenario", "flows: no request completed", f"report: {run}/report.json",
                                f"wrote {run}/report.md", f"wrote {run}/report.html"]
    md = (run / "report.md").read_text(encoding="utf-8").splitlines()
    assert md[0] == "# tongban run report: unnamed scenario"
    assert "| seed / scale | – / – |" in md and "_No request completed in this run._" in md


def test_report_renders_null_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"schema_version": 1, "scenario": None, "duration_s": 3.5, "flows": None, "hops": None, "faults": None,
           "reconciliation": None, "ledgers": None, "provinces": None, "timeseries": None, "load": None}
    run = _write(tmp_path / "run", doc)
    code, out, err = _cli(["report", str(run)], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == ["unnamed scenario: 3.5 s", "flows: no request completed"]


def test_report_and_summary_survive_any_section_being_null_or_of_the_wrong_kind(tmp_path: Path) -> None:
    base = _direct_run()
    for key in [k for k in base if k != "schema_version"]:
        junk: Any
        for junk in (None, [], "x", 7):
            report = copy.deepcopy(base)
            report[key] = junk
            render_report(tmp_path, report)
            assert (tmp_path / "report.md").read_text(encoding="utf-8").startswith("# tongban run report: "), key
            assert _summary(report), key
            assert len(comparison_rows([(tmp_path, report)])[1]) == 1, key
    flow = base["flows"]["identity.verify"]
    for key in list(flow):
        report = copy.deepcopy(base)
        report["flows"]["identity.verify"][key] = None
        render_report(tmp_path, report)
        assert "identity.verify" in "\n".join(_summary(report)), key


@pytest.mark.parametrize(("doc", "found"), [
    ([1, 2], "a JSON array"),
    ("report", "a JSON string"),
    (None, "JSON null"),
    ({}, "an object without schema_version"),
    ({"schema_version": 99}, "schema_version 99"),
    ({"schema_version": "1"}, 'schema_version "1"'),
])
def test_report_refuses_what_is_not_a_report_json_in_one_line(doc: Any, found: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = _write(tmp_path / "run", doc)
    assert _cli(["report", str(run)], capsys) == (2, "", f"tongban: error: {run}/report.json: {EXPECTED} {found}\n")
    assert not (run / "report.md").exists()


def test_a_report_written_before_scenario_file_still_names_its_file(tmp_path: Path) -> None:
    report = _direct_run()
    report["scenario"] |= {"path": "scenarios/hub-outage-direct.toml", "sha256": "ab" * 32}
    assert ("| scenario | hub-outage-direct (`scenarios/hub-outage-direct.toml`, sha256 `abababababababab…`) |"
            in _md(tmp_path, report))
