"""bench/direct.py: the direct-exchange diagnostic's medians, ratios and table lines."""

from __future__ import annotations

from typing import Any

from bench.direct import format_direct, summarise_direct


def pt(per_s: float, cpu: int = 0, errors: int = 0) -> dict[str, Any]:
    return {"throughput_per_s": per_s, "cpu_us_per_call": {"loadgen": cpu}, "errors": {"x": errors} if errors else {}}


def serial(p50_ms: float) -> dict[str, Any]:
    return {"latency": {"p50_ms": p50_ms}, "errors": {}}


def a_round(relay: float, bare: float, direct: float, p50: tuple[float, float, float]) -> dict[str, Any]:
    return {"relay": pt(relay, 1000), "bare": pt(bare, 400), "direct": pt(direct, 600, errors=1),
            "relay_serial": serial(p50[0]), "bare_serial": serial(p50[1]), "direct_serial": serial(p50[2])}


RAW = {"concurrency": 64, "path": {"b_received_from": {"440000": 9000}, "hub_rows": 0},
       "rounds": [a_round(1800.0, 5000.0, 2700.0, (1.2, 0.7, 1.1)),
                  a_round(1600.0, 4000.0, 2600.0, (1.0, 0.8, 1.2)),
                  a_round(2000.0, 5200.0, 2500.0, (1.1, 0.6, 1.0))]}


def test_each_ratio_is_the_median_of_the_rounds_ratios_not_a_ratio_of_medians() -> None:
    d = summarise_direct(RAW)
    assert d is not None
    assert (d["relay"]["throughput_per_s"], d["bare"]["throughput_per_s"], d["direct"]["throughput_per_s"]) == (
        1800.0, 5000.0, 2600.0)
    # rounds: 2700/1800 = 1.5, 2600/1600 = 1.625, 2500/2000 = 1.25 -> 1.5 (2600/1800 would be 1.444)
    assert d["ratio_vs_relay"] == {"throughput": 1.5, "serial_p50": 0.917}  # 0.917, 1.2, 0.909
    assert d["ratio_vs_bare"] == {"throughput": 0.54, "serial_p50": 1.571}  # 0.54, 0.65, 0.481; 1.571, 1.5, 1.667
    assert (d["direct"]["cpu_us_per_exchange"], d["direct"]["errors"], d["rounds"]) == (600, 3, 3)
    assert d["path"] == {"b_received_from": {"440000": 9000}, "hub_rows": 0}


def test_the_table_says_it_is_no_c_candidate_and_where_the_requests_went() -> None:
    lines = format_direct(summarise_direct(RAW))
    assert lines[0].startswith("direct exchange, no hub on the path (diagnostic, not a (c) candidate; c=64, "
                               "medians of 3 rounds turn about): relay 1800/s, c=1 p50 1.1 ms")
    assert lines[1] == ("  direct vs relay: throughput 1.5 x, one at a time 0.917 x; vs a bare unsigned call "
                        "between the same two parties: throughput 0.54 x, one at a time 1.571 x")
    assert lines[2] == "  ledgers: B received the requests from {'440000': 9000}; the hub ledgered 0 of them"


def test_nothing_measured_prints_nothing() -> None:
    assert summarise_direct(None) is None and summarise_direct({"rounds": []}) is None
    assert format_direct(None) == []
