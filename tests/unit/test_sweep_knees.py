"""The knee of a capacity curve, and what it says when the loads tried did not reach it."""

from __future__ import annotations

from typing import Any

from exchange.sweep import SweepResult


def _point(kind: str, offered: float, p99_ms: float, failed: int = 0) -> dict[str, Any]:
    return {"values": {"load.rate_per_s": offered, "topology.kind": kind}, "offered_per_s": offered,
            "throughput_per_s": offered, "p50_ms": p99_ms / 2, "p99_ms": p99_ms, "count": 100, "failed": failed,
            "lost": 0, "run_dir": ""}


def _result() -> SweepResult:
    r = SweepResult(budget_ms=500, axes={"load.rate_per_s": [200, 500, 800], "topology.kind": ["star", "direct",
                                                                                                "regional"]})
    r.points = [_point("star", 800, 900), _point("star", 200, 80), _point("star", 500, 400),   # out of order
                _point("direct", 200, 60), _point("direct", 500, 70), _point("direct", 800, 110),
                _point("regional", 200, 600), _point("regional", 500, 90, failed=3), _point("regional", 800, 2000)]
    return r


def test_the_knee_is_the_highest_load_within_budget_and_says_when_the_range_missed_it() -> None:
    r = _result()
    assert r.knees() == {"topology.kind=star": 500, "topology.kind=direct": 800, "topology.kind=regional": None}
    assert r.knee_bounds() == {"topology.kind=star": "found", "topology.kind=direct": "above_range",
                               "topology.kind=regional": "below_range"}
    assert [r.describe_knee(label) for label in r.knees()] == [
        "500 req/s",
        "at least 800 req/s (no load tried broke the budget)",
        "below 200 req/s (even the lowest load tried broke the budget)",
    ]
    doc = r.to_json()
    assert doc["knees"] == r.knees() and doc["knee_bounds"] == r.knee_bounds()
