"""bench/direct.py: the direct-exchange diagnostic's medians, ratios and table lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exchange.ledger import Ledger, LedgerEntry

from bench.direct import format_direct, ledgered_path, summarise_direct


def pt(per_s: float, cpu: tuple[int, int] = (0, 0), errors: int = 0) -> dict[str, Any]:
    return {"throughput_per_s": per_s, "cpu_us_per_call": {"loadgen": cpu[0], "provinces-1": cpu[1]},
            "errors": {"x": errors} if errors else {}}


def serial(p50_ms: float, errors: int = 0) -> dict[str, Any]:
    return {"latency": {"p50_ms": p50_ms}, "errors": {"DEADLINE_EXCEEDED": errors} if errors else {}}


def a_round(relay: float, bare: float, direct: float, p50: tuple[float, float, float],
            direct_cpu: tuple[int, int]) -> dict[str, Any]:
    return {"relay": pt(relay, (200, 800)), "bare": pt(bare, (100, 300)), "direct": pt(direct, direct_cpu, errors=1),
            "relay_serial": serial(p50[0]), "bare_serial": serial(p50[1]), "direct_serial": serial(p50[2], errors=2)}


RAW = {"concurrency": 64, "path": {"b_received_from": {"440000": 9000}, "hub_rows": 0},
       "rounds": [a_round(1800.0, 5000.0, 2700.0, (1.2, 0.7, 1.1), (250, 400)),
                  a_round(1600.0, 4000.0, 2600.0, (1.0, 0.8, 1.2), (250, 350)),
                  a_round(2000.0, 5200.0, 2500.0, (1.1, 0.6, 1.0), (300, 450))]}


def test_each_ratio_is_the_median_of_the_rounds_ratios_not_a_ratio_of_medians() -> None:
    d = summarise_direct(RAW)
    assert d is not None
    assert (d["relay"]["throughput_per_s"], d["bare"]["throughput_per_s"], d["direct"]["throughput_per_s"]) == (
        1800.0, 5000.0, 2600.0)
    # rounds: 2700/1800 = 1.5, 2600/1600 = 1.625, 2500/2000 = 1.25 -> 1.5 (2600/1800 would be 1.444)
    assert d["ratio_vs_relay"] == {"throughput": 1.5, "serial_p50": 0.917}  # 0.917, 1.2, 0.909
    assert d["ratio_vs_bare"] == {"throughput": 0.54, "serial_p50": 1.571}  # 0.54, 0.65, 0.481; 1.571, 1.5, 1.667
    # CPU: every process summed per round (650, 600, 750), then the median; errors: all points
    assert (d["direct"]["cpu_us_per_exchange"], d["direct"]["errors"], d["rounds"]) == (650, 9, 3)
    assert (d["relay"]["cpu_us_per_exchange"], d["relay"]["errors"]) == (1000, 0)
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


def entry(direction: str, flow: str, peer: str, i: int) -> LedgerEntry:
    return LedgerEntry(at_ns=1_000 + i, direction=direction, message_id=f"m-{i}", payload_type="", flow=flow,
                       sender="440000", receiver="510000", peer=peer, envelope_sha256="", size_bytes=0,
                       expires_at_ns=0, outcome="", reason="", trace_id=f"t-{i}", request_digest="")


def test_the_path_is_read_from_bs_and_the_hubs_ledgers(tmp_path: Path) -> None:
    rows = {"510000": [entry("received", "ecert.fetch", "440000", 0), entry("sent", "ecert.fetch", "440000", 1),
                       entry("received", "ecert.fetch", "000000", 2), entry("received", "identity.verify", "120000", 3)],
            "000000": [entry("received", "ecert.fetch", "440000", 4), entry("forwarded", "ecert.fetch", "510000", 5),
                       entry("received", "identity.verify", "120000", 6)]}
    for code, entries in rows.items():
        ledger = Ledger(tmp_path / f"{code}.sqlite", node_code=code)
        for e in entries:
            ledger.append(e)
        ledger.close()
    # B's ecert.fetch requests by TLS peer (its sent row and other flows are not requests received);
    # the hub's ecert.fetch rows, whatever their direction
    assert ledgered_path(tmp_path, "510000") == {"b_received_from": {"000000": 1, "440000": 1}, "hub_rows": 2}
