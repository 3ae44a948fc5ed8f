"""Read side of a province's world database (``<code>.sqlite`` from nodes.world).

A :class:`ProvinceStore` answers primary-key lookups in microseconds and samples
rows for load generation by rowid (never ``ORDER BY RANDOM()``). One store may be
shared by the threads of a gRPC server: every query runs under a lock.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from certs.identifiers import ECERT_OID_PREFIX, is_valid_citizen_id, is_valid_uscc, uscc_division
from exchange.errors import ConfigError, MalformedError

__all__ = [
    "Business",
    "CertRecord",
    "Person",
    "ProvinceStore",
    "holder_division",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Person:
    """A resident: ``sex`` is ``"M"`` or ``"F"``, ``birth_date`` ISO 8601."""

    id_number: str
    name: str
    sex: str
    birth_date: str
    division: str
    photo_sha256: str


@dataclass(frozen=True, slots=True)
class Business:
    """A registered business and its legal representative's ID number."""

    uscc: str
    name: str
    division: str
    legal_rep_id: str


@dataclass(frozen=True, slots=True)
class CertRecord:
    """One e-certificate row (GB/T 36904 metadata); dates ISO 8601, ``valid_to``
    ``""`` for long-term (长期)."""

    identifier: str
    type_code: str
    type_name: str
    holder_code: str
    holder_code_type: str
    holder_name: str
    issuer_code: str
    issuer_name: str
    issue_date: str
    valid_from: str
    valid_to: str
    state: str
    operate_type: str
    associated_id: str
    area_code: str
    fields_json: str

    @property
    def fields(self) -> dict[str, str]:
        """The face fields (照面信息) as a string-to-string mapping."""
        raw = json.loads(self.fields_json)
        return {str(k): str(v) for k, v in raw.items()}


_PERSON_COLS = "id_number, name, sex, birth_date, division, photo_sha256"
_BUSINESS_COLS = "uscc, name, division, legal_rep_id"
_CERT_COLS = (
    "identifier, type_code, type_name, holder_code, holder_code_type, holder_name, "
    "issuer_code, issuer_name, issue_date, valid_from, valid_to, state, operate_type, "
    "associated_id, area_code, fields_json"
)
_BATCH = 500


def holder_division(holder_code: str, code_type: str | None = None) -> str:
    """Six-digit division of a holder: a citizen ID's 户籍 prefix or a USCC's division.

    ``code_type`` (``"111"`` citizen ID, ``"001"`` USCC) restricts the interpretation;
    without it a valid citizen ID number is tried first.
    """
    if code_type in (None, "111") and is_valid_citizen_id(holder_code):
        return holder_code[:6]
    if code_type in (None, "001") and is_valid_uscc(holder_code):
        return uscc_division(holder_code)
    expected = {
        "111": "an 18-character citizen ID number (GB 11643)",
        "001": "an 18-character unified social credit code (GB 32100)",
    }.get(code_type or "", "an 18-character citizen ID number (GB 11643) or unified "
          "social credit code (GB 32100)")
    shown = repr(holder_code) if len(repr(holder_code)) <= 60 else repr(holder_code)[:57] + "..."
    raise MalformedError(f"holder code: expected {expected} with a valid check, found {shown}")


class ProvinceStore:
    """Lookups and sampling over one node's world database."""

    def __init__(self, path: Path, *, code: str) -> None:
        self.path = Path(path)
        self.code = code
        hint = "; generate a world with `tongban world generate DIR`"
        if not self.path.is_file():
            raise ConfigError(f"no world database for {code} at {self.path}{hint}")
        uri = self.path.resolve().as_uri() + "?mode=rw"
        try:
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False,
                                         isolation_level=None)
        except sqlite3.Error as e:
            raise ConfigError(f"cannot open world database {self.path}: {e}{hint}") from e
        self._lock = threading.Lock()
        self._type_rowids: dict[str, array[int]] = {}
        try:
            self._conn.execute("PRAGMA busy_timeout=5000")
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'code'").fetchone()
        except sqlite3.Error as e:
            self._conn.close()
            raise ConfigError(f"{self.path} is not a tongban world database ({e}){hint}") from e
        found = row[0] if row else None
        if found != code:
            self._conn.close()
            raise ConfigError(
                f"world database {self.path}: expected node code {code}, found {found!r}"
            )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ProvinceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ lookups

    def _one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._conn.execute(sql, args).fetchone()
        return row

    def person(self, id_number: str) -> Person | None:
        """The resident with this ID number, or None."""
        row = self._one(f"SELECT {_PERSON_COLS} FROM persons WHERE id_number = ?", (id_number,))
        return Person(*row) if row else None

    def business(self, uscc: str) -> Business | None:
        """The business with this social credit code, or None."""
        row = self._one(f"SELECT {_BUSINESS_COLS} FROM businesses WHERE uscc = ?", (uscc,))
        return Business(*row) if row else None

    def certificate(self, holder_code: str, type_code: str) -> CertRecord | None:
        """The holder's certificate of this type: a valid (state 01) one if any,
        otherwise the most recently issued; None if the holder has none."""
        row = self._one(
            f"SELECT {_CERT_COLS} FROM ecerts WHERE holder_code = ? AND type_code = ? "
            "ORDER BY state = '01' DESC, issue_date DESC, rowid DESC LIMIT 1",
            (holder_code, type_code),
        )
        return CertRecord(*row) if row else None

    def certificate_by_id(self, identifier: str) -> CertRecord | None:
        """The certificate with this GB/T 36904 identifier, or None."""
        row = self._one(f"SELECT {_CERT_COLS} FROM ecerts WHERE identifier = ?", (identifier,))
        return CertRecord(*row) if row else None

    def meta(self, key: str) -> str:
        """A value of the world's ``meta`` table (e.g. issuer_code, issuer_name), "" if absent."""
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else ""

    def counts(self) -> dict[str, int]:
        """Row counts: ``{"persons", "businesses", "ecerts"}``."""
        with self._lock:
            return {
                t: int(self._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("persons", "businesses", "ecerts")
            }

    # ------------------------------------------------------------------ sampling

    def sample_persons(self, rng: random.Random, n: int) -> list[Person]:
        """``n`` persons drawn by rowid: distinct while ``n`` <= the table size, with
        repeats beyond it; ``[]`` for an empty table."""
        return self._sample("persons", _PERSON_COLS, Person, rng, n, None)

    def sample_certificates(
        self, rng: random.Random, n: int, *, type_code: str | None = None
    ) -> list[CertRecord]:
        """``n`` certificates (optionally of one type), drawn like :meth:`sample_persons`.

        Per-type sampling indexes the type's rowids on first use (one range scan of
        the identifier index); rows added later are not seen by that index.
        """
        rowids = None if type_code is None else self._rowids_of_type(type_code)
        return self._sample("ecerts", _CERT_COLS, CertRecord, rng, n, rowids)

    def _rowids_of_type(self, type_code: str) -> Sequence[int]:
        cached = self._type_rowids.get(type_code)
        if cached is None:
            prefix = f"{ECERT_OID_PREFIX}{type_code}."
            with self._lock:
                cur = self._conn.execute(
                    "SELECT rowid FROM ecerts WHERE identifier >= ? AND identifier < ? "
                    "AND type_code = ?", (prefix, prefix[:-1] + "/", type_code))
                cached = array("q", (r[0] for r in cur))
            self._type_rowids[type_code] = cached
        return cached

    def _sample(
        self,
        table: str,
        cols: str,
        factory: Callable[..., T],
        rng: random.Random,
        n: int,
        rowids: Sequence[int] | None,
    ) -> list[T]:
        if n <= 0:
            return []
        if rowids is None:
            with self._lock:
                top = self._conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
            population: Sequence[int] = range(1, (top or 0) + 1)
        else:
            population = rowids
        found: list[T] = []
        seen: set[int] = set()
        attempts = 0
        while len(found) < n and len(seen) < len(population) and attempts < 8:
            attempts += 1
            want = min(n - len(found), len(population) - len(seen))
            draw = [r for r in rng.sample(population, min(len(population), want + len(seen)))
                    if r not in seen][:want]
            seen.update(draw)
            found.extend(self._fetch_rowids(table, cols, factory, draw))
        if found and len(found) < n:  # more asked than rows: repeat
            found.extend(rng.choice(found) for _ in range(n - len(found)))
        return found

    def _fetch_rowids(
        self, table: str, cols: str, factory: Callable[..., T], rowids: list[int]
    ) -> list[T]:
        out: list[T] = []
        for i in range(0, len(rowids), _BATCH):
            chunk = rowids[i : i + _BATCH]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT rowid, {cols} FROM {table} WHERE rowid IN ({marks})", chunk
                ).fetchall()
            by_id = {r[0]: r[1:] for r in rows}
            out.extend(factory(*by_id[r]) for r in chunk if r in by_id)
        return out
