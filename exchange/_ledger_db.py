"""SQLite side of the ledger: schema, canonical encoding, connections, writer thread.

Private to :mod:`exchange.ledger`, which documents the format. Nothing here knows
the ``LedgerEntry`` class: an entry is anything with the attributes in
``FIELD_NAMES``, so this module does not import ``exchange.ledger``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from exchange._ledger_pump import PUMP, Pump
from exchange.errors import ConfigError, LedgerChainError, LedgerError

logger = logging.getLogger(__name__)

#: The entry fields, in the order of the table's columns and of the canonical encoding.
FIELD_NAMES: tuple[str, ...] = (
    "at_ns",
    "direction",
    "message_id",
    "payload_type",
    "flow",
    "sender",
    "receiver",
    "peer",
    "envelope_sha256",
    "size_bytes",
    "expires_at_ns",
    "outcome",
    "reason",
    "trace_id",
    "request_digest",
)
INT_FIELDS: frozenset[str] = frozenset({"at_ns", "size_bytes", "expires_at_ns"})
COLUMNS: tuple[str, ...] = ("seq", *FIELD_NAMES, "prev_hash", "hash")
GENESIS_HASH = "0" * 64
TABLE = "ledger"
#: How long a statement waits for another connection's write lock (same file).
BUSY_TIMEOUT_S = 30.0

_COLUMN_DEFS = ",\n    ".join(
    f"{name} {'INTEGER' if name in INT_FIELDS else 'TEXT'} NOT NULL" for name in FIELD_NAMES
)
CREATE_TABLE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    seq INTEGER PRIMARY KEY,
    {_COLUMN_DEFS},
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)"""
# No secondary index. One on message_id (uuid4: random keys) made every insert touch a
# random page of the index; once the index outgrew SQLite's page cache each row cost more
# as the ledger grew (26 -> 41 us of CPU per row at 800,000 rows, against a flat 22-25
# without), and a hub that had served 130,000 exchanges ran 9 % slower for it
# (bench/results/profile-notes.md). Nothing in tongban looks rows up by message id on
# the hot path; a lookup by message id (read_entries, ad hoc SQL) scans the table.
# Ledgers created before keep their index (SQLite maintains it); it is not dropped.
INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
SELECT_ROWS = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"
#: seq, the row's canonical encoding as SQLite writes it, ``plain``, prev_hash, hash. SQLite's
#: compact JSON is the same text as ``canonical_bytes`` for every row a writer makes (integers
#: and text: same escapes, non-ASCII kept; tests/unit/test_ledger_verify.py checks it, also on
#: SQLite 3.51); reading one column instead of seventeen halves the verifier's time. ``plain``
#: says every value has its column's type (integer or text); any other row (a REAL or a BLOB
#: put in by hand: SQLite 3.45+ prints a BLOB of its binary JSON as that JSON) is judged by
#: ``canonical_bytes``, as is any row whose hash does not match.
_PLAIN = " AND ".join(f"typeof({c}) = '{'integer' if c in INT_FIELDS or c == 'seq' else 'text'}'"
                      for c in COLUMNS[:-2])
SELECT_CANONICAL = (f"SELECT seq, json_array({', '.join(COLUMNS[:-2])}), ({_PLAIN}) AS plain, prev_hash, hash "
                    f"FROM {TABLE}")
_SELECT_HEAD = f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1"

#: entry -> tuple of its field values in FIELD_NAMES order (C speed, no copying).
entry_values: Callable[[object], tuple[object, ...]] = operator.attrgetter(*FIELD_NAMES)

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)


def canonical_bytes(seq: int, values: Sequence[object]) -> bytes:
    """The one canonical encoding of a ledger row, used by the writer and the verifier.

    UTF-8 of the compact JSON array ``[seq, at_ns, direction, …, request_digest]``
    (fields in ``FIELD_NAMES`` order, non-ASCII kept as is, control characters
    escaped by JSON), so every field is delimited and typed: no two different rows
    share an encoding.
    """
    return _ENCODER.encode([seq, *values]).encode("utf-8")


def chain_hash(prev_hash: str, seq: int, values: Sequence[object]) -> str:
    """``sha256(bytes.fromhex(prev_hash) || canonical_bytes(seq, values))`` as hex."""
    return chain_hash_of(prev_hash, canonical_bytes(seq, values))


def chain_hash_of(prev_hash: str, canonical: bytes) -> str:
    """``chain_hash`` of a row already encoded by ``canonical_bytes`` (or SQLite's equal JSON)."""
    digest = hashlib.sha256(bytes.fromhex(prev_hash))
    digest.update(canonical)
    return digest.hexdigest()


def is_sha256_hex(text: object) -> bool:
    """True if ``text`` is 64 lowercase hex digits."""
    return (
        isinstance(text, str)
        and len(text) == 64
        and all(c in "0123456789abcdef" for c in text)
    )


def _check_columns(conn: sqlite3.Connection, path: Path) -> None:
    found = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})"))
    if not found:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        raise LedgerError(
            f"ledger {path}: no table {TABLE!r} (tables found: {', '.join(tables) or 'none'})"
        )
    if found != COLUMNS:
        raise LedgerError(
            f"ledger {path}: table {TABLE!r} has columns ({', '.join(found)}), "
            f"expected ({', '.join(COLUMNS)})"
        )


def open_for_writing(path: Path) -> tuple[sqlite3.Connection, int, str]:
    """Open (creating if needed) the ledger table in WAL mode; return conn and chain head."""
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as e:
        raise LedgerError(f"ledger {path}: cannot open: {e}") from e
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise LedgerError(f"ledger {path}: expected journal_mode 'wal', SQLite kept {mode!r}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(CREATE_TABLE)
        conn.execute("COMMIT")
        _check_columns(conn, path)
        head = conn.execute(_SELECT_HEAD).fetchone()
    except sqlite3.Error as e:
        conn.close()
        raise LedgerError(f"ledger {path}: cannot open: {e}") from e
    except BaseException:
        conn.close()
        raise
    if head is None:
        return conn, 0, GENESIS_HASH
    seq, last_hash = head
    if not is_sha256_hex(last_hash):
        conn.close()
        raise LedgerChainError(
            f"ledger {path}: last row {seq} has hash {last_hash!r}, not a SHA-256 hex digest; "
            "the chain cannot be continued (run verify_ledger)"
        )
    return conn, int(seq), str(last_hash)


class WriterLock:
    """``flock(LOCK_EX)`` on ``<db>.lock``, which holds the writer's pid: one writer per file.

    The kernel drops it when the process dies (even by SIGKILL). Not on the database itself:
    closing any descriptor of it drops SQLite's POSIX locks on it for the whole process. The
    file is removed on release while still locked, so ``acquire`` checks that the file it
    locked is still the one at the path (else a release racing with it leaves two holders).
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, db: Path) -> WriterLock:
        """Lock ``db`` for writing; ConfigError if another live writer holds it."""
        path = db.with_name(db.name + ".lock")
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise LedgerError(f"ledger {db}: cannot open: {path}: {e.strerror or e}") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise LedgerError(f"ledger {db}: cannot lock {path}: {e.strerror or e}") from e
                raise ConfigError(_held(db, holder if holder.isdigit() else "")) from None
            mine = os.fstat(fd)
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.stat(path), mine):
                    break
            os.close(fd)  # its holder released and removed it meanwhile: lock the path's file
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Remove the lock file and unlock; a second call does nothing."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                os.unlink(self.path)
            except OSError as e:
                logger.warning("ledger lock %s: cannot remove: %s", self.path, e)
            os.close(fd)


def _held(db: Path, pid: str) -> str:
    """The error for a ledger another writer (process ``pid``, "" if unknown) holds."""
    if pid == str(os.getpid()):
        return (f"{db}: this process (pid {pid}) is already writing this ledger "
                "(only one Ledger may write a file); close it first")
    who = f"another process (pid {pid})" if pid else "another process"
    return f"{db}: {who} is writing this ledger (only one node may use a data dir); stop it first"


def open_for_reading(path: Path) -> sqlite3.Connection:
    """Open an existing ledger for queries only; LedgerError names the path otherwise."""
    if not path.is_file():
        raise LedgerError(f"ledger {path}: no such file")
    try:
        conn = sqlite3.connect(
            path.resolve().as_uri() + "?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S
        )
    except sqlite3.Error as e:
        raise LedgerError(f"ledger {path}: cannot open: {e}") from e
    try:
        conn.execute("PRAGMA query_only=ON")
        _check_columns(conn, path)
    except sqlite3.Error as e:
        conn.close()
        raise LedgerError(f"ledger {path}: cannot read: {e}") from e
    except BaseException:
        conn.close()
        raise
    return conn


class ChainWriter:
    """One ledger's rows, hashed and committed in batches by the process's pump thread
    (``exchange._ledger_pump``).

    Callers hold ``_lock`` only to add to ``_pending`` (a list swapped out whole by
    the pump), so ``append`` never waits for SQLite. The pump holds this object, not
    the public ``Ledger``, so a forgotten ``Ledger`` can be finalised.
    """

    def __init__(
        self,
        *,
        path: Path,
        conn: sqlite3.Connection,
        node_code: str,
        last_seq: int,
        last_hash: str,
        flush_interval_s: float,
        batch_max: int,
        pump: Pump = PUMP,
        lock: WriterLock | None = None,
    ) -> None:
        self.path = path
        self.node_code = node_code
        self._conn = conn
        self._interval_s = flush_interval_s
        self._batch_max = batch_max
        self._pump = pump
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)  # flush() and stop() wait here
        self._pending: list[object] = []
        self._appended = 0
        self._committed = 0
        self._batches = 0
        self._last_seq = last_seq
        self._last_hash = last_hash
        self._stopping = False
        self._stopped = False
        self._error: BaseException | None = None
        self._lock_file = lock  # released once closed (a failed writer's: by close())
        self._on_failure: list[Callable[[LedgerError], None]] = []
        pump.register(self)

    # -- caller side -------------------------------------------------------------------

    def append(self, entry: object) -> None:
        """Queue one entry; raise LedgerError if the writer failed or was stopped."""
        with self._lock:
            if self._error is not None:
                raise self._failure()
            if self._stopping:
                raise LedgerError(f"ledger {self.path}: closed, cannot append")
            self._pending.append(entry)
            self._appended += 1
            waiting = len(self._pending)
            if waiting == 1:
                self._pump.request(self, time.monotonic() + self._interval_s)
            elif waiting >= self._batch_max:
                self._pump.request(self, 0.0)

    def flush(self, timeout_s: float) -> None:
        """Block until every entry appended before the call is committed."""
        with self._lock:
            target = self._appended
            if self._committed < target and self._error is None:
                self._pump.request(self, 0.0)
                self._done.wait_for(
                    lambda: self._committed >= target or self._error is not None, timeout_s
                )
            if self._error is not None:
                raise self._failure()
            if self._committed < target:
                raise LedgerError(
                    f"ledger {self.path}: flush timed out after {timeout_s:g} s with "
                    f"{target - self._committed} of {target} entries not committed"
                )

    def stop(self, timeout_s: float) -> None:
        """Commit what is pending, close the connection; raise on failure."""
        self.request_stop()
        stopped = self.wait_stopped(timeout_s)
        with self._lock:
            if not stopped:
                raise LedgerError(
                    f"ledger {self.path}: writer did not stop within {timeout_s:g} s "
                    f"({self._appended - self._committed} entries not committed)"
                )
            self._release()  # closed: also when its last commit failed (the pump keeps the lock then)
            if self._error is not None:
                raise self._failure()

    def wait_committed(self, count: int, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until ``count`` entries are committed, without asking
        for a flush: the batches come when they are due."""
        with self._lock:
            return self._done.wait_for(lambda: self._committed >= count, timeout_s)

    def wait_stopped(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until the pump has committed and closed this ledger."""
        with self._lock:
            return self._done.wait_for(lambda: self._stopped, timeout_s)

    def request_stop(self) -> None:
        """Ask the pump to commit what is pending and close, without waiting."""
        with self._lock:
            if not self._stopped:
                self._stopping = True
                self._pump.request(self, 0.0)
            else:  # stopped by a failure: the file stayed locked until now
                self._release()

    def counters(self) -> tuple[int, int, int, int, str]:
        """(appended, committed, batches, last_seq, last_hash), read consistently."""
        with self._lock:
            return (
                self._appended,
                self._committed,
                self._batches,
                self._last_seq,
                self._last_hash,
            )

    def failure(self) -> LedgerError | None:
        """The LedgerError ``append`` raises since the writer failed; None while it works."""
        if self._error is None:  # no lock for the usual answer: the hot path asks it
            return None
        with self._lock:
            return self._failure() if self._error is not None else None

    def on_failure(self, callback: Callable[[LedgerError], None]) -> None:
        """Call ``callback(error)`` once when the writer fails (in the pump's thread; at
        once, in this thread, if it already has)."""
        with self._lock:
            if self._error is None:
                self._on_failure.append(callback)
                return
            failure = self._failure()
        callback(failure)

    def _release(self) -> None:
        """Unlock the file (with ``_lock`` held, after the connection is closed)."""
        if self._lock_file is not None:
            self._lock_file.release()

    def _failure(self) -> LedgerError:
        err = self._error
        lost = self._appended - self._committed
        failure = LedgerError(
            f"ledger {self.path}: writer failed and stopped: {type(err).__name__}: {err} "
            f"({lost} {'entry' if lost == 1 else 'entries'} not committed)"
        )
        failure.__cause__ = err
        return failure

    # -- the pump's thread -------------------------------------------------------------

    def drain(self) -> bool:
        """Commit everything pending (and close, if asked to stop); True once stopped.
        An error is recorded for the next caller, and stops this ledger only."""
        with self._lock:
            if self._stopped:
                return True
            batch, self._pending = self._pending, []
            stopping = self._stopping
        try:
            if batch:
                self._write(batch)
        except BaseException as e:  # noqa: BLE001 - recorded, raised to the next caller
            logger.error("ledger %s: writer failed: %r", self.path, e)
            with self._lock:
                self._error = e
                failure, callbacks, self._on_failure = self._failure(), self._on_failure, []
            for callback in callbacks:
                try:
                    callback(failure)
                except Exception:  # one listener's bug must not stop the others
                    logger.exception("ledger %s: failure listener %r failed", self.path, callback)
            stopping = True
        if not stopping:
            return False
        try:
            self._conn.close()
        except sqlite3.Error as e:
            logger.error("ledger %s: closing failed: %r", self.path, e)
        with self._lock:
            if self._error is None:  # a failed writer keeps the file locked until close()
                self._release()
            self._stopping = self._stopped = True
            self._done.notify_all()
        return True

    def exiting(self) -> None:
        logger.warning("ledger %s: program exiting without close()", self.path)
        with self._lock:
            self._stopping = True

    def _write(self, batch: list[object]) -> None:
        for start in range(0, len(batch), self._batch_max):
            chunk = batch[start : start + self._batch_max]
            seq, prev = self._last_seq, self._last_hash
            rows = []
            for entry in chunk:
                seq += 1
                values = entry_values(entry)
                digest = chain_hash(prev, seq, values)
                rows.append((seq, *values, prev, digest))
                prev = digest
            self._insert(rows)
            with self._lock:
                self._last_seq, self._last_hash = seq, prev
                self._committed += len(chunk)
                self._batches += 1
                self._done.notify_all()

    def _insert(self, rows: list[tuple[object, ...]]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            head = conn.execute(_SELECT_HEAD).fetchone() or (0, GENESIS_HASH)
            if tuple(head) != (self._last_seq, self._last_hash):
                raise LedgerChainError(
                    f"ledger {self.path}: another writer changed the table: last row is "
                    f"{head[0]} with hash {head[1]}, expected {self._last_seq} with hash "
                    f"{self._last_hash} (only one Ledger may write a file)"
                )
            conn.executemany(INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as e:
                    logger.error("ledger %s: rollback failed: %r", self.path, e)
            raise
