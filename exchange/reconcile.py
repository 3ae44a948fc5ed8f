"""After a run: read every ledger back, check its chain, account for every request
and measure each hop.

Reconciliation counts, from the asking provinces' own ledgers, each request sent
and its one terminal row: a verified response (``delivered``), a refusal by some
hop (``rejected``), or a failure to get through (``failed``: unavailable, timed
out, partitioned). ``lost`` is what is left: requests with no terminal row.

Memory does not grow with the run. SQLite does the counting in each ledger, and
the hop events of every trace go to a private temporary database that SQLite
sorts by trace (spilling to disk for a long run), so a ledger's rows are never
all in memory at once. The hash chains are checked meanwhile
(:mod:`exchange._chain_check`: by a worker process for a long run's ledgers, on a
thread for small ones); each ledger's counts and events are set aside until its
chain has verified, and a ledger that fails takes its events out again. On a
5-minute run at 520 exchanges/s (33 ledgers, 1.25 million rows) this takes 161 MiB
and 5.3 s: 1.9 s of reading and 2.8 s of sorting and timing the hops, while the
worker checks the chains (5.2 s on its own core). With the chains checked on a
thread ahead of the reading it took 8.6-9.1 s (the GIL); checking them first,
12.4 s; reading every row into memory, 970 MiB and 25.8 s.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.errors import LedgerChainError, LedgerError, TongbanError
from exchange._chain_check import ChainChecks
from exchange.ledger import open_for_reading
from exchange.metrics import new_histogram
from exchange.payloads import spec_of

__all__ = ["HOPS", "Reconciliation", "reconcile"]

_FAILED = ("unavailable", "interrupted")
#: Hop name -> (from event, to event) over the eight ledger events of one exchange.
HOPS = {
    "origin_to_hub_ms": ("origin_sent", "hub_received_request"),
    "hub_ms": ("hub_received_request", "hub_forwarded_request"),
    "hub_to_target_ms": ("hub_forwarded_request", "target_received"),
    "target_ms": ("target_received", "target_sent"),
    "target_to_hub_ms": ("target_sent", "hub_received_response"),
    "hub_to_origin_ms": ("hub_forwarded_response", "origin_received"),
}
_EVENTS: tuple[str, ...] = tuple(dict.fromkeys(name for pair in HOPS.values() for name in pair))
_EVENT_NO = {name: i for i, name in enumerate(_EVENTS)}
_HOP_NOS = tuple((name, _EVENT_NO[a], _EVENT_NO[b]) for name, (a, b) in HOPS.items())
#: SQLite page cache of the temporary event database, in KiB (negative: see PRAGMA cache_size).
_EVENT_CACHE_KIB = 64 * 1024


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

    def add_counts(self, other: Reconciliation) -> None:
        """Add ``other``'s request counts, served counts and bytes (one ledger's, once its chain verified)."""
        self.sent += other.sent
        self.delivered += other.delivered
        self.rejected += other.rejected
        self.failed += other.failed
        self.served.update(other.served)
        for flow, c in other.bytes.items():
            self.bytes.setdefault(flow, Counter()).update(c)


@dataclass(frozen=True)
class _Kinds:
    """The payload types found in one ledger, split into request and response types.

    A registration, a document (certificate, directory) or an unknown type is neither.
    Each side renders as an SQL ``payload_type IN (?, …)`` test with its parameters.
    """

    requests: tuple[str, ...]
    responses: tuple[str, ...]

    @classmethod
    def of(cls, payload_types: Iterable[str]) -> _Kinds:
        requests, responses = [], []
        for media_type in sorted(payload_types):
            try:
                spec = spec_of(media_type)
            except TongbanError:
                continue
            if spec.flow == "registration":
                continue
            if spec.kind == "request":
                requests.append(media_type)
            elif spec.kind == "response":
                responses.append(media_type)
        return cls(tuple(requests), tuple(responses))

    @staticmethod
    def sql_in(types: Sequence[str]) -> str:
        return f"payload_type IN ({', '.join('?' * len(types))})" if types else "0"


def _account(conn: sqlite3.Connection, code: str, kinds: _Kinds, rec: Reconciliation) -> None:
    """Add ``code``'s requests and their terminal rows, as its own ledger records them."""
    req, resp = _Kinds.sql_in(kinds.requests), _Kinds.sql_in(kinds.responses)
    mine = f"direction = 'sent' AND sender = ? AND {req}"
    mine_params = (code, *kinds.requests)
    rec.sent += conn.execute(
        f"SELECT COUNT(DISTINCT message_id) FROM ledger WHERE {mine}", mine_params
    ).fetchone()[0]
    for flow, size in conn.execute(
        f"SELECT flow, SUM(size_bytes) FROM ledger WHERE {mine} GROUP BY flow ORDER BY flow", mine_params
    ):
        rec.bytes.setdefault(flow, Counter())["requests"] += size
    for flow, count, size in conn.execute(
        f"SELECT flow, COUNT(*), SUM(size_bytes) FROM ledger WHERE direction = 'received' AND {resp} "
        "AND receiver = ? GROUP BY flow ORDER BY flow",
        (*kinds.responses, code),
    ):
        rec.delivered += count
        rec.bytes.setdefault(flow, Counter())["responses"] += size
    served = conn.execute(
        f"SELECT COUNT(*) FROM ledger WHERE direction = 'sent' AND {resp}", kinds.responses
    ).fetchone()[0]
    if served:
        rec.served[code] += served
    # A refusal or failure of one of this province's requests, or of an answer on its way to it.
    for failed, count in conn.execute(
        f"SELECT outcome IN ({', '.join('?' * len(_FAILED))}), COUNT(*) FROM ledger "
        f"WHERE direction = 'rejected' AND (message_id IN (SELECT message_id FROM ledger WHERE {mine}) "
        f"OR ({resp} AND receiver = ?)) GROUP BY 1",
        (*_FAILED, *mine_params, *kinds.responses, code),
    ):
        if failed:
            rec.failed += count
        else:
            rec.rejected += count


class _HopEvents:
    """Each trace's hop events from every ledger, in a private temporary SQLite database.

    SQLite keeps it in its page cache while it is small and spills it to a temporary
    file when it grows. Where a trace has one event twice, the later row wins: later
    in the ledger, or in a ledger later in the order of precedence (``add``'s ``ledger``).
    """

    def __init__(self) -> None:
        self._conn = sqlite3.connect("", uri=True, isolation_level=None)
        try:
            self._conn.execute(f"PRAGMA cache_size = -{_EVENT_CACHE_KIB}")
            self._conn.execute(
                "CREATE TABLE event (trace_id TEXT NOT NULL, ledger INTEGER NOT NULL, name INTEGER NOT NULL, "
                "at_ns INTEGER NOT NULL)"
            )
        except sqlite3.Error as e:
            self._conn.close()
            raise LedgerError(f"reconcile: cannot create the temporary hop-event database: {e}") from e
        except BaseException:
            self._conn.close()
            raise

    def add(self, db: Path, *, ledger: int, code: str, is_hub: bool, kinds: _Kinds) -> None:
        """Copy one ledger's hop events, in ledger order (SQLite to SQLite, no Python per row);
        ``ledger`` is its place in the order of precedence (ledgers may be added in any order)."""
        req, resp = _Kinds.sql_in(kinds.requests), _Kinds.sql_in(kinds.responses)
        n = _EVENT_NO
        if is_hub:
            name = (f"CASE WHEN {req} THEN CASE direction WHEN 'received' THEN {n['hub_received_request']} "
                    f"WHEN 'forwarded' THEN {n['hub_forwarded_request']} END "
                    f"WHEN {resp} THEN CASE direction WHEN 'received' THEN {n['hub_received_response']} "
                    f"WHEN 'forwarded' THEN {n['hub_forwarded_response']} END END")
            params: tuple[str, ...] = (*kinds.requests, *kinds.responses)
        else:
            name = (f"CASE WHEN direction = 'sent' AND sender = ? AND {req} THEN {n['origin_sent']} "
                    f"WHEN direction = 'received' AND {resp} AND receiver = ? THEN {n['origin_received']} "
                    f"WHEN direction = 'received' AND {req} THEN {n['target_received']} "
                    f"WHEN direction = 'sent' AND {resp} THEN {n['target_sent']} END")
            params = (code, *kinds.requests, *kinds.responses, code, *kinds.requests, *kinds.responses)
        conn = self._conn
        try:
            conn.execute("ATTACH DATABASE ? AS led", (db.resolve().as_uri() + "?mode=rw",))
        except sqlite3.Error as e:
            raise LedgerError(f"ledger {db}: cannot open: {e}") from e
        try:
            # (an at_ns that is not an integer can only be a hand-made row: it has no hop to time)
            conn.execute(
                f"INSERT INTO event SELECT trace_id, {int(ledger)}, name, at_ns FROM "
                f"(SELECT seq, trace_id, at_ns, {name} AS name FROM led.ledger "
                "WHERE trace_id <> '' AND typeof(at_ns) = 'integer') WHERE name IS NOT NULL ORDER BY seq",
                params,
            )
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):  # the error under way is the one to report
                conn.execute("DETACH DATABASE led")
            if isinstance(e, sqlite3.Error):
                raise LedgerError(f"ledger {db}: cannot copy its hop events to the temporary database: {e}") from e
            raise
        try:
            conn.execute("DETACH DATABASE led")
        except sqlite3.Error as e:
            raise LedgerError(f"ledger {db}: cannot detach it after reading: {e}") from e

    def drop(self, ledger: int) -> None:
        """Forget the events of the ``ledger`` added as that (its chain did not verify)."""
        try:
            self._conn.execute("DELETE FROM event WHERE ledger = ?", (ledger,))
        except sqlite3.Error as e:
            raise LedgerError(f"reconcile: cannot drop a ledger's hop events from the temporary database: {e}") from e

    def hops(self) -> dict[str, Any]:
        """Per hop: count, p50 and p99 in ms over the traces that have both its events."""
        hists = {name: new_histogram() for name in HOPS}
        record = [(hists[name].record_value, a, b) for name, a, b in _HOP_NOS]
        at: dict[int, int] = {}
        trace = None
        rows = self._conn.execute("SELECT trace_id, name, at_ns FROM event ORDER BY trace_id, ledger, rowid")
        for trace_id, name, at_ns in rows:
            if trace_id != trace:
                _record(record, at)
                at.clear()
                trace = trace_id
            at[name] = at_ns
        _record(record, at)
        return {
            name: ({"count": h.get_total_count(), "p50": h.get_value_at_percentile(50) / 1000,
                    "p99": h.get_value_at_percentile(99) / 1000} if h.get_total_count() else {"count": 0})
            for name, h in hists.items()
        }

    def close(self) -> None:
        self._conn.close()


def _record(record: list[tuple[Any, int, int]], at: dict[int, int]) -> None:
    """Record one trace's hops, in µs (at least 1)."""
    for add, a, b in record:
        if a in at and b in at:
            add(max(1, (at[b] - at[a]) // 1000))


def _read(db: Path, n: int, *, code: str, is_hub: bool, events: _HopEvents) -> Reconciliation | LedgerError:
    """One ledger's counts (a hub has none) and hop events, or why it cannot be read."""
    counts = Reconciliation()
    try:
        with closing(open_for_reading(db)) as conn:
            kinds = _Kinds.of(t for (t,) in conn.execute("SELECT DISTINCT payload_type FROM ledger"))
            if not is_hub:
                _account(conn, code, kinds, counts)
        events.add(db, ledger=n, code=code, is_hub=is_hub, kinds=kinds)
    except LedgerError as e:
        return e
    except Exception as e:  # noqa: BLE001 - SQLite's, or anything a not yet checked ledger holds (a BLOB type)
        error = LedgerError(f"ledger {db}: cannot read: {e}")
        error.__cause__ = e
        return error
    return counts


def reconcile(data_dir: Path, codes: Iterable[str], *, hub: str = "000000") -> Reconciliation:
    """Verify every ledger under ``data_dir`` and account for every request.

    A ledger whose chain does not verify, or that is missing or not a ledger, is
    listed in ``ledgers`` with its error and counts for nothing else (its rows are read
    while the chains are checked, and set aside). A ledger that verifies but cannot be
    read raises LedgerError.
    """
    codes = list(codes)
    rec = Reconciliation()
    counts: dict[str, Reconciliation | LedgerError] = {}
    with contextlib.ExitStack() as stack:
        checks = ChainChecks([data_dir / f"{code}.sqlite" for code in codes])
        stack.callback(checks.close)
        events = stack.enter_context(closing(_HopEvents()))
        for n, code in enumerate(codes):  # read while the chains are checked; kept apart until then
            counts[code] = _read(data_dir / f"{code}.sqlite", n, code=code, is_hub=code == hub, events=events)
        hops = events.hops()  # and timed (again below if a chain fails)
        dropped = False
        for n, (code, check) in enumerate(zip(codes, checks.futures)):
            try:
                v = check.result()
            except LedgerChainError as e:
                rec.ledgers[code] = {"rows": None, "verified": False, "error": str(e)}
            except TongbanError as e:
                rec.ledgers[code] = {"rows": 0, "verified": False, "error": str(e)}
            else:
                read = counts[code]
                if isinstance(read, LedgerError):  # it verified but could not be read
                    raise read
                rec.ledgers[code] = {"rows": v.rows, "verified": True}
                rec.add_counts(read)
                continue
            events.drop(n)
            dropped = True
        rec.hops = events.hops() if dropped else hops
    return rec
