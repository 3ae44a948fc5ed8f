"""Where one exchange's time goes, one request at a time: a timeline from two clocks.

The load generator, acting as province A, notes four instants of each call it makes
(start, request sealed, answer back, answer checked: ``ExchangeDriver.last_mark``).
The hub and province B already note theirs: each ledger row's ``at_ns``, written when
the node records the envelope (``NodeCore.record``: after it opened and checked a
request or answer, when it forwards it, when it has signed its own). All of them read
``time.time_ns()`` on one machine, so the rows of one trace id, laid side by side,
split the exchange into hops without any extra probe in the nodes.

Each segment is the median over the exchanges whose every row was found once and whose
instants run in order (a clock stepped back mid-exchange drops it); the sum of the
medians is printed beside the median of the whole, which it need not equal.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from exchange.keys import Signer, verify_signature
from exchange.ledger import LedgerEntry, read_entries

__all__ = ["SEGMENTS", "format_timeline", "serial_timeline", "signature_costs", "timeline_from_ledgers"]

#: (key, what happens in it), in the order an exchange goes through them.
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("a_seal", "A builds and signs the request (load generator)"),
    ("a_to_hub", "A -> hub: stream write, hub's TLS gate, gRPC; hub opens the request (signature, checks)"),
    ("hub_admit", "hub admits the request, ledgers it received and forwarded"),
    ("hub_to_b", "hub -> B: stream write, B's TLS gate, gRPC; B opens the request (signature, checks)"),
    ("b_answer", "B admits, finds the certificate, answers, signs"),
    ("b_to_hub", "B -> hub: stream write back, B's TLS gate, gRPC; hub opens the answer, checks its binding"),
    ("hub_record", "hub ledgers the answer received and forwarded"),
    ("hub_to_a", "hub -> A: stream write back, hub's TLS gate, gRPC at A"),
    ("a_check", "A opens the answer, checks binding and certificate (load generator)"),
)

# A mark from the load generator: [trace_id, origin, t_start, t_sealed, t_answered, t_checked] (ns).
Mark = Sequence[Any]


def _instants(mark: Mark, hub: list[LedgerEntry], b: list[LedgerEntry]) -> list[int] | None:
    """The ten instants of one exchange, or None when a row is missing or doubled (a retry)."""
    _, origin, t0, t_sealed, t_answered, t_checked = mark

    def one(rows: list[LedgerEntry], direction: str, request: bool) -> int | None:
        found = [r.at_ns for r in rows if r.direction == direction and (r.sender == origin) == request]
        return found[0] if len(found) == 1 else None

    middle = [one(hub, "received", True), one(hub, "forwarded", True), one(b, "received", True),
              one(b, "sent", False), one(hub, "received", False), one(hub, "forwarded", False)]
    if any(t is None for t in middle):
        return None
    return [t0, t_sealed, *middle, t_answered, t_checked]  # type: ignore[list-item]


def serial_timeline(marks: Iterable[Mark], hub_rows: Iterable[LedgerEntry],
                    b_rows: Iterable[LedgerEntry]) -> dict[str, Any]:
    """Median µs of every segment (SEGMENTS) over the exchanges ``marks`` name by trace id."""
    marks = list(marks)
    wanted = {m[0] for m in marks}
    by_trace: dict[str, tuple[list[LedgerEntry], list[LedgerEntry]]] = {t: ([], []) for t in wanted}
    for side, rows in ((0, hub_rows), (1, b_rows)):
        for r in rows:
            if r.trace_id in by_trace:
                by_trace[r.trace_id][side].append(r)
    spans: list[list[int]] = []
    for m in marks:
        t = _instants(m, *by_trace[m[0]])
        if t is not None and all(b >= a for a, b in zip(t, t[1:])):
            spans.append([b - a for a, b in zip(t, t[1:])])
    if not spans:
        return {"exchanges": 0, "of": len(marks)}
    segments = {key: round(statistics.median(s[i] for s in spans) / 1000) for i, (key, _) in enumerate(SEGMENTS)}
    return {"exchanges": len(spans), "of": len(marks), "segments_us": segments,
            "sum_of_medians_us": sum(segments.values()),
            "median_total_us": round(statistics.median(sum(s) for s in spans) / 1000),
            "clock": "time.time_ns() in the load generator and in the nodes' ledger rows (one machine)"}


def timeline_from_ledgers(marks: list[Mark], data: Path, *, hub: str, b: str) -> dict[str, Any]:
    """``serial_timeline`` with the rows of the hub's and B's ledgers in ``data`` (nodes stopped)."""
    rows = {code: [r.entry for r in read_entries(data / f"{code}.sqlite", flow="ecert.fetch")] for code in (hub, b)}
    return serial_timeline(marks, rows[hub], rows[b])


def signature_costs(n: int = 400) -> dict[str, Any]:
    """For scale beside the timeline: µs per P-256 signature and verification through
    tongban's own calls (exchange.keys), in a hot loop of ``n`` each on this machine.
    One exchange makes two signatures (A, B) and four verifications (hub twice, B, A)
    on its critical path, one after another."""
    signer = Signer.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    message = bytes(600)
    t0 = time.perf_counter_ns()
    sigs = [signer.sign(message) for _ in range(n)]
    t1 = time.perf_counter_ns()
    public = signer.private_key.public_key()
    for s in sigs:
        verify_signature(public, s, message, what="bench")
    t2 = time.perf_counter_ns()
    return {"p256_sign_us": round((t1 - t0) / n / 1000, 1), "p256_verify_us": round((t2 - t1) / n / 1000, 1),
            "per_exchange": {"signatures": 2, "verifications": 4}}


def format_timeline(t: dict[str, Any], label: str) -> list[str]:
    """Lines for the table; nothing when no exchange was complete."""
    if not t:
        return []
    if not t["exchanges"]:
        return [f"{label} one at a time: no exchange with every ledger row found ({t['of']} marked)"]
    lines = [f"{label} one at a time, where an exchange's time goes: median µs of {t['exchanges']} exchanges "
             f"(load generator's clock and the nodes' ledger rows)"]
    lines += [f"  {t['segments_us'][key]:>6,}  {what}" for key, what in SEGMENTS]
    lines.append(f"  {t['sum_of_medians_us']:>6,}  sum of the medians (median of the whole: {t['median_total_us']:,})")
    if c := t.get("signature_costs"):
        lines.append(f"  for scale, in a hot loop here: a P-256 signature {c['p256_sign_us']} µs, a verification "
                     f"{c['p256_verify_us']} µs; an exchange makes {c['per_exchange']['signatures']} and "
                     f"{c['per_exchange']['verifications']} of them one after another")
    return lines
