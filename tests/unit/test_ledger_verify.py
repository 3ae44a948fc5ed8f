"""verify_ledger's fast path: SQLite encodes each row, and its JSON is the canonical encoding.

Reading one column of SQLite's compact JSON per row instead of seventeen values halves the
verifier's time. That only holds if SQLite writes exactly what ``canonical_bytes`` writes
for every row a writer makes; where it might not (a value no writer puts there), the row
is recomputed from its values before a mismatch counts.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exchange.ledger as ledger_mod
from exchange._ledger_db import COLUMNS, FIELD_NAMES, canonical_bytes, chain_hash
from exchange.errors import LedgerChainError
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


#: Run with a current SQLite in place of the standard library's (pysqlite3-binary, a dev
#: dependency): binary JSON arrived in 3.45, after the 3.40 Python 3.11 ships here.
_ON_CURRENT_SQLITE = """
import json, sys
import pysqlite3.dbapi2 as current
sys.modules["sqlite3"] = current
from pathlib import Path
from exchange.errors import LedgerChainError
import exchange.ledger as ledger_mod
from tests.unit.test_ledger import NASTY, entry, write

tmp = Path(sys.argv[1])
nasty, tampered = tmp / "nasty.sqlite", tmp / "tampered.sqlite"
write(nasty, [entry(i, message_id=s, reason=s, peer=s, trace_id=s[::-1]) for i, s in enumerate(NASTY)])
write(tampered, [entry(i) for i in range(5)])
with current.connect(tampered) as conn:
    conn.execute("UPDATE ledger SET direction = jsonb(json_quote(direction)) WHERE seq = 3")
    kind, printed = conn.execute("SELECT typeof(direction), json_array(direction) FROM ledger WHERE seq = 3").fetchone()
recomputed = []
values = ledger_mod._values
ledger_mod._values = lambda conn, seq: recomputed.append(seq) or values(conn, seq)
out = {"version": current.sqlite_version, "kind": kind, "printed": printed,
       "rows": ledger_mod.verify_ledger(nasty).rows, "recomputed": list(recomputed)}
try:
    ledger_mod.verify_ledger(tampered)
except LedgerChainError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


def test_on_a_current_sqlite_the_fast_path_matches_and_a_text_rewritten_as_binary_json_is_found(
        tmp_path: Path) -> None:
    # SQLite 3.45+ reads a BLOB of its binary JSON as that JSON: json_array prints the text it
    # holds, so without the type check the rewritten row would pass as unchanged.
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _ON_CURRENT_SQLITE, str(tmp_path)], cwd=root, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert tuple(map(int, out["version"].split("."))) >= (3, 45)
    assert (out["kind"], out["printed"]) == ("blob", '["received"]')  # the tampered value prints as the original
    assert (out["rows"], out["recomputed"]) == (len(NASTY), [])  # every writer-made row matched without Python
    assert out.get("error") == (f"ledger {tmp_path / 'tampered.sqlite'}: row 3 (message msg-000002, "
                                "b'\\x87received' from 000000): cannot be encoded: Object of type bytes is not "
                                "JSON serializable")


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


def test_the_fast_path_flags_a_value_of_another_type_than_its_column(tmp_path: Path) -> None:
    from exchange._ledger_db import SELECT_CANONICAL

    db = tmp_path / "ledger.sqlite"
    write(db, [entry(i) for i in range(3)])
    sql(db, "UPDATE ledger SET size_bytes = 1e20 WHERE seq = 2")
    conn = sqlite3.connect(db)
    plain = [row[2] for row in conn.execute(f"{SELECT_CANONICAL} ORDER BY seq")]
    conn.close()
    assert plain == [1, 0, 1]  # row 2 goes to canonical_bytes whatever SQLite's JSON says
