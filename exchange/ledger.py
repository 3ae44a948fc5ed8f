"""The node ledger: an append-only, hash-chained record of every envelope.

Each node appends every envelope it sends, receives or forwards, and every rejection
with its reason, to table ``ledger`` of its own SQLite database (WAL mode; the same
file holds the node's world tables, which this module never touches). ``append`` only
queues the entry; one background thread per process (``exchange._ledger_pump``)
hashes and commits every ledger's batches, one transaction each, behind the hot path.

Format (enough to re-implement the verifier in another language)::

    ledger(seq INTEGER PRIMARY KEY,            -- 1, 2, 3, … with no gaps
           at_ns, direction, message_id, payload_type, flow, sender, receiver, peer,
           envelope_sha256, size_bytes, expires_at_ns, outcome, reason, trace_id,
           request_digest,                     -- LedgerEntry fields, in this order
           prev_hash TEXT,                     -- hash of row seq-1; row 1: "0" * 64
           hash TEXT)                          -- hex SHA-256, see below

    hash = sha256(bytes.fromhex(prev_hash) || utf8(json([seq, at_ns, direction, …,
                                                          request_digest])))

where ``json`` is compact (``","`` and ``":"`` separators) with non-ASCII characters
kept as is (``canonical_bytes``). Integer fields are JSON numbers, the others strings.

Guarantees and limits: changing, deleting, inserting or reordering any row is found
by ``verify_ledger`` (which names the first bad row); rewriting a row *and* every
later row, or cutting rows off the end, is not — compare ``last_seq``/``last_hash``
with a copy kept elsewhere for that. Commits use ``synchronous=NORMAL``: a power cut
may lose the last batches, never corrupt the chain.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import weakref
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from exchange._ledger_db import (
    FIELD_NAMES,
    GENESIS_HASH,
    INT_FIELDS,
    SELECT_CANONICAL,
    SELECT_ROWS,
    TABLE,
    ChainWriter,
    WriterLock,
    canonical_bytes,
    chain_hash,
    chain_hash_of,
    open_for_reading,
    open_for_writing,
)
from exchange._ledger_pump import PUMP
from exchange.errors import ConfigError, LedgerChainError, LedgerError
from exchange.payloads import FLOWS

__all__ = [
    "DIRECTIONS",
    "GENESIS_HASH",
    "Ledger",
    "LedgerEntry",
    "LedgerRow",
    "LedgerStats",
    "LedgerVerification",
    "canonical_bytes",
    "load_unexpired_message_ids",
    "open_for_reading",
    "read_entries",
    "unanswered_requests",
    "verify_ledger",
]

logger = logging.getLogger(__name__)

#: The allowed values of ``LedgerEntry.direction``.
DIRECTIONS: tuple[str, ...] = ("received", "sent", "forwarded", "rejected")
_INT64_MAX = 2**63 - 1
_STR_FIELDS = tuple(name for name in FIELD_NAMES if name not in INT_FIELDS)
_INT_FIELDS = tuple(name for name in FIELD_NAMES if name in INT_FIELDS)
_SHORT_HASH = 16  # hex digits of a hash shown in error messages
#: The payload types of requests that expect an answer (a registration is not one).
_REQUEST_TYPES: tuple[str, ...] = tuple(sorted(FLOWS.values()))


@dataclass(frozen=True, kw_only=True, slots=True)
class LedgerEntry:
    """One envelope event as the node saw it: sent, received, forwarded or rejected.

    Text fields are any Unicode text that UTF-8 can encode (lone surrogates cannot
    be stored); integer fields are 0 … 2**63-1. ``str``/``int`` subclasses (enums)
    are stored as plain values. Invalid values raise LedgerError here, on the
    caller's thread, never later in the writer.
    """

    at_ns: int
    direction: str
    message_id: str
    payload_type: str
    flow: str
    sender: str
    receiver: str
    peer: str
    envelope_sha256: str
    size_bytes: int
    expires_at_ns: int
    outcome: str
    reason: str
    trace_id: str
    request_digest: str

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise LedgerError(
                f"ledger entry direction must be one of {', '.join(map(repr, DIRECTIONS))}, "
                f"found {self.direction!r}"
            )
        for name in _STR_FIELDS:
            value = getattr(self, name)
            if type(value) is not str:
                if not isinstance(value, str):
                    raise LedgerError(
                        f"ledger entry field {name} must be str, found {type(value).__name__}"
                    )
                value = str.__str__(value)
                object.__setattr__(self, name, value)
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as e:
                    raise LedgerError(
                        f"ledger entry field {name} is not valid Unicode text: {e.reason} "
                        f"at index {e.start}"
                    ) from e
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if type(value) is not int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise LedgerError(
                        f"ledger entry field {name} must be int, found {type(value).__name__}"
                    )
                value = int(value)
                object.__setattr__(self, name, value)
            if not 0 <= value <= _INT64_MAX:
                raise LedgerError(
                    f"ledger entry field {name} must be within 0 … 2**63-1, found {value}"
                )


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """A committed ledger row: its sequence number, entry and chain hashes."""

    seq: int
    entry: LedgerEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class LedgerStats:
    """Counters of one ``Ledger`` since it was opened (``last_seq`` is absolute)."""

    appended: int
    committed: int
    batches: int
    last_seq: int
    last_hash: str

    @property
    def pending(self) -> int:
        """Entries appended but not yet committed."""
        return self.appended - self.committed


@dataclass(frozen=True, slots=True)
class LedgerVerification:
    """The result of a successful ``verify_ledger``: ``rows == last_seq``."""

    path: Path
    rows: int
    last_seq: int
    last_hash: str


class Ledger:
    """The append-only, hash-chained ledger of one node, written in the background.

    ``append`` is non-blocking and thread-safe (callable from an event loop). The
    process's non-daemon ledger thread commits queued entries, on the ledger's own
    connection, at most ``flush_interval_ms`` after the first of them was appended, or
    as soon as ``batch_max`` are waiting. A writer
    error is never dropped: the next ``append``/``flush``/``close`` raises
    LedgerError from it and the ledger accepts nothing more. Reopening a file
    continues its chain. If the program exits without ``close()``, the writer
    commits what is pending and stops so the interpreter can exit.
    One ``Ledger`` in any process writes a file: opening one another live ``Ledger``
    writes raises ConfigError before anything is written (``flock`` on ``<file>.lock``,
    released by ``close()``, or by the kernel when the process dies).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        node_code: str,
        flush_interval_ms: int = 50,
        batch_max: int = 2000,
    ) -> None:
        if flush_interval_ms <= 0:
            raise ConfigError(f"ledger flush_interval_ms must be > 0, found {flush_interval_ms}")
        if batch_max <= 0:
            raise ConfigError(f"ledger batch_max must be > 0, found {batch_max}")
        self.path = Path(path)
        self.node_code = node_code
        lock = WriterLock.acquire(self.path)  # before SQLite writes anything to the file
        try:
            conn, last_seq, last_hash = open_for_writing(self.path)
        except BaseException:
            lock.release()
            raise
        logger.debug("ledger %s: opened for %s at row %d", self.path, node_code, last_seq)
        self._writer = ChainWriter(
            path=self.path,
            conn=conn,
            node_code=node_code,
            last_seq=last_seq,
            last_hash=last_hash,
            flush_interval_s=flush_interval_ms / 1000,
            batch_max=batch_max,
            lock=lock,
        )
        self._closed = False
        self._finalizer = weakref.finalize(self, PUMP.orphaned, self._writer)

    def append(self, entry: LedgerEntry) -> None:
        """Queue ``entry`` for the writer; never waits for the disk.

        Raises LedgerError after ``close()`` or once the writer has failed.
        """
        if not isinstance(entry, LedgerEntry):
            raise TypeError(f"Ledger.append expects a LedgerEntry, found {type(entry).__name__}")
        self._writer.append(entry)

    def flush(self, timeout_s: float = 10) -> None:
        """Block until every entry appended before this call is committed.

        Raises LedgerError on timeout or if the writer failed. Blocks the calling
        thread: from an event loop, use ``await asyncio.to_thread(ledger.flush)``.
        """
        self._writer.flush(timeout_s)

    def close(self, timeout_s: float = 10) -> None:
        """Commit pending entries and stop the writer; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        self._writer.stop(timeout_s)

    def failure(self) -> LedgerError | None:
        """The error ``append`` raises once the writer has failed; None while it works."""
        return self._writer.failure()

    def on_failure(self, callback: Callable[[LedgerError], None]) -> None:
        """Call ``callback(error)`` once when the writer fails (from the ledger thread: use
        ``loop.call_soon_threadsafe``), or now if it has; e.g. to turn health NOT_SERVING."""
        self._writer.on_failure(callback)

    @property
    def stats(self) -> LedgerStats:
        """Appended / committed / batch counters and the committed chain head."""
        return LedgerStats(*self._writer.counters())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except LedgerError as close_error:  # keep the exception already in flight
            logger.error("ledger %s: close failed: %s", self.path, close_error)

    def __repr__(self) -> str:
        stats = self.stats
        state = "closed" if self._closed else "open"
        return (
            f"<Ledger {self.path} node={self.node_code} {state} "
            f"last_seq={stats.last_seq} pending={stats.pending}>"
        )


# -- reading and verifying ---------------------------------------------------------------


def _short(text: object) -> str:
    text = str(text)
    return text if len(text) <= _SHORT_HASH else text[:_SHORT_HASH] + "…"


def _describe(seq: int, values: tuple[object, ...]) -> str:
    """``row 17 (message 0a3f…, received from 110000)`` for error messages."""
    fields = dict(zip(FIELD_NAMES, values))
    direction = str(fields["direction"])
    preposition = "to" if direction in ("sent", "forwarded") else "from"
    message = str(fields["message_id"]) or "?"
    if len(message) > 40:
        message = message[:40] + "…"
    return f"row {seq} (message {message}, {direction} {preposition} {fields['peer']})"


def _missing(first: int, last: int) -> str:
    return f"row {first} missing" if first == last else f"rows {first}–{last} missing"


def verify_ledger(path: str | os.PathLike[str]) -> LedgerVerification:
    """Recompute the whole chain, streaming rows; raise LedgerChainError at the first bad row.

    Checks, in order, for each row: its seq follows the previous one (no gap), its
    prev_hash is the previous row's hash (genesis ``"0" * 64`` for row 1), and its
    hash is the recomputed one. A missing file or table raises LedgerError.
    """
    path = Path(path)
    with closing(open_for_reading(path)) as conn:
        try:
            return _verify(path, conn, fast=True)
        except _SlowPath:  # SQLite could not encode some row (a BLOB): the Python way decides
            return _verify(path, conn, fast=False)


class _SlowPath(Exception):
    """The fast path met an SQLite error; the slow path reports it, or gets past it."""


def _verify(path: Path, conn: sqlite3.Connection, *, fast: bool) -> LedgerVerification:
    """``verify_ledger``'s loop. Fast: SQLite encodes each row whose values all have their
    column's type (``SELECT_CANONICAL``, 3.1 against 6.3 µs a row); any other row, and a
    hash that does not match, is recomputed from the row's values before it counts as a
    mismatch. Slow: every row from its values."""
    rows = 0
    prev_seq, prev_hash = 0, GENESIS_HASH
    try:
        for row in conn.execute(f"{SELECT_CANONICAL if fast else SELECT_ROWS} ORDER BY seq"):
            seq, stored_prev, stored_hash = row[0], row[-2], row[-1]
            if seq != prev_seq + 1:
                where = f"row {seq} follows row {prev_seq}" if prev_seq else f"row {seq} is the first row"
                raise LedgerChainError(f"ledger {path}: {where}: {_missing(prev_seq + 1, seq - 1)}")
            values = row[1:-2] if not fast else None
            if stored_prev != prev_hash:
                expected = (
                    f"row {prev_seq}'s hash {_short(prev_hash)} (row {prev_seq} was "
                    "rewritten, or a row was deleted or reordered)"
                    if prev_seq
                    else f"the genesis hash {_short(prev_hash)} (row 1 starts the chain)"
                )
                raise LedgerChainError(
                    f"ledger {path}: {_describe(seq, values or _values(conn, seq))}: prev_hash "
                    f"{_short(stored_prev)} does not match {expected}"
                )
            recomputed = chain_hash_of(prev_hash, row[1].encode("utf-8")) if fast and row[2] else None
            if recomputed is None or recomputed != stored_hash:
                values = values or _values(conn, seq)
                try:
                    recomputed = chain_hash(prev_hash, seq, values)
                except (TypeError, ValueError) as e:  # e.g. a BLOB written into a column
                    raise LedgerChainError(
                        f"ledger {path}: {_describe(seq, values)}: cannot be encoded: {e}"
                    ) from e
                if recomputed != stored_hash:
                    raise LedgerChainError(
                        f"ledger {path}: {_describe(seq, values)}: hash mismatch: stored "
                        f"{_short(stored_hash)}, recomputed {_short(recomputed)}"
                    )
            prev_seq, prev_hash = seq, recomputed
            rows += 1
    except sqlite3.Error as e:
        if fast:
            raise _SlowPath from e
        raise LedgerError(f"ledger {path}: cannot read the row after {prev_seq}: {e}") from e
    return LedgerVerification(path=path, rows=rows, last_seq=prev_seq, last_hash=prev_hash)


def _values(conn: sqlite3.Connection, seq: int) -> tuple[object, ...]:
    """Row ``seq``'s field values, in ``FIELD_NAMES`` order."""
    row = conn.execute(f"{SELECT_ROWS} WHERE seq = ?", (seq,)).fetchone()
    return tuple(row[1:-2])


def read_entries(
    path: str | os.PathLike[str],
    *,
    direction: str | None = None,
    outcome: str | None = None,
    message_id: str | None = None,
    flow: str | None = None,
    trace_id: str | None = None,
    limit: int | None = None,
) -> list[LedgerRow]:
    """Committed rows matching every given filter (exact match), oldest first.

    Rows still queued in a live ``Ledger`` are not visible: ``flush()`` it first.
    The chain is not checked here; use ``verify_ledger`` for that.
    """
    path = Path(path)
    if direction is not None and direction not in DIRECTIONS:
        raise LedgerError(
            f"read_entries: direction must be one of {', '.join(map(repr, DIRECTIONS))}, "
            f"found {direction!r}"
        )
    if limit is not None and limit < 0:
        raise LedgerError(f"read_entries: limit must be >= 0, found {limit}")
    filters = {
        "direction": direction,
        "outcome": outcome,
        "message_id": message_id,
        "flow": flow,
        "trace_id": trace_id,
    }
    clauses = [f"{name} = ?" for name, value in filters.items() if value is not None]
    params: list[object] = [value for value in filters.values() if value is not None]
    sql = SELECT_ROWS + (f" WHERE {' AND '.join(clauses)}" if clauses else "") + " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return _select_rows(path, sql, params)


def _select_rows(path: Path, sql: str, params: list[object]) -> list[LedgerRow]:
    """The rows ``sql`` (a ``SELECT_ROWS`` query) returns, as ``LedgerRow``s."""
    result: list[LedgerRow] = []
    with closing(open_for_reading(path)) as conn:
        try:
            for row in conn.execute(sql, params):
                seq = row[0]
                try:
                    entry = LedgerEntry(**dict(zip(FIELD_NAMES, row[1:-2])))
                except LedgerError as e:
                    raise LedgerError(f"ledger {path}: row {seq} is not a valid entry: {e}") from e
                result.append(LedgerRow(seq=seq, entry=entry, prev_hash=row[-2], hash=row[-1]))
        except sqlite3.Error as e:
            raise LedgerError(f"ledger {path}: cannot read: {e}") from e
    return result


def unanswered_requests(path: str | os.PathLike[str], *, node_code: str) -> list[LedgerRow]:
    """Requests ``node_code`` sent whose answer or failure never reached this ledger,
    oldest first, one row per request digest (its first ``sent`` row).

    Only rows with a flow's request payload type count (a response the node sent has the
    digest of the request it answers; a registration is never open). Answered or failed
    means: any ``rejected`` row with the same request digest, or a ``received`` row
    addressed to ``node_code`` with it. A restarted node closes these
    (``NodeCore``). SQLite does the matching in two scans of the table (the closing
    digests become one temporary index), so memory holds the open requests' ``sent``
    rows, not the ledger. Rows are checked only as far as they are returned: use
    ``verify_ledger`` to check a ledger.
    """
    path = Path(path)
    sql = (
        f"{SELECT_ROWS} WHERE direction = 'sent' AND sender = ? AND request_digest <> '' "
        f"AND flow <> 'registration' AND payload_type IN ({', '.join('?' * len(_REQUEST_TYPES))}) "
        "AND request_digest NOT IN ("
        f"SELECT request_digest FROM {TABLE} WHERE request_digest <> '' "
        "AND (direction = 'rejected' OR (direction = 'received' AND receiver = ?))) ORDER BY seq"
    )
    first: dict[str, LedgerRow] = {}
    for row in _select_rows(path, sql, [node_code, *_REQUEST_TYPES, node_code]):
        first.setdefault(row.entry.request_digest, row)
    return list(first.values())


def load_unexpired_message_ids(path: str | os.PathLike[str], *, now_ns: int) -> dict[str, int]:
    """message_id → expires_at_ns of received envelopes still unexpired at ``now_ns``.

    A restarted node seeds its replay window with this. Rows with an empty message
    id are skipped; a message id received twice keeps its latest expiry.
    """
    path = Path(path)
    sql = (
        f"SELECT message_id, MAX(expires_at_ns) FROM {TABLE} WHERE direction = 'received' "
        "AND expires_at_ns > ? AND message_id <> '' GROUP BY message_id"
    )
    with closing(open_for_reading(path)) as conn:
        try:
            return {message_id: expires for message_id, expires in conn.execute(sql, (now_ns,))}
        except sqlite3.Error as e:
            raise LedgerError(f"ledger {path}: cannot read: {e}") from e
