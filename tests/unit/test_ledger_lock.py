"""One writer per ledger file: a second Ledger, in this process or another, is refused
before it writes anything; the lock goes with close() or with the process."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest

from exchange.errors import ConfigError, LedgerError
from exchange.ledger import Ledger, LedgerEntry, read_entries, verify_ledger

ROOT = Path(__file__).resolve().parents[2]


def entry(i: int) -> LedgerEntry:
    return LedgerEntry(at_ns=i, direction="received", message_id=f"m{i}", payload_type="", flow="",
                       sender="110000", receiver="440000", peer="000000", envelope_sha256="", size_bytes=0,
                       expires_at_ns=0, outcome="ok", reason="", trace_id="", request_digest="")


def files(db: Path) -> dict[str, str]:
    """The database's files (with SQLite's -wal and -shm) by name, as SHA-256 of their bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(db.parent.iterdir()) if p.name.startswith(db.name) and not p.name.endswith(".lock")}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "440000.sqlite"


def test_a_second_ledger_in_this_process_is_refused_until_the_first_is_closed(db: Path) -> None:
    first = Ledger(db, node_code="440000")
    first.append(entry(1))
    first.flush()
    with pytest.raises(ConfigError) as info:
        Ledger(db, node_code="440000")
    assert str(info.value) == (
        f"{db}: this process (pid {os.getpid()}) is already writing this ledger "
        "(only one Ledger may write a file); close it first")
    first.append(entry(2))
    first.close()
    assert not db.with_name("440000.sqlite.lock").exists()
    with Ledger(db, node_code="440000") as again:
        again.append(entry(3))
    assert [r.entry.message_id for r in read_entries(db)] == ["m1", "m2", "m3"]
    assert verify_ledger(db).rows == 3


def test_ledgers_of_different_files_in_one_process_do_not_conflict(tmp_path: Path) -> None:
    """Co-hosted provinces: one process, each with its own database."""
    with Ledger(tmp_path / "440000.sqlite", node_code="440000") as a, \
            Ledger(tmp_path / "370000.sqlite", node_code="370000") as b:
        a.append(entry(1))
        b.append(entry(2))
    assert [verify_ledger(tmp_path / f"{c}.sqlite").rows for c in ("440000", "370000")] == [1, 1]


def test_a_ledger_another_process_writes_is_refused_untouched_and_free_once_it_is_killed(db: Path) -> None:
    script = (
        "import sys\n"
        "from exchange.ledger import Ledger\n"
        "ledger = Ledger(sys.argv[1], node_code='440000')\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    with Ledger(db, node_code="440000") as ledger:
        ledger.append(entry(1))
    with subprocess.Popen([sys.executable, "-c", script, str(db)], cwd=ROOT, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
            before = files(db)
            with pytest.raises(ConfigError) as info:
                Ledger(db, node_code="440000")
            assert str(info.value) == (
                f"{db}: another process (pid {child.pid}) is writing this ledger "
                "(only one node may use a data dir); stop it first")
            assert files(db) == before
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert db.with_name("440000.sqlite.lock").exists()  # left behind by the killed process
    with Ledger(db, node_code="440000") as ledger:  # the kernel released its lock
        ledger.append(entry(2))
    assert verify_ledger(db).rows == 2


def test_a_failed_writer_reports_its_failure_and_keeps_the_file_until_closed(db: Path) -> None:
    ledger = Ledger(db, node_code="440000", flush_interval_ms=60_000)
    heard: list[LedgerError] = []
    told = threading.Event()

    def hear(error: LedgerError) -> None:
        heard.append(error)
        told.set()

    ledger.on_failure(hear)
    assert ledger.failure() is None
    ledger.append(entry(1))
    ledger.flush()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TABLE ledger")
    ledger.append(entry(2))
    with pytest.raises(LedgerError):
        ledger.flush()
    assert told.wait(10)
    message = (f"ledger {db}: writer failed and stopped: OperationalError: no such table: ledger "
               "(1 entry not committed)")
    assert [str(e) for e in heard] == [message]
    assert str(ledger.failure()) == message
    late: list[LedgerError] = []
    ledger.on_failure(late.append)  # registered after the failure: called at once
    assert [str(e) for e in late] == [message]
    with pytest.raises(ConfigError, match="is already writing this ledger"):
        Ledger(db, node_code="440000")
    with pytest.raises(LedgerError, match="writer failed and stopped"):
        ledger.close()
    with Ledger(db, node_code="440000") as again:
        again.append(entry(3))
    assert verify_ledger(db).rows == 1


def test_a_ledger_whose_last_commit_fails_at_close_still_lets_the_file_go(db: Path) -> None:
    ledger = Ledger(db, node_code="440000", flush_interval_ms=60_000)
    ledger.append(entry(1))
    ledger.flush()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TABLE ledger")
    ledger.append(entry(2))  # pending: it fails only in the commit close() asks for
    with pytest.raises(LedgerError, match="writer failed and stopped: OperationalError: no such table: ledger"):
        ledger.close()
    assert not db.with_name(db.name + ".lock").exists()
    Ledger(db, node_code="440000").close()  # the file is free again
