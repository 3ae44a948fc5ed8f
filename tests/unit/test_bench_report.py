"""bench/report.py: which measured mode becomes (c)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.paired import _round, summarise_rounds
from bench.report import TARGETS, _by_load, _check, _fastest, _paired_checks, table


def variant(saturation: float, serial_p50_ms: float = 2.0) -> dict[str, Any]:
    """A measured variant as bench/suite.py records it (the figures _figures reads)."""
    return {"saturation_per_s": saturation, "best_concurrency": 64,
            "best": {"cpu_us_per_call": {"loadgen": 200, "hub": 500}, "others_busy": 0.0},
            "open_at_half_baseline": {"latency": {"p50_ms": 10.0, "p99_ms": 40.0}, "achieved_per_s": 800.0,
                                      "errors": {}},
            "serial": {"latency": {"p50_ms": serial_p50_ms}}}


BASE = {"saturation_per_s": 1600.0, "open_p50_ms": 2.0, "open_p99_ms": 8.0, "serial_p50_ms": 1.0,
        "cpu_us_per_exchange": 1000}
B = {"saturation_per_s": 1440.0, "best_concurrency": 64, "open_p50_ms": 15.0, "open_p99_ms": 70.0,
     "open_achieved_per_s": 800.0, "open_errors": {}, "serial_p50_ms": 2.5, "cpu_us_per_call_at_saturation": {},
     "cpu_us_per_exchange": 1200, "others_busy_at_saturation": 0.0}


def test_a_crowned_candidate_that_measures_faster_than_b_is_c() -> None:
    c = _fastest({**variant(1500.0), "setting": "uvloop in every node", "node_args": ["--uvloop"]}, B, BASE)
    assert (c["setting"], c["saturation_per_s"], c["ratio_vs_relay"]["throughput"]) == (
        "uvloop in every node", 1500.0, 0.938)
    assert "candidate_measured" not in c


def test_a_crowned_candidate_that_measures_slower_than_b_leaves_c_to_the_default() -> None:
    c = _fastest({**variant(1212.0), "setting": "gRPC's older polling", "node_args": ["--grpc-event-engine"]},
                 B, BASE)
    assert (c["setting"], c["saturation_per_s"], c["ratio_vs_relay"]["throughput"]) == ("default", 1440.0, 0.9)
    assert c["note"] == ("\"gRPC's older polling\" beat the default in the candidate passes, but measured like (b) "
                         "it reached 1212.0/s (0.757 x relay) against (b)'s 1440.0/s (0.900 x relay): the default "
                         "is the fastest mode this run measured, so (c) is (b)")
    assert c["candidate_measured"]["saturation_per_s"] == 1212.0
    assert c["candidate_measured"]["setting"] == "gRPC's older polling"


def paired(*vs_default: float) -> dict[str, Any]:
    """Paired rounds as bench/paired.py records them, the candidate at these ratios to (b)."""
    rounds = [{"relay_per_s": 1600.0, "tongban_per_s": 1200.0, "candidate_per_s": 1200.0 * v,
               "relay_serial_p50_ms": 1.0, "tongban_serial_p50_ms": 2.0, "candidate_serial_p50_ms": 1.9}
              for v in vs_default]
    for r in rounds:
        r |= {"throughput_ratio": round(r["tongban_per_s"] / r["relay_per_s"], 3), "serial_p50_ratio": 2.0,
              "candidate_throughput_ratio": round(r["candidate_per_s"] / r["relay_per_s"], 3),
              "candidate_serial_p50_ratio": 1.9, "candidate_vs_default": round(r["candidate_per_s"] / 1200.0, 3)}
    return {"rounds": rounds, "candidate": "uvloop in every node", **summarise_rounds(rounds)}


def test_turn_about_rounds_decide_over_the_sweeps() -> None:
    """The candidate's sweep came out above (b)'s minutes later, but seconds apart, round
    by round, it was slower: the paired median decides, and the note says so."""
    fastest = {**variant(1500.0), "setting": "uvloop in every node", "node_args": ["--uvloop"]}
    c = _fastest(fastest, B, BASE, paired(0.97, 1.02, 0.95))
    assert (c["setting"], c["saturation_per_s"]) == ("default", 1440.0)
    assert c["note"] == ("'uvloop in every node' beat the default in the candidate passes, but turn about with (b) "
                         "in the paired rounds its throughput was 0.970 x (b)'s (median of [0.970, 1.020, 0.950]); "
                         "its sweep reached 1500.0/s (0.938 x relay) against (b)'s 1440.0/s (0.900 x relay): the "
                         "default is the fastest mode this run measured, so (c) is (b)")
    assert c["candidate_measured"]["saturation_per_s"] == 1500.0


def test_a_candidate_faster_turn_about_is_c_even_when_its_sweep_fell_below_b() -> None:
    fastest = {**variant(1212.0), "setting": "uvloop in every node", "node_args": ["--uvloop"]}
    c = _fastest(fastest, B, BASE, paired(1.08, 1.01, 0.99))
    assert (c["setting"], c["saturation_per_s"], c["ratio_vs_relay"]["throughput"]) == (
        "uvloop in every node", 1212.0, 0.757)
    assert c["chosen_by"].endswith("its throughput was 1.010 x (b)'s (median of [1.080, 1.010, 0.990])")


def test_c_is_compared_with_the_relay_measured_turn_about_with_it() -> None:
    """The machine slowed between (b)'s sweep and (c)'s: 1212/s looks below (b)'s 1440/s,
    but the relay measured beside (c) fell to 1250/s, so (c) is 0.970 x its relay against
    (b)'s 0.900 x: (c) is the candidate, and its ratios are to the relay beside it."""
    relay = {**variant(1250.0, serial_p50_ms=1.25), "open_at_half_baseline": {
        "latency": {"p50_ms": 2.5, "p99_ms": 10.0}, "achieved_per_s": 800.0, "errors": {}}}
    fastest = {**variant(1212.0, serial_p50_ms=2.5), "setting": "uvloop in every node", "node_args": ["--uvloop"],
               "relay_alongside": relay}
    c = _fastest(fastest, B, BASE)
    assert c["setting"] == "uvloop in every node"
    assert c["ratio_vs_relay"] == {"throughput": 0.97, "open_p50": 4.0, "open_p99": 4.0, "serial_p50": 2.0,
                                   "cpu_implied_throughput": 1.0}
    assert c["relay_alongside"]["saturation_per_s"] == 1250.0
    assert c["chosen_by"] == ("'uvloop in every node' beat the default in the candidate passes and its sweep reached "
                              "1212.0/s (0.970 x relay) against (b)'s 1440.0/s (0.900 x relay)")
    # without the relay beside it, the same sweep is compared with (a) and falls short of (b)
    assert _fastest({**fastest, "relay_alongside": None}, B, BASE)["setting"] == "default"


def test_a_rejected_candidate_keeps_its_relay_and_the_table_says_which_relay_each_ratio_is_to() -> None:
    relay = {**variant(1800.0, serial_p50_ms=1.0), "open_at_half_baseline": {
        "latency": {"p50_ms": 2.0, "p99_ms": 8.0}, "achieved_per_s": 800.0, "errors": {}}}
    fastest = {**variant(1500.0), "setting": "uvloop in every node", "node_args": ["--uvloop"],
               "relay_alongside": relay}
    c = _fastest(fastest, B, BASE)  # 1500/s beside a relay at 1800: 0.833 x, below (b)'s 0.900 x
    assert c["setting"] == "default"
    assert c["candidate_measured"]["relay_alongside"]["saturation_per_s"] == 1800.0
    assert c["candidate_measured"]["ratio_vs_relay"]["throughput"] == 0.833
    assert "reached 1500.0/s (0.833 x relay) against (b)'s 1440.0/s (0.900 x relay)" in c["note"]
    doc = _table_doc(c)
    assert ("(c) candidate 'uvloop in every node' measured like (b): 1500.0/s (0.83 x the relay beside it, (b) "
            "0.90 x), below (b): (c) is the default") in table(doc).splitlines()
    chosen = _fastest({**fastest, "saturation_per_s": 1700.0}, B, BASE)  # 0.944 x its relay: (c)
    lines = table(_table_doc(chosen)).splitlines()
    assert ("(c)'s ratios are to the relay measured turn about with it: 1800/s, p50@open 2.00, p99@open 8.00, "
            "p50 c=1 1.00 ms (the (a) row: measured with (b))") in lines
    assert not any(line.startswith("(c)'s ratios") for line in table(doc).splitlines())


def _table_doc(c: dict[str, Any]) -> dict[str, Any]:
    """The committed latest.json with (c) replaced and (b) at 0.900 x the relay."""
    doc = json.loads((Path(__file__).resolve().parents[2] / "bench" / "results" / "latest.json").read_text())
    doc["b_tongban"]["ratio_vs_relay"]["throughput"] = 0.9
    return {**doc, "c_tongban_fastest": c, "paired": {}}


def test_paired_medians_have_no_candidate_keys_without_a_candidate() -> None:
    rounds = [{"throughput_ratio": 0.7, "serial_p50_ratio": 2.2}, {"throughput_ratio": 0.8, "serial_p50_ratio": None},
              {"throughput_ratio": 0.75, "serial_p50_ratio": 2.0}]
    assert summarise_rounds(rounds) == {"throughput_ratio_median": 0.75, "serial_p50_ratio_median": 2.1}
    assert summarise_rounds(paired(1.1, 0.9)["rounds"])["candidate_vs_default_median"] == 1.0


def test_c_target_is_checked_on_the_candidates_rounds_when_it_is_c_and_on_bs_when_not() -> None:
    pr = paired(1.08, 1.01, 0.99)  # (b) 0.75 x relay in every round; the candidate 0.81, 0.757, 0.743
    for c_is_b, median in ((False, 0.757), (True, 0.75)):
        targets = {key: _check(key, 0.5) for key in TARGETS}
        _paired_checks(targets, pr, c_is_b=c_is_b)
        assert targets["c_throughput_ratio"] == {**_check("c_throughput_ratio", 0.5), "paired_median": median,
                                                 "paired_pass": False}
        assert targets["b_throughput_ratio"] == {**_check("b_throughput_ratio", 0.5), "paired_median": 0.75,
                                                 "paired_pass": True}
        assert targets["b_serial_p50_ratio"] == {**_check("b_serial_p50_ratio", 0.5), "paired_median": 2.0,
                                                 "paired_pass": False}


def test_a_round_gives_each_ratio_from_its_own_points_and_none_where_the_relay_answered_nothing() -> None:
    def pt(per_s: float, p50_ms: float, errors: dict[str, int] | None = None) -> dict[str, Any]:
        return {"throughput_per_s": per_s, "latency": {"p50_ms": p50_ms}, "errors": errors or {}}

    r = _round(pt(1600.0, 1.0), pt(1200.0, 2.0), pt(800.0, 1.1), pt(400.0, 2.2), pt(1320.0, 1.5),
               pt(450.0, 1.98, {"PeerUnavailableError": 2}))
    assert (r["throughput_ratio"], r["serial_p50_ratio"]) == (0.75, 2.0)
    assert (r["candidate_throughput_ratio"], r["candidate_vs_default"], r["candidate_serial_p50_ratio"]) == (
        0.825, 1.1, 1.8)
    assert r["errors"] == {"candidate_serial": {"PeerUnavailableError": 2}}
    dead = _round(pt(0.0, 0.0), pt(1200.0, 2.0), pt(0.0, 0.0), pt(400.0, 2.2), pt(1320.0, 1.5), pt(450.0, 1.98))
    assert summarise_rounds([dead]) == {
        "throughput_ratio_median": None, "serial_p50_ratio_median": None, "candidate_throughput_ratio_median": None,
        "candidate_serial_p50_ratio_median": None, "candidate_vs_default_median": 1.1}


def test_no_candidate_means_c_is_b() -> None:
    c = _fastest(None, B, BASE)
    assert (c["setting"], c["saturation_per_s"]) == ("default", 1440.0)
    assert c["note"].startswith("no candidate setting under 'options' beat the default mode by 5 %")


def test_cpu_per_exchange_by_load_sums_the_processes_of_each_measured_point() -> None:
    v = {**variant(1440.0), "serial": {"latency": {"p50_ms": 2.5},
                                       "cpu_us_per_call": {"loadgen": 900, "hub": 1700, "provinces-1": 1250}}}
    v["open_at_half_baseline"]["cpu_us_per_call"] = {"loadgen": 500, "hub": 900, "provinces-1": 680}
    assert _by_load(v) == {"saturation": 700, "open_half_baseline": 2080, "serial": 3850}  # no half-own point
