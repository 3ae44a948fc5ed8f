"""bench/measure.py: variants measured turn about, point by point, and the open-loop rate."""

from __future__ import annotations

from typing import Any

from bench.measure import Load, Plan, measure


class Recorded:
    """A load generator's stand-in: answers each op with a set figure and logs the call
    (into one log shared by every stand-in, to see the order across variants)."""

    def __init__(self, name: str, log: list[tuple[str, str, Any]], per_s: dict[int, float]) -> None:
        self.name, self.log, self.per_s = name, log, per_s

    def run(self, op: str, **params: Any) -> dict[str, Any]:
        key = params.get("concurrency", params.get("rate_per_s"))
        self.log.append((self.name, op, key))
        per_s = self.per_s.get(params.get("concurrency", 0), params.get("rate_per_s", 0.0))
        return {"event": "result", "throughput_per_s": per_s, "achieved_per_s": per_s, "concurrency":
                params.get("concurrency"), "latency": {"p50_ms": 1.0, "p99_ms": 2.0}, "errors": {},
                "others_busy": 0.0, **({"marks": [["t", 1, 2, 3, 4]]} if params.get("marks") else {})}


def test_two_variants_take_turns_at_every_point_and_the_open_loop_runs_at_half_the_first() -> None:
    log: list[tuple[str, str, Any]] = []
    relay = Recorded("relay", log, {4: 1500.0, 32: 1700.0})
    tongban = Recorded("tongban", log, {4: 800.0, 32: 1300.0})
    plan = Plan.make(quick=True)
    out = measure([Load("relay", relay), Load("tongban", tongban, own=True, marks=True)], plan, lambda _: None)
    assert log == [("relay", "closed", 4), ("tongban", "closed", 4), ("relay", "closed", 32),
                   ("tongban", "closed", 32), ("relay", "open", 850.0), ("tongban", "open", 850.0),
                   ("tongban", "open", 650.0), ("relay", "closed", 1), ("tongban", "closed", 1)]
    assert (out["relay"]["saturation_per_s"], out["relay"]["best_concurrency"]) == (1700.0, 32)
    assert (out["tongban"]["saturation_per_s"], out["tongban"]["best_concurrency"]) == (1300.0, 32)
    assert "open_at_half_own" not in out["relay"] and out["tongban"]["open_at_half_own"]["achieved_per_s"] == 650.0
    assert "marks" not in out["relay"]["serial"] and out["tongban"]["serial"]["marks"] == [["t", 1, 2, 3, 4]]
    assert all("event" not in p for p in out["relay"]["points"])


def test_a_given_rate_overrides_half_the_first_saturation() -> None:
    log: list[tuple[str, str, Any]] = []
    out = measure([Load("window", Recorded("window", log, {4: 300.0, 32: 400.0}))], Plan.make(quick=True),
                  lambda _: None, 850.0)
    assert ("window", "open", 850.0) in log and out["window"]["open_at_half_baseline"]["achieved_per_s"] == 850.0
