"""Unit tests for exchange.ledger: batching writer, hash chain, tamper detection."""

from __future__ import annotations

import dataclasses
import enum
import gc
import hashlib
import json
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange._ledger_db import ChainWriter, open_for_writing
from exchange._ledger_pump import Pump
from exchange.errors import ConfigError, LedgerChainError, LedgerError
from exchange.ledger import (
    DIRECTIONS,
    GENESIS_HASH,
    Ledger,
    LedgerEntry,
    LedgerRow,
    load_unexpired_message_ids,
    read_entries,
    unanswered_requests,
    verify_ledger,
)

FIELDS = tuple(f.name for f in dataclasses.fields(LedgerEntry))
NOW = 1_750_000_000_000_000_000


def entry(i: int = 0, **overrides: object) -> LedgerEntry:
    """A realistic received-request entry; ``i`` makes ids and times distinct."""
    values: dict[str, object] = {
        "at_ns": NOW + i,
        "direction": "received",
        "message_id": f"msg-{i:06d}",
        "payload_type": "application/vnd.tongban.ecert-request.v1+proto",
        "flow": "ecert.fetch",
        "sender": "110000",
        "receiver": "440000",
        "peer": "000000",
        "envelope_sha256": hashlib.sha256(str(i).encode()).hexdigest(),
        "size_bytes": 600 + i,
        "expires_at_ns": NOW + 60_000_000_000 + i,
        "outcome": "ok",
        "reason": "",
        "trace_id": f"trace-{i}",
        "request_digest": "",
    }
    values.update(overrides)
    return LedgerEntry(**values)  # type: ignore[arg-type]


def expected_hash(prev_hash: str, seq: int, e: LedgerEntry) -> str:
    """The documented chain formula, computed independently of the module."""
    values = [seq, *(getattr(e, name) for name in FIELDS)]
    body = json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def short(h: str) -> str:
    return h[:16] + "…"


def write(path: Path, entries: list[LedgerEntry], **kwargs: int) -> None:
    with Ledger(path, node_code="440000", **kwargs) as ledger:
        for e in entries:
            ledger.append(e)


def sql(path: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    """Run one statement with plain sqlite3, as an attacker with file access would."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(statement, params)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "440000.sqlite"


@pytest.fixture
def ledger10(db: Path) -> Iterator[Path]:
    write(db, [entry(i) for i in range(1, 11)])
    yield db


# -- entries -----------------------------------------------------------------------------


def test_direction_is_validated() -> None:
    with pytest.raises(LedgerError) as info:
        entry(direction="dropped")
    assert str(info.value) == (
        "ledger entry direction must be one of 'received', 'sent', 'forwarded', "
        "'rejected', found 'dropped'"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size_bytes", True, "ledger entry field size_bytes must be int, found bool"),
        ("at_ns", 1.5, "ledger entry field at_ns must be int, found float"),
        ("expires_at_ns", -1, "ledger entry field expires_at_ns must be within 0 … 2**63-1, found -1"),
        ("at_ns", 2**63, f"ledger entry field at_ns must be within 0 … 2**63-1, found {2**63}"),
        ("reason", b"x", "ledger entry field reason must be str, found bytes"),
        ("reason", "ok\udc80", "ledger entry field reason is not valid Unicode text: surrogates not allowed at index 2"),
    ],
)
def test_bad_field_values_are_refused_on_the_callers_thread(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(LedgerError) as info:
        entry(**{field: value})  # type: ignore[arg-type]
    assert str(info.value) == message


def test_enum_values_are_stored_as_plain_values() -> None:
    class Outcome(enum.StrEnum):
        REPLAY = "replay"

    class Size(enum.IntEnum):
        BIG = 4096

    e = entry(outcome=Outcome.REPLAY, size_bytes=Size.BIG)
    assert type(e.outcome) is str and e.outcome == "replay"
    assert type(e.size_bytes) is int and e.size_bytes == 4096


# -- writing -----------------------------------------------------------------------------


def test_appends_from_many_threads_form_one_contiguous_verified_chain(db: Path) -> None:
    threads_n, per_thread = 8, 500
    with Ledger(db, node_code="440000", flush_interval_ms=5, batch_max=300) as ledger:

        def worker(t: int) -> None:
            for i in range(per_thread):
                ledger.append(entry(t * per_thread + i))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    total = threads_n * per_thread
    stats = ledger.stats
    assert (stats.appended, stats.committed, stats.pending, stats.last_seq) == (total, total, 0, total)
    assert stats.batches >= total // 300
    result = verify_ledger(db)
    assert (result.path, result.rows, result.last_seq, result.last_hash) == (
        db, total, total, stats.last_hash
    )
    rows = read_entries(db)
    assert [r.seq for r in rows] == list(range(1, total + 1))
    assert sorted(r.entry.message_id for r in rows) == sorted(
        f"msg-{i:06d}" for i in range(total)
    )


def test_rows_follow_the_documented_hash_formula(ledger10: Path) -> None:
    prev = GENESIS_HASH
    for row in read_entries(ledger10):
        assert row.prev_hash == prev
        assert row.hash == expected_hash(prev, row.seq, row.entry)
        prev = row.hash


def test_schema_has_the_entry_columns_and_leaves_other_tables_alone(db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn:
        sqlite_utils.Database(conn).table("people").insert({"id": 1, "name": "张三"}, pk="id")
    write(db, [entry(1)])
    with closing(sqlite3.connect(db)) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(ledger)")]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT id, name FROM people").fetchall() == [(1, "张三")]
    assert columns == ["seq", *FIELDS, "prev_hash", "hash"]


def test_reopened_ledger_continues_the_same_chain(ledger10: Path) -> None:
    before = verify_ledger(ledger10)
    write(ledger10, [entry(i) for i in range(11, 16)])
    rows = read_entries(ledger10)
    assert rows[10].prev_hash == before.last_hash == rows[9].hash
    result = verify_ledger(ledger10)
    assert (result.rows, result.last_seq) == (15, 15)
    assert [r.entry for r in rows] == [entry(i) for i in range(1, 16)]


def test_flush_makes_rows_visible_to_another_connection(db: Path) -> None:
    # A long interval and a large batch: only flush() can have committed the row.
    with Ledger(db, node_code="440000", flush_interval_ms=60_000, batch_max=10_000) as ledger:
        ledger.append(entry(1))
        ledger.append(entry(2))
        ledger.flush()
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT seq, message_id FROM ledger").fetchall() == [
                (1, "msg-000001"),
                (2, "msg-000002"),
            ]
        assert [r.entry for r in read_entries(db)] == [entry(1), entry(2)]
        assert ledger.stats.pending == 0


def test_batch_max_splits_commits(db: Path) -> None:
    with Ledger(db, node_code="440000", flush_interval_ms=60_000, batch_max=10) as ledger:
        for i in range(25):
            ledger.append(entry(i))
        ledger.flush()
        assert ledger.stats.batches >= 3
    assert verify_ledger(db).rows == 25


def test_append_after_close_raises_and_close_is_idempotent(db: Path) -> None:
    ledger = Ledger(db, node_code="440000")
    ledger.append(entry(1))
    ledger.close()
    ledger.close()
    ledger.flush()  # nothing pending: returns
    with pytest.raises(LedgerError) as info:
        ledger.append(entry(2))
    assert str(info.value) == f"ledger {db}: closed, cannot append"
    assert verify_ledger(db).rows == 1


def test_append_refuses_other_types(db: Path) -> None:
    with Ledger(db, node_code="440000") as ledger, pytest.raises(TypeError) as info:
        ledger.append({"direction": "sent"})  # type: ignore[arg-type]
    assert str(info.value) == "Ledger.append expects a LedgerEntry, found dict"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_max": 0}, "ledger batch_max must be > 0, found 0"),
        ({"flush_interval_ms": -5}, "ledger flush_interval_ms must be > 0, found -5"),
    ],
)
def test_bad_settings_are_config_errors(db: Path, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Ledger(db, node_code="440000", **kwargs)
    assert str(info.value) == message


def test_writer_error_is_raised_by_the_next_call(db: Path) -> None:
    ledger = Ledger(db, node_code="440000", flush_interval_ms=60_000)
    ledger.append(entry(1))
    ledger.flush()
    sql(db, "DROP TABLE ledger")
    ledger.append(entry(2))
    with pytest.raises(LedgerError) as info:
        ledger.flush()
    assert str(info.value) == (
        f"ledger {db}: writer failed and stopped: OperationalError: no such table: ledger "
        "(1 entry not committed)"
    )
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    with pytest.raises(LedgerError, match="writer failed and stopped"):
        ledger.append(entry(3))
    with pytest.raises(LedgerError, match="writer failed and stopped"):
        ledger.close()
    ledger.close()  # already closed: nothing more to report


def test_a_writer_around_the_ledgers_lock_is_detected(db: Path) -> None:
    """A second ``Ledger`` is refused by the lock (tests/unit/test_ledger_lock.py); a writer
    that bypasses it (here a bare ChainWriter) is still found by the chain check."""
    first = Ledger(db, node_code="440000", flush_interval_ms=60_000)
    second = _writer(db, Pump(), 0.001)
    second.append(entry(1))
    second.stop(10)
    first.append(entry(2))
    with pytest.raises(LedgerError) as info:
        first.flush()
    row1 = read_entries(db)[0]
    assert str(info.value) == (
        f"ledger {db}: writer failed and stopped: LedgerChainError: ledger {db}: another "
        f"writer changed the table: last row is 1 with hash {row1.hash}, expected 0 with "
        f"hash {GENESIS_HASH} (only one Ledger may write a file) (1 entry not committed)"
    )
    with pytest.raises(LedgerError):
        first.close()
    assert verify_ledger(db).rows == 1


def test_flush_times_out_while_the_file_is_locked(db: Path) -> None:
    with Ledger(db, node_code="440000", flush_interval_ms=1) as ledger:
        with closing(sqlite3.connect(db, isolation_level=None)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            ledger.append(entry(1))
            with pytest.raises(LedgerError) as info:
                ledger.flush(timeout_s=0.2)
            blocker.execute("ROLLBACK")
        assert str(info.value) == (
            f"ledger {db}: flush timed out after 0.2 s with 1 of 1 entries not committed"
        )
        ledger.flush()
    assert verify_ledger(db).rows == 1


def test_twenty_thousand_appends_and_close_complete(db: Path) -> None:
    entries = [entry(i) for i in range(20_000)]
    with Ledger(db, node_code="440000") as ledger:
        for e in entries:
            ledger.append(e)
    assert ledger.stats.committed == 20_000
    assert verify_ledger(db).rows == 20_000


def test_forgotten_ledger_is_finalised_its_rows_committed_and_its_file_closed(db: Path) -> None:
    ledger = Ledger(db, node_code="990001", flush_interval_ms=60_000)
    ledger.append(entry(1))
    writer = ledger._writer
    del ledger
    gc.collect()
    assert writer.wait_stopped(10)
    assert verify_ledger(db).rows == 1
    with Ledger(db, node_code="990001") as again:  # and its writer lock went with it
        again.append(entry(2))
    assert verify_ledger(db).rows == 2


def test_the_ledgers_of_a_process_share_one_writer_thread(tmp_path: Path) -> None:
    ledgers = [Ledger(tmp_path / f"{i}.sqlite", node_code=f"99000{i}") for i in range(8)]
    try:
        for i, ledger in enumerate(ledgers):
            for n in range(i + 1):
                ledger.append(entry(n))
        assert [t.name for t in threading.enumerate() if t.name.startswith("ledger-writer")] == ["ledger-writer"]
        for ledger in ledgers:
            ledger.flush()
        assert [verify_ledger(tmp_path / f"{i}.sqlite").rows for i in range(8)] == [1, 2, 3, 4, 5, 6, 7, 8]
    finally:
        for ledger in ledgers:
            ledger.close()


def _writer(path: Path, pump: Pump, interval_s: float) -> ChainWriter:
    conn, seq, head = open_for_writing(path)
    return ChainWriter(path=path, conn=conn, node_code="990009", last_seq=seq, last_hash=head,
                       flush_interval_s=interval_s, batch_max=100, pump=pump)


def test_a_batch_due_sooner_wakes_a_pump_asleep_until_another_is_due(tmp_path: Path) -> None:
    pump = Pump(idle_check_s=3600)  # only a wake-up can bring the thread back in time
    slow = _writer(tmp_path / "slow.sqlite", pump, 3600)
    fast = _writer(tmp_path / "fast.sqlite", pump, 0.001)
    try:
        slow.append(entry(1))  # the pump sleeps until slow's batch is due, an hour from now
        fast.append(entry(1))  # due in 1 ms
        assert fast.wait_committed(1, timeout_s=30)  # (slow's row rides along: rounds are shared)
    finally:
        slow.stop(10)
        fast.stop(10)
    assert [verify_ledger(tmp_path / f"{n}.sqlite").rows for n in ("slow", "fast")] == [1, 1]


def test_one_ledgers_failure_leaves_the_others_writing(tmp_path: Path) -> None:
    broken, other = tmp_path / "broken.sqlite", tmp_path / "other.sqlite"
    with Ledger(other, node_code="990002", flush_interval_ms=60_000) as fine:
        bad = Ledger(broken, node_code="990001", flush_interval_ms=60_000)
        bad.append(entry(1))
        bad.flush()
        sql(broken, "DROP TABLE ledger")
        bad.append(entry(2))
        fine.append(entry(1))
        with pytest.raises(LedgerError, match="no such table: ledger"):
            bad.flush()
        fine.append(entry(2))
        fine.flush()
        with pytest.raises(LedgerError, match="writer failed and stopped"):
            bad.close()
    assert verify_ledger(other).rows == 2


def test_program_exiting_without_close_commits_and_exits(db: Path) -> None:
    script = (
        "import sys\n"
        "from exchange.ledger import Ledger, LedgerEntry\n"
        "ledger = Ledger(sys.argv[1], node_code='440000', flush_interval_ms=60_000)\n"
        "ledger.append(LedgerEntry(at_ns=1, direction='sent', message_id='m1', payload_type='',"
        " flow='', sender='', receiver='', peer='', envelope_sha256='', size_bytes=0,"
        " expires_at_ns=0, outcome='ok', reason='', trace_id='', request_digest=''))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(db)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"ledger {db}: program exiting without close()" in done.stderr
    assert [r.entry.message_id for r in read_entries(db)] == ["m1"]


def test_tampered_last_hash_is_refused_on_reopen(ledger10: Path) -> None:
    sql(ledger10, "UPDATE ledger SET hash = 'oops' WHERE seq = 10")
    with pytest.raises(LedgerChainError) as info:
        Ledger(ledger10, node_code="440000")
    assert str(info.value) == (
        f"ledger {ledger10}: last row 10 has hash 'oops', not a SHA-256 hex digest; "
        "the chain cannot be continued (run verify_ledger)"
    )


# -- strings -----------------------------------------------------------------------------

NASTY = [
    "'; DROP TABLE ledger;--",
    'quote " and \' and \\ backslash',
    "nul\x00inside\x00",
    "emoji 🇨🇳🧾👩🏽‍💻",
    "中文：身份认证核验 / 电子证照",
    "\u202eRTL override\u200b zero-width",
    "\r\n\t control \x1b[31m",
    "x" * 10_000,
    "证" * 10_000,
    "",
]


def test_unicode_and_injection_strings_round_trip_exactly(db: Path) -> None:
    entries = [
        entry(i, message_id=s, reason=s, peer=s, trace_id=s[::-1]) for i, s in enumerate(NASTY)
    ]
    write(db, entries)
    rows = read_entries(db)
    assert [r.entry for r in rows] == entries
    for s in NASTY:
        assert [r.entry.reason for r in read_entries(db, message_id=s)] == [s]
    assert verify_ledger(db).rows == len(NASTY)


# -- queries -----------------------------------------------------------------------------


def test_read_entries_filters(db: Path) -> None:
    write(
        db,
        [
            entry(1),
            entry(2, direction="rejected", outcome="replay", reason="message msg-000001 replayed"),
            entry(3, direction="sent", flow="identity.verify", trace_id="t-x"),
            entry(4, direction="rejected", outcome="bad_signature", reason="bad sig"),
        ],
    )
    assert [r.seq for r in read_entries(db, direction="rejected")] == [2, 4]
    assert [r.seq for r in read_entries(db, direction="rejected", outcome="replay")] == [2]
    assert [r.seq for r in read_entries(db, message_id="msg-000003")] == [3]
    assert [r.seq for r in read_entries(db, flow="identity.verify", trace_id="t-x")] == [3]
    assert [r.seq for r in read_entries(db, limit=2)] == [1, 2]
    assert read_entries(db, outcome="no_such") == []
    (row,) = read_entries(db, outcome="replay")
    assert isinstance(row, LedgerRow)
    assert row.entry.reason == "message msg-000001 replayed"
    with pytest.raises(LedgerError) as info:
        read_entries(db, direction="recieved")
    assert str(info.value) == (
        "read_entries: direction must be one of 'received', 'sent', 'forwarded', "
        "'rejected', found 'recieved'"
    )


def test_a_new_ledger_has_no_secondary_index_and_an_old_ones_index_is_kept(db: Path, tmp_path: Path) -> None:
    """Rows are only appended: a random-key index (message ids are uuid4) made each
    insert costlier as the ledger grew (exchange/_ledger_db.py). Lookups still work."""
    write(db, [entry(i) for i in range(1, 4)])
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall() == []
    old = tmp_path / "old.sqlite"
    write(old, [entry(1)])
    sql(old, "CREATE INDEX ledger_message_id ON ledger (message_id)")  # as ledgers made before had
    write(old, [entry(2)])
    with closing(sqlite3.connect(old)) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall() == [
            ("ledger_message_id",)]
    assert [r.seq for r in read_entries(old, message_id="msg-000002")] == [2]
    assert verify_ledger(old).rows == 2


def test_load_unexpired_message_ids(db: Path) -> None:
    write(
        db,
        [
            entry(1, message_id="live", expires_at_ns=NOW + 100),
            entry(2, message_id="expired", expires_at_ns=NOW - 1),
            entry(3, message_id="edge", expires_at_ns=NOW),
            entry(4, message_id="sent-one", direction="sent", expires_at_ns=NOW + 100),
            entry(5, message_id="bad", direction="rejected", expires_at_ns=NOW + 100),
            entry(6, message_id="", expires_at_ns=NOW + 100),
            entry(7, message_id="twice", expires_at_ns=NOW + 5),
            entry(8, message_id="twice", expires_at_ns=NOW + 9),
            entry(9, message_id="身份-🆔", expires_at_ns=NOW + 7),
        ],
    )
    assert load_unexpired_message_ids(db, now_ns=NOW) == {
        "live": NOW + 100,
        "twice": NOW + 9,
        "身份-🆔": NOW + 7,
    }
    assert load_unexpired_message_ids(db, now_ns=NOW + 100) == {}


def request_row(i: int, direction: str, digest: str, **overrides: object) -> LedgerEntry:
    """A row of node 440000's own ecert.fetch with ``digest`` (sent by it, or its answer)."""
    sender, receiver = ("440000", "510000") if direction == "sent" else ("510000", "440000")
    return entry(i, **{"direction": direction, "request_digest": digest, "sender": sender,
                       "receiver": receiver, **overrides})


def test_unanswered_requests_are_this_nodes_sent_requests_with_no_answer_or_failure(db: Path) -> None:
    write(db, [
        request_row(1, "sent", "d-answered"),
        request_row(2, "received", "d-answered"),
        request_row(3, "sent", "d-open"),
        request_row(4, "sent", "d-open"),  # a retry: one row for the request, the first
        request_row(5, "rejected", "d-failed-first"),  # a failure ledgered before the send
        request_row(6, "sent", "d-failed-first"),
        request_row(7, "sent", "d-failed"),
        request_row(8, "rejected", "d-failed", sender="440000", receiver="510000"),  # its own failure
        request_row(9, "sent", "d-registration", flow="registration"),
        request_row(10, "sent", "d-someone-else", sender="110000"),
        request_row(11, "sent", "d-answer-to-another"),
        request_row(12, "received", "d-answer-to-another", receiver="110000"),
        request_row(13, "sent", ""),
        request_row(14, "sent", "d-open-later"),
        request_row(15, "sent", "d-registered"),
        request_row(16, "received", "d-registered", flow="registration"),  # closes all the same
        request_row(17, "sent", "d-refused-by-the-hub"),
        request_row(18, "rejected", "d-refused-by-the-hub", sender="000000", receiver="510000"),
    ])
    rows = unanswered_requests(db, node_code="440000")
    assert [(r.seq, r.entry.request_digest) for r in rows] == [
        (3, "d-open"), (11, "d-answer-to-another"), (14, "d-open-later")]
    assert rows[0].entry == request_row(3, "sent", "d-open")
    assert unanswered_requests(db, node_code="510000") == []


ECERT_RESPONSE = "application/vnd.tongban.ecert-response.v1+proto"
REGISTRATION = "application/vnd.tongban.registration.v1+proto"


def test_responses_this_node_sent_are_not_open_requests(db: Path) -> None:
    """A response carries the digest of the request it answers; a request that arrived
    with an empty receiver (a window that left routing to the hub) has no received row
    addressed to this node to close it, so only the payload type tells them apart."""
    write(db, [
        request_row(1, "received", "d-theirs", receiver=""),  # 510000's request, receiver left empty
        request_row(2, "sent", "d-theirs", payload_type=ECERT_RESPONSE),  # our answer to it
        request_row(3, "received", "d-addressed"),
        request_row(4, "sent", "d-addressed", payload_type=ECERT_RESPONSE, outcome="retry"),
        request_row(5, "sent", "d-registration", payload_type=REGISTRATION, flow="registration"),
        request_row(6, "sent", "d-unknown-type", payload_type="", flow=""),
        request_row(7, "sent", "d-ours"),  # our own request, still open
        request_row(8, "sent", "d-identity", payload_type="application/vnd.tongban.identity-request.v1+proto",
                    flow="identity.verify"),
    ])
    assert [(r.seq, r.entry.request_digest) for r in unanswered_requests(db, node_code="440000")] == [
        (7, "d-ours"), (8, "d-identity")]


_DIGESTS = st.sampled_from(["", "d1", "d2"])
_TYPES = st.sampled_from(["application/vnd.tongban.ecert-request.v1+proto", ECERT_RESPONSE, REGISTRATION, ""])
_ROWS = st.lists(st.tuples(st.sampled_from(DIRECTIONS), st.sampled_from(["440000", "510000"]),
                           st.sampled_from(["440000", "510000"]), _DIGESTS,
                           st.sampled_from(["ecert.fetch", "registration"]), _TYPES), max_size=25)


@given(rows=_ROWS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_unanswered_requests_match_the_rule_applied_to_every_row(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    """SQLite's answer is the rule applied to the whole ledger in memory (as it was done before)."""
    db = Path(tempfile.mkdtemp(dir=tmp_path)) / "440000.sqlite"
    entries = [entry(i, direction=d, sender=s, receiver=r, request_digest=g, flow=f, payload_type=t)
               for i, (d, s, r, g, f, t) in enumerate(rows)]
    write(db, entries)
    closed = {e.request_digest for e in entries if e.request_digest and (
        e.direction == "rejected" or (e.direction == "received" and e.receiver == "440000"))}
    expected = []
    for seq, e in enumerate(entries, 1):
        if (e.direction == "sent" and e.sender == "440000" and e.request_digest
                and e.request_digest not in closed and e.flow != "registration"
                and e.payload_type == "application/vnd.tongban.ecert-request.v1+proto"):
            expected.append(seq)
            closed.add(e.request_digest)
    assert [r.seq for r in unanswered_requests(db, node_code="440000")] == expected


# -- verification and tampering ------------------------------------------------------------


def test_empty_ledger_verifies(db: Path) -> None:
    write(db, [])
    result = verify_ledger(db)
    assert (result.rows, result.last_seq, result.last_hash) == (0, 0, GENESIS_HASH)


def test_missing_file_or_table_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(LedgerError) as info:
        verify_ledger(missing)
    assert str(info.value) == f"ledger {missing}: no such file"
    assert not missing.exists()

    world = tmp_path / "world.sqlite"
    with closing(sqlite3.connect(world)) as conn:
        conn.execute("CREATE TABLE people (id INTEGER)")
    for call in (verify_ledger, read_entries):
        with pytest.raises(LedgerError) as info:
            call(world)
        assert str(info.value) == f"ledger {world}: no table 'ledger' (tables found: people)"

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError) as info:
        verify_ledger(garbage)
    assert str(info.value) == f"ledger {garbage}: cannot read: file is not a database"


def _row(path: Path, seq: int) -> LedgerRow:
    (row,) = [r for r in read_entries(path) if r.seq == seq]
    return row


def test_changed_field_is_a_hash_mismatch_at_that_row(ledger10: Path) -> None:
    original = _row(ledger10, 7)
    sql(ledger10, "UPDATE ledger SET reason = 'nothing to see' WHERE seq = 7")
    tampered = dataclasses.replace(original.entry, reason="nothing to see")
    recomputed = expected_hash(original.prev_hash, 7, tampered)
    with pytest.raises(LedgerChainError) as info:
        verify_ledger(ledger10)
    assert str(info.value) == (
        f"ledger {ledger10}: row 7 (message msg-000007, received from 000000): hash mismatch: "
        f"stored {short(original.hash)}, recomputed {short(recomputed)}"
    )


@pytest.mark.parametrize(
    ("statement", "first_bad", "problem"),
    [
        ("UPDATE ledger SET size_bytes = size_bytes + 1 WHERE seq = 4", 4, "hash mismatch"),
        ("UPDATE ledger SET size_bytes = 'six hundred' WHERE seq = 4", 4, "hash mismatch"),
        ("UPDATE ledger SET reason = 1 WHERE seq = 4", 4, "hash mismatch"),
        ("UPDATE ledger SET direction = 'sent' WHERE seq = 5", 5, "hash mismatch"),
        ("UPDATE ledger SET at_ns = at_ns - 1 WHERE seq = 1", 1, "hash mismatch"),
        ("UPDATE ledger SET request_digest = 'ab' WHERE seq = 10", 10, "hash mismatch"),
        (f"UPDATE ledger SET hash = '{'e' * 64}' WHERE seq = 10", 10, "hash mismatch"),
        ("UPDATE ledger SET peer = x'00ff' WHERE seq = 3", 3, "cannot be encoded"),
    ],
)
def test_each_kind_of_field_change_is_found(
    ledger10: Path, statement: str, first_bad: int, problem: str
) -> None:
    sql(ledger10, statement)
    with pytest.raises(LedgerChainError, match=rf"^ledger .*: row {first_bad} \(.*\): {problem}"):
        verify_ledger(ledger10)


@pytest.mark.parametrize(
    ("deleted", "message"),
    [
        ((6,), "row 7 follows row 5: row 6 missing"),
        ((4, 5, 6), "row 7 follows row 3: rows 4–6 missing"),
        ((1,), "row 2 is the first row: row 1 missing"),
    ],
)
def test_deleted_rows_are_named_as_a_gap(
    ledger10: Path, deleted: tuple[int, ...], message: str
) -> None:
    for seq in deleted:
        sql(ledger10, "DELETE FROM ledger WHERE seq = ?", (seq,))
    with pytest.raises(LedgerChainError) as info:
        verify_ledger(ledger10)
    assert str(info.value) == f"ledger {ledger10}: {message}"


def test_rewritten_and_rehashed_row_is_found_at_the_next_row(ledger10: Path) -> None:
    row5, row6 = _row(ledger10, 5), _row(ledger10, 6)
    forged = dataclasses.replace(row5.entry, outcome="ok", reason="forged")
    forged_hash = expected_hash(row5.prev_hash, 5, forged)
    sql(ledger10, "UPDATE ledger SET reason = 'forged', hash = ? WHERE seq = 5", (forged_hash,))
    with pytest.raises(LedgerChainError) as info:
        verify_ledger(ledger10)
    assert str(info.value) == (
        f"ledger {ledger10}: row 6 (message msg-000006, received from 000000): prev_hash "
        f"{short(row6.prev_hash)} does not match row 5's hash {short(forged_hash)} "
        "(row 5 was rewritten, or a row was deleted or reordered)"
    )


def test_renumbered_rows_after_a_deletion_are_found(ledger10: Path) -> None:
    sql(ledger10, "DELETE FROM ledger WHERE seq = 3")
    sql(ledger10, "UPDATE ledger SET seq = seq - 1 WHERE seq > 3")
    with pytest.raises(LedgerChainError, match=r"row 3 \(message msg-000004, .*: prev_hash"):
        verify_ledger(ledger10)


def test_forged_first_row_must_start_from_genesis(ledger10: Path) -> None:
    sql(ledger10, "UPDATE ledger SET prev_hash = ? WHERE seq = 1", ("1" * 64,))
    with pytest.raises(LedgerChainError) as info:
        verify_ledger(ledger10)
    assert str(info.value) == (
        f"ledger {ledger10}: row 1 (message msg-000001, received from 000000): prev_hash "
        f"{short('1' * 64)} does not match the genesis hash {short(GENESIS_HASH)} "
        "(row 1 starts the chain)"
    )


def test_cut_off_tail_verifies_but_changes_the_head(ledger10: Path) -> None:
    """Truncation is the documented limit: detect it by comparing the head."""
    head = verify_ledger(ledger10)
    sql(ledger10, "DELETE FROM ledger WHERE seq = 10")
    cut = verify_ledger(ledger10)
    assert (cut.rows, cut.last_seq) == (9, 9)
    assert cut.last_hash != head.last_hash


# -- properties --------------------------------------------------------------------------

_text = st.text(max_size=40)
_int = st.integers(min_value=0, max_value=2**63 - 1)
entries_strategy = st.builds(
    LedgerEntry,
    at_ns=_int,
    direction=st.sampled_from(DIRECTIONS),
    message_id=_text,
    payload_type=_text,
    flow=_text,
    sender=_text,
    receiver=_text,
    peer=_text,
    envelope_sha256=_text,
    size_bytes=_int,
    expires_at_ns=_int,
    outcome=_text,
    reason=_text,
    trace_id=_text,
    request_digest=_text,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(entries_strategy, max_size=30), batch_max=st.integers(1, 8))
def test_any_entries_round_trip_and_verify(entries: list[LedgerEntry], batch_max: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite"
        write(path, entries, batch_max=batch_max)
        rows = read_entries(path)
        assert [r.entry for r in rows] == entries
        assert [r.seq for r in rows] == list(range(1, len(entries) + 1))
        assert verify_ledger(path).rows == len(entries)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(entries_strategy, min_size=1, max_size=10),
    data=st.data(),
)
def test_any_single_field_change_is_found_at_that_row(
    entries: list[LedgerEntry], data: st.DataObject
) -> None:
    seq = data.draw(st.integers(1, len(entries)), label="seq")
    field = data.draw(st.sampled_from(FIELDS), label="field")
    old = getattr(entries[seq - 1], field)
    if field == "direction":
        new: object = data.draw(st.sampled_from([d for d in DIRECTIONS if d != old]))
    elif isinstance(old, int):
        new = data.draw(_int.filter(lambda v: v != old))
    else:
        new = data.draw(_text.filter(lambda v: v != old))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite"
        write(path, entries)
        sql(path, f"UPDATE ledger SET {field} = ? WHERE seq = ?", (new, seq))
        with pytest.raises(LedgerChainError, match=rf"(?s)^ledger .*: row {seq} \(.*hash mismatch"):
            verify_ledger(path)
