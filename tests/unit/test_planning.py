"""Pure planning helpers: arrivals, ramps, origin/target pairs, the distance model."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.geo import PROVINCE_CODES, province
from exchange.planning import (
    arrival_times,
    capital_distance_km,
    choose_pairs,
    expected_arrivals,
    link_delays,
    pair_weights,
    rate_factor,
    rate_segments,
)
from exchange.scenario import FlowLoad, Ramp, Scenario

IV = FlowLoad(flow="identity.verify", rate_per_s=100.0)
EC = FlowLoad(flow="ecert.fetch", rate_per_s=30.0)


def _scenario(**kw: object) -> Scenario:
    return Scenario(name="t", path=Path("t.toml"), sha256="0" * 64, flows=(IV,), **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- arrivals


def test_same_seed_gives_identical_arrivals_and_pairs() -> None:
    ramps = (Ramp(at_s=2, duration_s=3, factor=2.0),)
    a = arrival_times((IV, EC), ramps, 10.0, random.Random(7))
    b = arrival_times((IV, EC), ramps, 10.0, random.Random(7))
    assert a == b and len(a) > 1000
    assert a != arrival_times((IV, EC), ramps, 10.0, random.Random(8))
    s = _scenario()
    assert choose_pairs(s, 5000, random.Random(3)) == choose_pairs(s, 5000, random.Random(3))


def test_arrivals_are_sorted_inside_the_run_and_name_their_flow() -> None:
    got = arrival_times((IV, EC), (), 30.0, random.Random(1))
    times = [t for t, _ in got]
    assert times == sorted(times) and 0 <= times[0] and times[-1] < 30.0
    counts = Counter(f for _, f in got)
    assert set(counts) == {"identity.verify", "ecert.fetch"}


def test_arrival_rate_matches_the_configured_rate() -> None:
    # 100/s for 100 s: 10,000 expected, standard deviation 100; 5% is 5 sigma.
    got = arrival_times((IV,), (), 100.0, random.Random(2021))
    assert abs(len(got) - 10_000) < 500
    assert expected_arrivals((IV,), (), 100.0) == pytest.approx(10_000)


def test_a_ramp_doubles_the_arrivals_inside_its_window_only() -> None:
    flow = FlowLoad(flow="identity.verify", rate_per_s=1000.0)
    got = arrival_times((flow,), (Ramp(at_s=10, duration_s=10, factor=2.0),), 30.0, random.Random(5))
    before = sum(1 for t, _ in got if t < 10)
    inside = sum(1 for t, _ in got if 10 <= t < 20)
    after = sum(1 for t, _ in got if t >= 20)
    assert 1.85 < inside / before < 2.15  # ~20,000 vs ~10,000: about 6 sigma of margin
    assert 0.9 < after / before < 1.1
    assert expected_arrivals((flow,), (Ramp(at_s=10, duration_s=10, factor=2.0),), 30.0) == pytest.approx(40_000)


def test_a_zero_factor_ramp_silences_its_window_and_ramps_multiply() -> None:
    got = arrival_times((IV,), (Ramp(at_s=5, duration_s=5, factor=0.0),), 15.0, random.Random(9))
    assert not [t for t, _ in got if 5 <= t < 10]
    assert [t for t, _ in got if t >= 10]
    ramps = (Ramp(at_s=0, duration_s=10, factor=2.0), Ramp(at_s=5, duration_s=10, factor=3.0))
    assert [rate_factor(ramps, t) for t in (0, 5, 9.99, 10, 15)] == [2.0, 6.0, 6.0, 3.0, 1.0]
    assert rate_segments(ramps, 12.0) == [(0.0, 5.0, 2.0), (5.0, 10.0, 6.0), (10.0, 12.0, 3.0)]


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(0.1, 50), duration=st.floats(0.5, 20), seed=st.integers(0, 2**32),
       at=st.floats(0, 20), length=st.floats(0.01, 20), factor=st.floats(0, 4))
def test_arrivals_always_lie_in_the_run_in_order(rate: float, duration: float, seed: int,
                                                 at: float, length: float, factor: float) -> None:
    flows = (FlowLoad(flow="ecert.fetch", rate_per_s=rate),)
    got = arrival_times(flows, (Ramp(at_s=at, duration_s=length, factor=factor),), duration, random.Random(seed))
    times = [t for t, _ in got]
    assert times == sorted(times)
    assert all(0 <= t < duration for t in times)
    assert all(rate_factor((Ramp(at_s=at, duration_s=length, factor=factor),), t) > 0 for t in times)


# ---------------------------------------------------------------- pairs


def test_population_weights_cover_every_ordered_pair_and_sum_to_one() -> None:
    pairs, weights = pair_weights(_scenario())
    assert len(pairs) == 32 * 31 and len(set(pairs)) == len(pairs)
    assert all(o != t for o, t in pairs)
    assert sum(weights) == pytest.approx(1.0)
    w = dict(zip(pairs, weights))
    # the two most populous provinces exchange far more than the two least populous
    assert w[("440000", "370000")] > 50 * w[("540000", "630000")]


def test_population_selection_draws_origins_by_population() -> None:
    got = choose_pairs(_scenario(), 100_000, random.Random(11))
    assert all(o != t for o, t in got)
    origins = Counter(o for o, _ in got)
    total = sum(province(c).population_2020 for c in PROVINCE_CODES)
    share = province("440000").population_2020 / total  # Guangdong, ~8.9%
    assert abs(origins["440000"] / 100_000 - share) < 0.005


def test_subset_nodes_only_pair_among_themselves() -> None:
    nodes = ("110000", "440000", "510000")
    s = _scenario(nodes=nodes, links={n: _scenario().links[n] for n in nodes})
    pairs, _ = pair_weights(s)
    assert sorted(pairs) == sorted((o, t) for o in nodes for t in nodes if o != t)
    assert set(choose_pairs(s, 2000, random.Random(1))) == set(pairs)


def test_matrix_selection_only_draws_listed_pairs_near_their_weights() -> None:
    s = _scenario(selection="matrix", matrix={"440000": {"110000": 3.0, "310000": 1.0}, "510000": {"110000": 0.0}})
    got = Counter(choose_pairs(s, 40_000, random.Random(4)))
    assert set(got) == {("440000", "110000"), ("440000", "310000")}
    assert abs(got[("440000", "110000")] / 40_000 - 0.75) < 0.02


def test_gravity_prefers_near_pairs_relative_to_population() -> None:
    s = _scenario(selection="gravity")
    w = dict(zip(*pair_weights(s)))

    def per_capita(o: str, t: str) -> float:
        return w[(o, t)] / (province(o).population_2020 * province(t).population_2020)

    # Beijing-Tianjin ~110 km, Beijing-Urumqi ~2400 km: the distance ratio with exponent 1
    assert per_capita("110000", "120000") > 15 * per_capita("110000", "650000")
    # with population selection there is no such preference
    p = dict(zip(*pair_weights(_scenario())))
    near = p[("110000", "120000")] / (province("120000").population_2020)
    far = p[("110000", "650000")] / (province("650000").population_2020)
    assert near == pytest.approx(far)
    # a steeper exponent prefers near pairs even more; draws follow the weights
    steep = dict(zip(*pair_weights(_scenario(selection="gravity", gravity_exponent=2.0))))
    assert steep[("110000", "120000")] / steep[("110000", "650000")] > 10 * (
        w[("110000", "120000")] / w[("110000", "650000")])
    drawn = Counter(choose_pairs(s, 100_000, random.Random(6)))
    assert drawn[("110000", "120000")] > 5 * drawn[("110000", "650000")]


def test_choose_pairs_of_nothing_is_empty() -> None:
    assert choose_pairs(_scenario(), 0, random.Random(1)) == []


# ---------------------------------------------------------------- distance model


def test_distance_model_delays() -> None:
    d = link_delays(PROVINCE_CODES, "110000", base_ms=1.0, route_factor=1.5)
    assert d["110000"] == 1.0  # the hub's own province: d = 0
    assert 2300 < capital_distance_km("110000", "650000") < 2500  # Beijing-Urumqi
    assert 18.0 < d["650000"] < 20.0  # 1 + 1.5 * ~2400 / 200
    assert 2450 < capital_distance_km("110000", "540000") < 2650  # Beijing-Lhasa
    assert 19.0 < d["540000"] < 21.0
    assert 1.5 < d["120000"] < 2.5  # Tianjin, ~110 km
    assert max(d, key=d.__getitem__) in ("650000", "660000", "540000")


def test_distance_model_follows_base_factor_and_hub_location() -> None:
    d = link_delays(("110000", "440000"), "440000", base_ms=5.0, route_factor=1.0)
    assert d["440000"] == 5.0
    assert d["110000"] == pytest.approx(5.0 + capital_distance_km("110000", "440000") / 200)
    assert capital_distance_km("650000", "660000") == 0.0
