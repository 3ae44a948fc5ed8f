"""How long and how much one run measures, and the measured points themselves.

A variant (the relay, tongban's default mode, a candidate mode …) is measured by its
own load generator process: a closed-loop sweep over the plan's concurrencies (best
point = saturation), an open-loop point at a fixed rate, one request at a time.
Several variants whose set-ups are up at once are measured **turn about**, point by
point (relay c=1, tongban c=1, relay c=4, …): this kind of machine changes speed by a
third between minutes (bench/results/profile-notes.md), and a ratio of two points
measured seconds apart carries much less of that drift than two sweeps minutes apart.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Load", "Plan", "Say", "measure", "median", "point", "ratio", "strip"]

Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How long and how much: the full run (~7-10 min on 2 cores) or ``quick`` (~1.5 min)."""

    quick: bool = False
    concurrencies: tuple[int, ...] = (1, 4, 16, 32, 64)
    duration_s: float = 4.0
    warmup_s: float = 0.5
    open_duration_s: float = 5.0
    serial_duration_s: float = 3.0
    options: bool = True
    world_scale: float = 1e-3
    profile_s: float = 0.0

    @classmethod
    def make(cls, *, quick: bool, profile_s: float = 0.0, world_scale: float | None = None) -> Plan:
        if quick:
            return cls(quick=True, concurrencies=(4, 32), duration_s=1.5, warmup_s=0.3, open_duration_s=2.0,
                       serial_duration_s=1.5, options=False, world_scale=world_scale or 1e-4,
                       profile_s=profile_s)
        return cls(profile_s=profile_s, world_scale=world_scale or 1e-3)


def strip(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k not in ("event",)}


#: A point measured while the rest of the machine kept more than this many cores busy
#: (other users of a shared machine) is measured again, up to _RETRIES times; the
#: least disturbed attempt is kept and the others are counted in ``retried``.
_DISTURBED_CORES = 0.25
_RETRIES = 1


def point(lg: Any, op: str, **params: Any) -> dict[str, Any]:
    """One measured point of load generator ``lg`` (bench/loadgen.py's ``op``)."""
    tries = []
    for _ in range(1 + _RETRIES):
        r = strip(lg.run(op, **params))
        tries.append(r)
        if r.get("others_busy", 0.0) <= _DISTURBED_CORES:
            break
    best = min(tries, key=lambda t: t.get("others_busy", 0.0))
    return {**best, "retried": len(tries) - 1}


@dataclass(frozen=True)
class Load:
    """One variant to measure: its label, its load generator, whether it also gets an
    open-loop point at half its own saturation (``own``), and whether its one-at-a-time
    calls keep their marks for the hop-by-hop timeline (``marks``)."""

    label: str
    lg: Any
    own: bool = False
    marks: bool = False


def measure(loads: list[Load], plan: Plan, say: Say, rate: float | None = None) -> dict[str, dict[str, Any]]:
    """Sweep, open loop and one at a time for each of ``loads``, turn about point by point.

    The open loop runs at ``rate`` per second; None means half the saturation of the
    first load (the baseline relay, when it is measured alongside). Returns each load's
    figures by label: ``points``, ``best``, ``saturation_per_s``, ``best_concurrency``,
    ``open_at_half_baseline``, ``open_at_half_own`` (``own`` only), ``serial``.
    """
    points: dict[str, list[dict[str, Any]]] = {x.label: [] for x in loads}
    for c in plan.concurrencies:
        for x in loads:
            r = point(x.lg, "closed", concurrency=c, duration_s=plan.duration_s, warmup_s=plan.warmup_s)
            points[x.label].append(r)
            say(f"  {x.label}: c={c:<3} {r['throughput_per_s']:>7.1f}/s  p50 {r['latency']['p50_ms']} ms"
                + (f"  errors {r['errors']}" if r["errors"] else ""))
    out: dict[str, dict[str, Any]] = {}
    for x in loads:
        best = max(points[x.label], key=lambda p: p["throughput_per_s"])
        out[x.label] = {"points": points[x.label], "best": best, "saturation_per_s": best["throughput_per_s"],
                        "best_concurrency": best["concurrency"]}
    if rate is None:
        rate = out[loads[0].label]["saturation_per_s"] / 2
    for x in loads:
        r = point(x.lg, "open", rate_per_s=round(rate, 1), duration_s=plan.open_duration_s, warmup_s=plan.warmup_s,
                  seed=7, patience_s=90)
        out[x.label]["open_at_half_baseline"] = r
        say(f"  {x.label}: open loop {rate:.0f}/s -> {r['achieved_per_s']}/s ok, p50 {r['latency']['p50_ms']} ms, "
            f"p99 {r['latency']['p99_ms']} ms" + (f", errors {r['errors']}" if r["errors"] else ""))
    for x in loads:
        if x.own:
            own_rate = out[x.label]["saturation_per_s"] / 2
            r = point(x.lg, "open", rate_per_s=round(own_rate, 1), duration_s=plan.open_duration_s,
                      warmup_s=plan.warmup_s, seed=8, patience_s=90)
            out[x.label]["open_at_half_own"] = r
            say(f"  {x.label}: open loop at half its own saturation {own_rate:.0f}/s -> "
                f"p50 {r['latency']['p50_ms']} ms, p99 {r['latency']['p99_ms']} ms")
    for x in loads:
        r = point(x.lg, "closed", concurrency=1, duration_s=plan.serial_duration_s, warmup_s=plan.warmup_s,
                  **({"marks": True} if x.marks else {}))
        out[x.label]["serial"] = r
        say(f"  {x.label}: one at a time p50 {r['latency']['p50_ms']} ms")
    return out


def ratio(x: float | None, y: float | None) -> float | None:
    """x / y to 3 decimals; None when either is missing or y is 0."""
    return round(x / y, 3) if x is not None and y else None


def median(values: list[float | None]) -> float | None:
    """The median of the values that are not None, to 3 decimals; None when none is."""
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None
