"""Charts that read right: no 0 ms p99 during an outage, latency axes labelled in plain numbers that
cover the data, compare charts that mark the end of the load and start at 0, and no province p99
bar from one or two requests passed off as a tail."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from exchange.report import charts
from exchange.report.charts import Labels, draw_latency_cdf, draw_province_p99, draw_timeseries
from exchange.report.compare import draw_comparison

matplotlib.use("Agg")


def _figure(draw: Any, report: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Figure:
    """The Figure ``draw`` saves as PNG, after it is drawn (tick labels laid out)."""
    seen: list[Figure] = []
    real = charts._png

    def png(fig: Figure) -> bytes:
        seen.append(fig)
        return real(fig)

    monkeypatch.setattr(charts, "_png", png)
    assert draw(report, Labels(cjk=None))
    return seen[0]


def _outage(p99_when_down: float | None) -> dict[str, Any]:
    """10 s, the hub down for seconds 3–6: nothing succeeds then."""
    ok = [50, 50, 50, 0, 0, 0, 0, 50, 50, 50]
    return {"schema_version": 1, "scenario": {"name": "outage", "duration_s": 10.0, "warmup_s": 0.0},
            "duration_s": 10.05,
            "timeseries": {"t_s": list(range(10)), "ok": ok, "failed": [50 - v for v in ok],
                           "p99_ms": [60.0 if v else p99_when_down for v in ok],
                           "p50_ms": [30.0 if v else p99_when_down for v in ok]}}


def _ys(line: Any) -> list[float]:
    return [float(y) for y in line.get_ydata()]


@pytest.mark.parametrize("stored", [0.0, None], ids=["old report: 0.0", "new report: null"])
def test_a_second_without_a_successful_request_is_a_gap_in_the_latency_lines(
        stored: float | None, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = _figure(draw_timeseries, _outage(stored), monkeypatch)
    latency = fig.axes[1]
    lines = {line.get_label(): _ys(line) for line in latency.get_lines() if line.get_label() in ("p99", "p50")}
    assert set(lines) == {"p99", "p50"}
    for ys in lines.values():
        assert all(math.isnan(y) for y in ys[3:7]), ys  # the outage: no line at all
        assert not any(y == 0 for y in ys)  # never "0 ms"
        assert [y for y in ys if not math.isnan(y)] != []


def _compared(runs: list[tuple[Path, dict[str, Any]]], out: Path,
              monkeypatch: pytest.MonkeyPatch) -> dict[str, Axes]:
    """The axes of each chart draw_comparison writes, by file name."""
    import matplotlib.pyplot as plt

    axes: list[Axes] = []
    close = plt.close

    def record(fig: Any) -> None:
        axes.append(fig.axes[0])
        close(fig)

    monkeypatch.setattr(plt, "close", record)
    paths = draw_comparison(runs, out)
    return {p.name: ax for p, ax in zip(paths, axes, strict=True)}


@pytest.mark.parametrize("stored", [0.0, None], ids=["old report: 0.0", "new report: null"])
def test_compare_p99_has_a_gap_where_nothing_succeeded_and_starts_at_zero(
        stored: float | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ax = _compared([(tmp_path / "run", _outage(stored))], tmp_path / "cmp", monkeypatch)["compare_p99.png"]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "outage"]
    ys = _ys(line)
    assert all(math.isnan(y) for y in ys[3:7]) and not any(y == 0 for y in ys)
    assert ax.get_ylim()[0] == 0  # 60 ms is not drawn as a chart-high mountain over 59 ms


def _run(name: str, ok: list[int], duration: float) -> dict[str, Any]:
    return {"schema_version": 1, "scenario": {"name": name, "duration_s": duration}, "duration_s": duration + 0.01,
            "timeseries": {"t_s": list(range(len(ok))), "ok": ok, "p99_ms": [46.0 + i % 3 for i in range(len(ok))]}}


def test_compare_draws_steps_and_one_end_of_the_load_line_for_runs_that_share_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = [60, 68, 65, 59, 56, 45, 27, 22, 22, 30, 1]  # second 10 holds only requests still in flight
    runs = [(tmp_path / "star", _run("star", ok, 10.0)), (tmp_path / "regional", _run("regional", ok, 10.0))]
    for name, ax in _compared(runs, tmp_path / "cmp", monkeypatch).items():
        series = [ln for ln in ax.get_lines() if ln.get_label() in ("star", "regional")]
        assert [ln.get_drawstyle() for ln in series] == ["steps-post"] * 2, name
        assert [float(x) for x in series[0].get_xdata()][-2:] == [10.0, 11.0]  # the last second shows whole
        ends = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
        assert [float(ln.get_xdata()[0]) for ln in ends] == [10.0], name
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["star", "regional", "end of the load (10 s)"]
        assert ax.get_ylim()[0] == 0


def test_compare_marks_each_runs_own_end_of_the_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [(tmp_path / "short", _run("short", [50] * 6 + [2], 6.0)),
            (tmp_path / "long", _run("long", [50] * 10 + [3], 10.0))]
    ax = _compared(runs, tmp_path / "cmp", monkeypatch)["compare_throughput.png"]
    ends = {ln.get_label(): float(ln.get_xdata()[0]) for ln in ax.get_lines() if ln.get_linestyle() == ":"}
    assert ends == {"end of the load: short (6 s)": 6.0, "end of the load: long (10 s)": 10.0}


def _flows(*latencies: list[float]) -> dict[str, Any]:
    flows = {}
    for i, lat in enumerate(latencies):
        lat = sorted(lat)
        cdf = [[x, (k + 1) / len(lat)] for k, x in enumerate(lat)]
        flows[f"flow{i}"] = {"count": len(lat), "ok": len(lat), "cdf": cdf,
                             "latency_ms": {"p50": lat[len(lat) // 2], "p99": lat[-1]}}
    return {"schema_version": 1, "flows": flows}


@pytest.mark.parametrize(("lo", "hi"), [(21.0, 172.0), (2.0, 9.0), (0.8, 4_800.0), (55.0, 58.0)])
def test_latency_axes_are_labelled_in_plain_numbers_that_cover_the_data_and_do_not_overlap(
        lo: float, hi: float, monkeypatch: pytest.MonkeyPatch) -> None:
    step = (hi / lo) ** (1 / 99)
    fig = _figure(draw_latency_cdf, _flows([lo * step ** k for k in range(100)], [lo * 1.1, hi * 0.7]),
                  monkeypatch)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        left, right = ax.get_xlim()
        ticks = [t for t in ax.xaxis.get_major_ticks()
                 if left * 0.999 <= t.get_loc() <= right * 1.001 and t.label1.get_text()]
        shown = [(float(t.get_loc()), t.label1.get_text()) for t in ticks]
        assert len(shown) >= 2, shown
        for _, text in shown:
            assert re.fullmatch(r"\d{1,3}(,\d{3})*(\.\d+)?", text), shown  # 20, 100, 2,000, 0.5: no 2×10¹
        assert min(x for x, _ in shown) <= lo and max(x for x, _ in shown) >= hi, shown  # 172 ms under a label
        boxes = sorted((t.label1.get_window_extent(renderer) for t in ticks), key=lambda b: b.x0)
        assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:], strict=False)), shown
        minor = ax.xaxis.get_minorticklocs()
        assert [s for s in ax.xaxis.get_minor_formatter().format_ticks(list(minor)) if s] == []


def test_a_province_p99_from_fewer_than_10_successful_requests_is_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    report = {"schema_version": 1, "provinces": {
        "440000": {"sent": 68, "ok": 68, "p50_ms": 60.0, "p99_ms": 103.0},
        "540000": {"sent": 1, "ok": 1, "p50_ms": 99.0, "p99_ms": 99.0},
        "630000": {"sent": 9, "ok": 2, "p50_ms": 80.0, "p99_ms": 87.0}}}
    fig = _figure(draw_province_p99, report, monkeypatch)
    ax = fig.axes[0]
    bars = {round(p.get_width(), 1): p for p in ax.patches}
    assert set(bars) == {103.0, 99.0, 87.0}
    assert bars[103.0].get_hatch() is None
    for few in (99.0, 87.0):
        assert bars[few].get_hatch() and bars[few].get_facecolor() != bars[103.0].get_facecolor()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("n<10" in t for t in legend), legend
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Guangdong (68 of 68 ok)", "Xizang (1 of 1 ok)",
                                                            "Qinghai (2 of 9 ok)"]
