"""`tongban compare`: runs of the same scenario told apart, fault windows shaded to the end of the
run, and one error line for a file that is not a report.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from exchange.report.compare import comparison_rows, draw_comparison, run_labels
from tongban.cli import main

matplotlib.use("Agg")

EXPECTED = "expected a tongban report.json (an object with schema_version 1), found"


def _report(name: str, *, faults: list[dict[str, Any]] | None = None, seconds: int = 22) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "scenario": {"name": name, "topology": "star"},
        "flows": {"identity.verify": {"count": 100, "ok": 90, "latency_ms": {"p50": 40.0, "p99": 70.0}},
                  "ecert.fetch": {"count": 50, "ok": 50, "latency_ms": {"p50": 45.5, "p99": 76.1}}},
        "reconciliation": {"lost": 0},
        "timeseries": {"t_s": list(range(seconds)), "ok": [6] * seconds, "p99_ms": [70.0] * seconds},
        "faults": faults or [],
    }


def _write(run: Path, doc: Any) -> Path:
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps(doc), encoding="utf-8")
    return run


def test_runs_of_the_same_scenario_are_labelled_with_their_directory(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "quickstart-20261208-0612", _report("quickstart"))
    b = _write(tmp_path / "quickstart-20261208-0700", _report("quickstart"))
    c = _write(tmp_path / "hub-outage-20261208-0800", _report("hub-outage"))
    assert main(["compare", str(a), str(b), str(c), "--out", str(tmp_path / "cmp")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    runs = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert runs == ["quickstart (quickstart-20261208-0612)", "quickstart (quickstart-20261208-0700)", "hub-outage"]


def test_unique_scenario_names_stay_plain_and_equal_directory_names_fall_back_to_the_path(tmp_path: Path) -> None:
    a, b = tmp_path / "one" / "run", tmp_path / "two" / "run"
    assert run_labels([(a, _report("x")), (b, _report("y"))]) == ["x", "y"]
    assert run_labels([(a, _report("x")), (b, _report("x"))]) == [f"x ({a})", f"x ({b})"]
    assert run_labels([(a, _report("x")), (a, _report("x"))]) == [f"x ({a}) #1", f"x ({a}) #2"]


def _drawn(runs: list[tuple[Path, dict[str, Any]]], out: Path,
           monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], set[tuple[float, float]]]]:
    """(legend texts, shaded x spans) of each chart draw_comparison writes."""
    import matplotlib.pyplot as plt

    seen = []
    close = plt.close

    def record(fig: Any) -> None:
        ax = fig.axes[0]
        spans = set()
        for patch in ax.patches:
            xs = patch.get_patch_transform().transform(patch.get_path().vertices)[:, 0]
            spans.add((round(float(xs.min()), 3), round(float(xs.max()), 3)))
        seen.append(([t.get_text() for t in ax.get_legend().get_texts()], spans))
        close(fig)

    monkeypatch.setattr(plt, "close", record)
    draw_comparison(runs, out)
    return seen


def test_chart_legends_tell_the_runs_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [(tmp_path / "quickstart-20261208-0612", _report("quickstart")),
            (tmp_path / "quickstart-20261208-0700", _report("quickstart"))]
    for legend, _ in _drawn(runs, tmp_path / "cmp", monkeypatch):
        assert legend == ["quickstart (quickstart-20261208-0612)", "quickstart (quickstart-20261208-0700)"]


def test_a_fault_still_active_at_the_end_is_shaded_to_the_end_of_the_run(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    faults = [{"kind": "hub_down", "nodes": ["000000"], "at_s": 10.0, "end_s": 15.0},
              {"kind": "key_revoked", "nodes": ["440000"], "at_s": 5.0, "end_s": None}]
    charts = _drawn([(tmp_path / "run", _report("outage", faults=faults, seconds=22))], tmp_path / "cmp", monkeypatch)
    assert [spans for _, spans in charts] == [{(10.0, 15.0), (5.0, 22.0)}] * 2
    rows = comparison_rows([(tmp_path / "run", _report("outage", faults=faults))])[1]
    assert rows[0][-1] == "hub_down 10–15 s, key_revoked 5 s–end of run"


def test_a_flow_without_latencies_and_a_report_with_only_a_schema_version_compare(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partial = _report("partial")
    partial["flows"] = {"identity.verify": {"count": 3, "ok": 0, "latency_ms": None}}
    a = _write(tmp_path / "a", partial)
    b = _write(tmp_path / "b", {"schema_version": 1})
    _, rows = comparison_rows([(a, partial), (b, {"schema_version": 1})])
    assert rows == [["partial", "star", "3", "0.0", "3", "0", "-", "-", "-"],
                    ["b", "-", "-", "-", "-", "-", "-", "-", "-"]]
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    assert capsys.readouterr().err == ""


def test_the_printed_table_shows_run_names_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a", _report("outage[v2] [/]"))
    b = _write(tmp_path / "b", _report("[bold]x"))
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "outage[v2] [/]" in out and "[bold]x" in out


@pytest.mark.parametrize(("doc", "found"), [
    ({}, "an object without schema_version"),
    ({"schema_version": 99}, "schema_version 99"),
    ([{"schema_version": 1}], "a JSON array"),
    (3, "a JSON number"),
])
def test_compare_refuses_what_is_not_a_report_json_naming_the_file(doc: Any, found: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path / "good", _report("quickstart"))
    bad = _write(tmp_path / "bad", doc)
    assert main(["compare", str(good), str(bad), "--out", str(tmp_path / "cmp")]) == 2
    assert capsys.readouterr() == ("", f"tongban: error: {bad}/report.json: {EXPECTED} {found}\n")
    assert not (tmp_path / "cmp").exists()
