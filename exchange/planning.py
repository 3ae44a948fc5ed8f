"""Pure planning helpers for a scenario run: arrivals, origin/target pairs, link delays.

Nothing here touches sockets, disks or the clock: every function takes plain values
(or a validated :class:`~exchange.scenario.Scenario`) and, where randomness is
needed, an explicit :class:`random.Random`. The same inputs and the same seeded
generator always give the same output.

Distance model (also in ``scenarios/README.md``)::

    delay_ms = distance_base_ms + distance_route_factor * d_km / 200

where ``d_km`` is the haversine great-circle distance (R = 6371 km) between the
province's capital and the capital of the ``hub_at`` province, and 200 km/ms is
the speed of light in fibre (about 2/3 of c). For the ``hub_at`` province itself
``d_km = 0``, so its delay is ``distance_base_ms``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING

from exchange.geo import great_circle_km, province

if TYPE_CHECKING:
    from exchange.scenario import FlowLoad, Ramp, Scenario

__all__ = [
    "GRAVITY_MIN_KM",
    "LIGHT_IN_FIBRE_KM_PER_MS",
    "arrival_times",
    "capital_distance_km",
    "choose_pairs",
    "expected_arrivals",
    "link_delays",
    "pair_weights",
    "rate_factor",
    "rate_segments",
]

LIGHT_IN_FIBRE_KM_PER_MS = 200.0
"""How far light travels in optical fibre in one millisecond."""

GRAVITY_MIN_KM = 50.0
"""Distances below this are taken as this in the gravity model (no division by 0)."""


def capital_distance_km(a: str, b: str) -> float:
    """Great-circle distance in km between the capitals of provinces ``a`` and ``b``."""
    pa, pb = province(a), province(b)
    return great_circle_km(pa.capital_lat, pa.capital_lon, pb.capital_lat, pb.capital_lon)


def link_delays(nodes: Iterable[str], hub_at: str, *, base_ms: float, route_factor: float) -> dict[str, float]:
    """One-way delay in ms of each node's link to a hub located at ``hub_at``'s capital.

    ``base_ms + route_factor * d_km / 200``; see the module docstring.
    """
    return {
        code: base_ms + route_factor * capital_distance_km(code, hub_at) / LIGHT_IN_FIBRE_KM_PER_MS
        for code in nodes
    }


def rate_factor(ramps: Iterable[Ramp], t: float) -> float:
    """The multiplier on every flow's rate at time ``t``: the product of active ramps."""
    factor = 1.0
    for r in ramps:
        if r.at_s <= t < r.at_s + r.duration_s:
            factor *= r.factor
    return factor


def rate_segments(ramps: Sequence[Ramp], duration_s: float) -> list[tuple[float, float, float]]:
    """Split ``[0, duration_s)`` into ``(start, end, factor)`` pieces of constant rate factor."""
    cuts = {0.0, float(duration_s)}
    for r in ramps:
        for edge in (r.at_s, r.at_s + r.duration_s):
            if 0.0 < edge < duration_s:
                cuts.add(float(edge))
    edges = sorted(cuts)
    return [(a, b, rate_factor(ramps, a)) for a, b in zip(edges, edges[1:])]


def arrival_times(
    flows: Sequence[FlowLoad], ramps: Sequence[Ramp], duration_s: float, rng: random.Random
) -> list[tuple[float, str]]:
    """Open-loop Poisson arrivals ``(t_s, flow)`` in ``[0, duration_s)``, sorted by time.

    Each flow is an independent Poisson process of rate ``rate_per_s`` times the
    product of the ramps active at that moment. The rate is piecewise constant, so
    each constant piece is drawn as a homogeneous process restarted at its start
    (exact, because exponential gaps are memoryless). Flows are drawn in the order
    given, so the result depends only on the inputs and ``rng``'s state.
    """
    segments = rate_segments(ramps, duration_s)
    out: list[tuple[float, str]] = []
    for f in flows:
        for start, end, factor in segments:
            rate = f.rate_per_s * factor
            if rate <= 0:
                continue
            t = start + rng.expovariate(rate)
            while t < end:
                out.append((t, f.flow))
                t += rng.expovariate(rate)
    out.sort(key=lambda a: a[0])
    return out


def expected_arrivals(flows: Sequence[FlowLoad], ramps: Sequence[Ramp], duration_s: float) -> float:
    """The mean number of arrivals :func:`arrival_times` draws (for progress totals, tests)."""
    total_rate = sum(f.rate_per_s for f in flows)
    return sum(total_rate * factor * (end - start) for start, end, factor in rate_segments(ramps, duration_s))


def pair_weights(scenario: Scenario) -> tuple[list[tuple[str, str]], list[float]]:
    """Every ``(origin, target)`` pair of distinct ``scenario.nodes`` and its probability.

    Weights sum to 1 and follow ``scenario.selection``:

    * ``population``: origin drawn by population, then target by population among
      the other nodes: ``p_o / P * p_t / (P - p_o)``, ``P`` the nodes' total;
    * ``gravity``: proportional to ``p_o * p_t / max(d_km, 50) ** gravity_exponent``,
      ``d_km`` between the two capitals;
    * ``matrix``: proportional to ``scenario.matrix[origin][target]`` (0 if absent).
    """
    nodes = scenario.nodes
    pairs = [(o, t) for o in nodes for t in nodes if o != t]
    pop = {c: float(province(c).population_2020) for c in nodes}
    if scenario.selection == "population":
        total = sum(pop.values())
        raw = [pop[o] / total * pop[t] / (total - pop[o]) for o, t in pairs]
    elif scenario.selection == "gravity":
        k = scenario.gravity_exponent
        raw = [pop[o] * pop[t] / max(capital_distance_km(o, t), GRAVITY_MIN_KM) ** k for o, t in pairs]
    elif scenario.selection == "matrix":
        matrix = scenario.matrix or {}
        raw = [float(matrix.get(o, {}).get(t, 0.0)) for o, t in pairs]
    else:
        raise ValueError(f"unknown selection {scenario.selection!r}, expected population, gravity or matrix")
    total = math.fsum(raw)
    if not total > 0:
        raise ValueError("pair weights sum to 0: expected at least one positive weight")
    return pairs, [w / total for w in raw]


def choose_pairs(scenario: Scenario, n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n`` ``(origin, target)`` pairs drawn independently by :func:`pair_weights`."""
    if n <= 0:
        return []
    pairs, weights = pair_weights(scenario)
    return rng.choices(pairs, cum_weights=list(accumulate(weights)), k=n)
