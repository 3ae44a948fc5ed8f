"""bench/timeline.py: one exchange's hops from the load generator's marks and the ledger rows."""

from __future__ import annotations

from exchange.ledger import LedgerEntry

from bench.timeline import SEGMENTS, format_timeline, serial_timeline

A, B = "440000", "510000"


def row(trace: str, direction: str, sender: str, at_us: int) -> LedgerEntry:
    return LedgerEntry(at_ns=at_us * 1000, direction=direction, message_id=f"m-{trace}-{direction}-{sender}",
                       payload_type="", flow="ecert.fetch", sender=sender, receiver="", peer="", envelope_sha256="",
                       size_bytes=0, expires_at_ns=0, outcome="ok", reason="", trace_id=trace, request_digest="")


Rows = list[LedgerEntry]


def exchange(trace: str, start_us: int, hops_us: list[int]) -> tuple[list[object], Rows, Rows]:
    """A mark and the hub's and B's rows of one exchange whose nine segments last ``hops_us``."""
    t = [start_us]
    for h in hops_us:
        t.append(t[-1] + h)
    hub = [row(trace, "received", A, t[2]), row(trace, "forwarded", A, t[3]),
           row(trace, "received", B, t[6]), row(trace, "forwarded", B, t[7])]
    b = [row(trace, "received", A, t[4]), row(trace, "sent", B, t[5])]
    mark = [trace, A, t[0] * 1000, t[1] * 1000, t[8] * 1000, t[9] * 1000]
    return mark, hub, b


def test_each_segment_is_the_median_over_the_exchanges_with_every_row() -> None:
    marks, hub, b = [], [], []
    for i, hops in enumerate(([100, 400, 30, 450, 250, 380, 20, 390, 250],
                              [120, 500, 40, 470, 260, 400, 30, 410, 270],
                              [110, 450, 35, 460, 255, 390, 25, 400, 260])):
        m, h, r = exchange(f"t{i}", 10_000 * i, hops)
        marks.append(m)
        hub += h
        b += r
    # a fourth exchange B never ledgered (rows missing), a fifth the hub forwarded twice (a retry)
    m, h, _ = exchange("t3", 50_000, [1] * 9)
    marks.append(m)
    hub += h
    m, h, r = exchange("t4", 60_000, [1] * 9)
    marks.append(m)
    hub += h + [row("t4", "forwarded", A, 60_003)]
    b += r

    t = serial_timeline(marks, hub, b)

    assert (t["exchanges"], t["of"]) == (3, 5)
    assert t["segments_us"] == {"a_seal": 110, "a_to_hub": 450, "hub_admit": 35, "hub_to_b": 460, "b_answer": 255,
                                "b_to_hub": 390, "hub_record": 25, "hub_to_a": 400, "a_check": 260}
    assert list(t["segments_us"]) == [key for key, _ in SEGMENTS]
    assert t["sum_of_medians_us"] == 2385 and t["median_total_us"] == 2385


def test_the_table_lines_name_every_hop_and_the_sum() -> None:
    m, hub, b = exchange("t0", 0, [100, 400, 30, 450, 250, 380, 20, 390, 250])
    t = serial_timeline([m], hub, b) | {"signature_costs": {"p256_sign_us": 22.0, "p256_verify_us": 62.5,
                                                            "per_exchange": {"signatures": 2, "verifications": 4}}}
    lines = format_timeline(t, "(b)")
    assert lines[0].startswith("(b) one at a time, where an exchange's time goes: median µs of 1 exchanges")
    assert lines[2] == ("     400  A -> hub: stream write, hub's TLS gate, gRPC; "
                        "hub opens the request (signature, checks)")
    assert lines[-2] == "   2,270  sum of the medians (median of the whole: 2,270)"
    assert lines[-1] == ("  for scale, in a hot loop here: a P-256 signature 22.0 µs, a verification 62.5 µs; "
                         "an exchange makes 2 and 4 of them one after another")


def test_no_complete_exchange_is_said_not_invented() -> None:
    m, hub, _ = exchange("t0", 0, [1] * 9)
    t = serial_timeline([m], hub, [])
    assert t == {"exchanges": 0, "of": 1}
    assert format_timeline(t, "(b)") == ["(b) one at a time: no exchange with every ledger row found (1 marked)"]
