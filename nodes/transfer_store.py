"""The durable side of ecert.transfer: a journal of transfers in the node's own
SQLite database, written in one transaction with each certificate change, so a
node killed at any point resumes exactly where it stopped.

Invariant (checked by the tests): a holder's certificate is never valid (state
01) at both A and B. Until B has issued its 08 转入 certificate, A's certificate
(01, or 06 办理转出 while the transfer is pending) is the one that stands; from
then on B's does. Every step is idempotent by transfer id.

Phases at B (the coordinator): started -> out_done -> issued -> done (or
aborted when A holds nothing to transfer). At A: out -> done.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from certs.identifiers import make_ecert_identifier
from nodes.store import CertRecord

__all__ = ["CRASH_ENV", "PendingTransfer", "TransferStore", "crash_point"]

#: Set to a step name to make the process die there as SIGKILL would (tests).
CRASH_ENV = "TONGBAN_CRASH_AT"


def crash_point(name: str) -> None:
    """Die here, without cleanup or ledger flush, if ``TONGBAN_CRASH_AT`` names this step."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id TEXT PRIMARY KEY,
    role TEXT NOT NULL,            -- 'out' at A, 'in' at B
    peer TEXT NOT NULL,            -- the other province
    holder TEXT NOT NULL,
    cert_type TEXT NOT NULL,
    old_identifier TEXT NOT NULL DEFAULT '',
    new_identifier TEXT NOT NULL DEFAULT '',
    old_certificate TEXT NOT NULL DEFAULT '',  -- JSON of the 06 certificate B received
    phase TEXT NOT NULL,
    updated_ns INTEGER NOT NULL
)
"""
_COLS = ("identifier, type_code, type_name, holder_code, holder_code_type, holder_name, issuer_code, issuer_name, "
         "issue_date, valid_from, valid_to, state, operate_type, associated_id, area_code, fields_json")


@dataclass(frozen=True, slots=True)
class PendingTransfer:
    transfer_id: str
    peer: str
    holder: str
    cert_type: str
    phase: str
    old_certificate: dict[str, str]
    new_identifier: str


class TransferStore:
    """Transfer journal and certificate changes of one province."""

    def __init__(self, path: Path, *, code: str, issuer_code: str, issuer_name: str) -> None:
        self.code, self.issuer_code, self.issuer_name = code, issuer_code, issuer_name
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute("PRAGMA synchronous=FULL")  # a transfer step is durable once answered
        self._conn.execute(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- A: the province the holder leaves --------------------------------------
    def mark_out(self, transfer_id: str, *, holder: str, cert_type: str, to_node: str,
                 now_ns: int) -> CertRecord | None:
        """Mark the holder's valid certificate 06 办理转出; the same transfer id gets
        the same certificate again. None when there is nothing valid to transfer."""
        with self._tx() as db:
            row = db.execute("SELECT old_identifier FROM transfers WHERE transfer_id = ? AND role = 'out'",
                             (transfer_id,)).fetchone()
            if row is None:
                found = db.execute(f"SELECT {_COLS} FROM ecerts WHERE holder_code = ? AND type_code = ? "
                                   "AND state = '01' ORDER BY issue_date DESC LIMIT 1",
                                   (holder, cert_type)).fetchone()
                if found is None:
                    return None
                db.execute("UPDATE ecerts SET state = '06' WHERE identifier = ?", (found[0],))
                db.execute("INSERT INTO transfers (transfer_id, role, peer, holder, cert_type, old_identifier, "
                           "phase, updated_ns) VALUES (?, 'out', ?, ?, ?, ?, 'out', ?)",
                           (transfer_id, to_node, holder, cert_type, found[0], now_ns))
                identifier = found[0]
            else:
                identifier = row[0]
            rec = db.execute(f"SELECT {_COLS} FROM ecerts WHERE identifier = ?", (identifier,)).fetchone()
        return CertRecord(*rec)

    def commit_out(self, transfer_id: str, *, new_identifier: str, from_node: str, now_ns: int) -> bool:
        with self._tx() as db:
            cur = db.execute("UPDATE transfers SET phase = 'done', new_identifier = ?, updated_ns = ? "
                             "WHERE transfer_id = ? AND role = 'out' AND peer = ?",
                             (new_identifier, now_ns, transfer_id, from_node))
            return cur.rowcount == 1

    # -- B: the province the holder moves to (coordinator) ----------------------
    def begin_in(self, transfer_id: str, *, holder: str, cert_type: str, from_node: str, now_ns: int) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO transfers (transfer_id, role, peer, holder, cert_type, phase, "
                       "updated_ns) VALUES (?, 'in', ?, ?, ?, 'started', ?)",
                       (transfer_id, from_node, holder, cert_type, now_ns))

    def out_done(self, transfer_id: str, certificate: dict[str, str], *, now_ns: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE transfers SET phase = 'out_done', old_identifier = ?, old_certificate = ?, "
                       "updated_ns = ? WHERE transfer_id = ? AND role = 'in' AND phase = 'started'",
                       (certificate["identifier"], json.dumps(certificate, ensure_ascii=False), now_ns,
                        transfer_id))

    def issue_in(self, transfer_id: str, *, now_ns: int, today: str) -> str:
        """Issue B's 08 转入 certificate once; returns its identifier."""
        with self._tx() as db:
            phase, new_id, old_json = db.execute(
                "SELECT phase, new_identifier, old_certificate FROM transfers WHERE transfer_id = ? AND role = 'in'",
                (transfer_id,)).fetchone()
            if phase in ("issued", "done"):
                return str(new_id)
            old = json.loads(old_json)
            serial = f"ZR{now_ns // 1_000_000 % 10**10:010d}"
            new_id = make_ecert_identifier(old["type_code"], self.issuer_code, serial, "001")
            db.execute(
                f"INSERT INTO ecerts ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '01', '08', ?, ?, ?)",
                (new_id, old["type_code"], old["type_name"], old["holder_code"], old["holder_code_type"],
                 old["holder_name"], self.issuer_code, self.issuer_name, today, today, old.get("valid_to", ""),
                 old["identifier"], old.get("area_code", ""), old.get("fields_json", "{}")))
            db.execute("UPDATE transfers SET phase = 'issued', new_identifier = ?, updated_ns = ? "
                       "WHERE transfer_id = ?", (new_id, now_ns, transfer_id))
            return new_id

    def finish_in(self, transfer_id: str, *, phase: str, now_ns: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE transfers SET phase = ?, updated_ns = ? WHERE transfer_id = ? AND role = 'in'",
                       (phase, now_ns, transfer_id))

    def pending_in(self) -> list[PendingTransfer]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT transfer_id, peer, holder, cert_type, phase, old_certificate, new_identifier FROM transfers "
                "WHERE role = 'in' AND phase IN ('started', 'out_done', 'issued') ORDER BY updated_ns").fetchall()
        return [PendingTransfer(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else {}, r[6]) for r in rows]
