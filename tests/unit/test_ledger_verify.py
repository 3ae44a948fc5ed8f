"""verify_ledger's fast path: SQLite encodes each row, and its JSON is the canonical encoding.

Reading one column of SQLite's compact JSON per row instead of seventeen values halves the
verifier's time. That only holds if SQLite writes exactly what ``canonical_bytes`` writes
for every row a writer makes; where it might not (a value no writer puts there), the row
is recomputed from its values before a mismatch counts.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exchange.ledger as ledger_mod
from exchange._ledger_db import COLUMNS, FIELD_NAMES, canonical_bytes, chain_hash
from exchange.ledger import verify_ledger
from tests.unit.test_ledger import NASTY, entries_strategy, entry, sql, write

_SQLITE = sqlite3.connect(":memory:")
_JSON = f"SELECT json_array({', '.join('?' * (len(FIELD_NAMES) + 1))})"


def _sqlite_json(seq: int, values: tuple[object, ...]) -> bytes:
    return _SQLITE.execute(_JSON, (seq, *values)).fetchone()[0].encode("utf-8")


def test_sqlite_writes_every_character_below_0x80_as_the_canonical_encoding() -> None:
    for code in range(0x80):
        values = (1, chr(code), f"a{chr(code)}b", "", "", "", "", "", "", 2, 3, "", "", "", "")
        assert _sqlite_json(7, values) == canonical_bytes(7, values), hex(code)


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(1, 2**63 - 1),
    ints=st.tuples(*[st.integers(-(2**63), 2**63 - 1)] * 3),
    texts=st.lists(st.text(), min_size=12, max_size=12),
)
def test_sqlite_writes_any_integers_and_text_as_the_canonical_encoding(
    seq: int, ints: tuple[int, int, int], texts: list[str]
) -> None:
    it = iter(texts)
    values = tuple(ints[("at_ns", "size_bytes", "expires_at_ns").index(f)]
                   if f in ("at_ns", "size_bytes", "expires_at_ns") else next(it) for f in FIELD_NAMES)
    assert _sqlite_json(seq, values) == canonical_bytes(seq, values)


def _no_recompute(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(conn: sqlite3.Connection, seq: int) -> tuple[object, ...]:
        raise AssertionError(f"row {seq} was recomputed from its values: the fast path did not match")

    monkeypatch.setattr(ledger_mod, "_values", fail)


def test_the_fast_path_matches_every_row_of_unusual_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "ledger.sqlite"
    write(db, [entry(i, message_id=s, reason=s, peer=s, trace_id=s[::-1]) for i, s in enumerate(NASTY)])
    _no_recompute(monkeypatch)
    assert verify_ledger(db).rows == len(NASTY)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(entries_strategy, min_size=1, max_size=20))
def test_the_fast_path_matches_every_row_a_writer_makes(entries: list, monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite"
        write(path, entries)
        _no_recompute(monkeypatch)
        assert verify_ledger(path).rows == len(entries)


def test_a_row_sqlite_encodes_otherwise_is_judged_by_the_canonical_encoding(tmp_path: Path) -> None:
    # A REAL no writer makes: SQLite writes 1.0e+20, canonical_bytes 1e+20. Rehashed the
    # canonical way, the chain is whole, and verify_ledger must say so.
    db = tmp_path / "ledger.sqlite"
    write(db, [entry(i) for i in range(5)])
    sql(db, "UPDATE ledger SET size_bytes = 1e20 WHERE seq = 3")
    conn = sqlite3.connect(db)
    prev = "0" * 64
    for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM ledger ORDER BY seq").fetchall():
        h = chain_hash(prev, row[0], row[1:-2])
        conn.execute("UPDATE ledger SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, row[0]))
        prev = h
    conn.commit()
    conn.close()
    assert _sqlite_json(3, (1, "", "", "", "", "", "", "", "", 1e20, 2, "", "", "", "")) != canonical_bytes(
        3, (1, "", "", "", "", "", "", "", "", 1e20, 2, "", "", "", ""))
    result = verify_ledger(db)
    assert (result.rows, result.last_hash) == (5, prev)
