"""After a run: read every ledger back, check its chain, account for every request
and measure each hop.

Reconciliation counts, from the asking provinces' own ledgers, each request sent
and its one terminal row: a verified response (``delivered``), a refusal by some
hop (``rejected``), or a failure to get through (``failed``: unavailable, timed
out, partitioned). ``lost`` is what is left: requests with no terminal row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.errors import LedgerChainError, TongbanError
from exchange.ledger import LedgerEntry, read_entries, verify_ledger
from exchange.metrics import new_histogram
from exchange.payloads import spec_of

__all__ = ["HOPS", "Reconciliation", "reconcile"]

_FAILED = {"unavailable", "interrupted"}
#: Hop name -> (from event, to event) over the eight ledger events of one exchange.
HOPS = {
    "origin_to_hub_ms": ("origin_sent", "hub_received_request"),
    "hub_ms": ("hub_received_request", "hub_forwarded_request"),
    "hub_to_target_ms": ("hub_forwarded_request", "target_received"),
    "target_ms": ("target_received", "target_sent"),
    "target_to_hub_ms": ("target_sent", "hub_received_response"),
    "hub_to_origin_ms": ("hub_forwarded_response", "origin_received"),
}


@dataclass
class Reconciliation:
    sent: int = 0
    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    served: Counter[str] = field(default_factory=Counter)
    #: flow -> {"requests": bytes of signed requests sent, "responses": bytes of verified answers received}
    bytes: dict[str, Counter[str]] = field(default_factory=dict)
    ledgers: dict[str, dict[str, Any]] = field(default_factory=dict)
    hops: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.sent - self.delivered - self.rejected - self.failed

    def summary(self) -> dict[str, int]:
        return {"sent": self.sent, "delivered": self.delivered, "rejected": self.rejected,
                "failed": self.failed, "lost": self.lost}


def _kind(e: LedgerEntry) -> str:
    if not e.payload_type:
        return ""
    try:
        spec = spec_of(e.payload_type)
    except TongbanError:
        return ""
    return spec.kind if spec.flow != "registration" else ""


def _events(code: str, hub: str, entries: Iterable[LedgerEntry], into: dict[str, dict[str, int]]) -> None:
    for e in entries:
        kind = _kind(e)
        if not kind or not e.trace_id:
            continue
        if code == hub:
            name = {("received", "request"): "hub_received_request", ("forwarded", "request"): "hub_forwarded_request",
                    ("received", "response"): "hub_received_response",
                    ("forwarded", "response"): "hub_forwarded_response"}.get((e.direction, kind))
        elif e.sender == code and kind == "request" and e.direction == "sent":
            name = "origin_sent"
        elif kind == "response" and e.direction == "received" and e.receiver == code:
            name = "origin_received"
        elif kind == "request" and e.direction == "received":
            name = "target_received"
        elif kind == "response" and e.direction == "sent":
            name = "target_sent"
        else:
            name = None
        if name:
            into.setdefault(e.trace_id, {})[name] = e.at_ns


def reconcile(data_dir: Path, codes: Iterable[str], *, hub: str = "000000") -> Reconciliation:
    """Verify every ledger under ``data_dir`` and account for every request."""
    rec = Reconciliation()
    traces: dict[str, dict[str, int]] = {}
    for code in codes:
        db = data_dir / f"{code}.sqlite"
        try:
            v = verify_ledger(db)
            rec.ledgers[code] = {"rows": v.rows, "verified": True}
        except LedgerChainError as e:
            rec.ledgers[code] = {"rows": None, "verified": False, "error": str(e)}
            continue
        except TongbanError as e:
            rec.ledgers[code] = {"rows": 0, "verified": False, "error": str(e)}
            continue
        entries = [r.entry for r in read_entries(db)]
        _events(code, hub, entries, traces)
        if code == hub:
            continue
        mine = {e.message_id for e in entries if e.direction == "sent" and e.sender == code and _kind(e) == "request"}
        rec.sent += len(mine)
        for e in entries:
            kind = _kind(e)
            if e.direction == "sent" and kind == "request" and e.sender == code:
                rec.bytes.setdefault(e.flow, Counter())["requests"] += e.size_bytes
            if e.direction == "received" and kind == "response" and e.receiver == code:
                rec.delivered += 1
                rec.bytes.setdefault(e.flow, Counter())["responses"] += e.size_bytes
            elif e.direction == "sent" and kind == "response":
                rec.served[code] += 1
            elif e.direction == "rejected" and (e.message_id in mine or (kind == "response" and e.receiver == code)):
                if e.outcome in _FAILED:
                    rec.failed += 1
                else:
                    rec.rejected += 1
    hists = {name: new_histogram() for name in HOPS}
    for events in traces.values():
        for name, (a, b) in HOPS.items():
            if a in events and b in events:
                hists[name].record_value(max(1, (events[b] - events[a]) // 1000))
    rec.hops = {
        name: ({"count": h.get_total_count(), "p50": h.get_value_at_percentile(50) / 1000,
                "p99": h.get_value_at_percentile(99) / 1000} if h.get_total_count() else {"count": 0})
        for name, h in hists.items()
    }
    return rec
