"""The time-series chart marks where the load stopped sending: the seconds after it hold only
the requests still in flight, and without the mark their fall looked like an outage."""

from __future__ import annotations

from typing import Any

import matplotlib
import pytest

from exchange.report.charts import Labels, draw_timeseries, load_end

matplotlib.use("Agg")


@pytest.mark.parametrize(("report", "end"), [
    ({"scenario": {"duration_s": 10.0}, "duration_s": 10.053}, 10.0),  # stragglers finish after it
    ({"scenario": {"duration_s": 60.0}, "duration_s": 31.5, "interrupted": True}, 31.5),  # Ctrl-C at 31.5 s
    ({"duration_s": 12.0, "interrupted": True}, 12.0),
    ({"duration_s": 12.0}, None),  # no planned duration: the measured one includes the tail
    ({}, None),
])
def test_the_load_ends_at_its_planned_duration_or_where_it_was_interrupted(report: dict[str, Any],
                                                                           end: float | None) -> None:
    assert load_end(report) == end


def test_the_chart_draws_the_end_of_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[float] = []
    from matplotlib.axes import Axes

    real = Axes.axvline

    def axvline(self: Axes, x: float = 0, *args: Any, **kw: Any) -> Any:
        drawn.append(x)
        return real(self, x, *args, **kw)

    monkeypatch.setattr(Axes, "axvline", axvline)
    report = {"scenario": {"duration_s": 10.0, "warmup_s": 0.0}, "duration_s": 10.05,
              "timeseries": {"t_s": list(range(11)), "ok": [100] * 10 + [10], "failed": [0] * 11,
                             "p99_ms": [50.0] * 11}}
    assert draw_timeseries(report, Labels(cjk=None))
    assert drawn == [10.0, 10.0]  # on both panels
    drawn.clear()
    report["timeseries"] = {k: v[:10] for k, v in report["timeseries"].items()}  # no second after it
    assert draw_timeseries(report, Labels(cjk=None))
    assert drawn == []
