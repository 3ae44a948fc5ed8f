"""Synthetic worlds: persons, businesses and e-certificates, one SQLite file per node.

``generate_world(out_dir, scale=1e-4, seed=7)`` writes ``out_dir/<code>.sqlite`` for
each provincial node and ``out_dir/world.json`` (:class:`WorldManifest`). Everything
is synthetic: valid-format identifiers, made-up names, no real person or company.

Determinism: every province draws from ``random.Random(f"{seed}:{code}")`` (string
seeding is stable across runs and processes; ``hash()`` is never used), so the same
``(scale, seed, codes)`` gives identical table contents, with or without workers.

Dates are relative to :data:`REFERENCE_DATE`: certificates in state ``01`` are still
within validity on it; ``valid_to`` is ``""`` for long-term (长期) certificates.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from certs.identifiers import make_uscc, mod37_36_finish, mod37_36_prefix_state
from exchange.errors import ConfigError
from exchange.geo import DIVISION_NAMES, DIVISIONS, PROVINCES, province
from nodes.world_catalogue import (
    _SURNAME_CUM,
    BUSINESS_PLAN,
    CERT_TYPES,
    FEMALE_GIVEN,
    INDUSTRIES,
    MALE_GIVEN,
    PERSON_PLAN,
    SURNAMES,
    TRADE_CHARS,
    CertType,
    IssueSpec,
)

__all__ = [
    "CERT_TYPES",
    "GENERATOR_VERSION",
    "REFERENCE_DATE",
    "SCHEMA_VERSION",
    "CertType",
    "WorldManifest",
    "generate_world",
    "issuer_for",
    "load_world_manifest",
]

SCHEMA_VERSION = 1
GENERATOR_VERSION = 1
REFERENCE_DATE = date(2025, 1, 1)
"""The world's "today": issue dates fall before it; state-01 certificates are valid on it."""

_BIRTH_FIRST = date(1940, 1, 1).toordinal()
_BIRTH_LAST = date(2005, 12, 31).toordinal()
_REF = REFERENCE_DATE.toordinal()
_CID_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_PARALLEL_MIN_PERSONS = 20_000
_BIRTH_CERT_SINCE = date(1996, 1, 1).toordinal()
_SUSPENDABLE = frozenset({"机动车驾驶证", "机动车行驶证", "营业执照", "危险化学品经营许可证",
                          "建筑施工特种作业人员操作资格证书", "二级建造师(执业资格/注册)证书"})
_MUNICIPALITIES = ("11", "12", "31", "50")

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE persons (
    id_number TEXT PRIMARY KEY, name TEXT NOT NULL, sex TEXT NOT NULL,
    birth_date TEXT NOT NULL, division TEXT NOT NULL, photo_sha256 TEXT NOT NULL);
CREATE TABLE businesses (
    uscc TEXT PRIMARY KEY, name TEXT NOT NULL, division TEXT NOT NULL,
    legal_rep_id TEXT NOT NULL);
CREATE TABLE ecerts (
    identifier TEXT PRIMARY KEY, type_code TEXT NOT NULL, type_name TEXT NOT NULL,
    holder_code TEXT NOT NULL, holder_code_type TEXT NOT NULL, holder_name TEXT NOT NULL,
    issuer_code TEXT NOT NULL, issuer_name TEXT NOT NULL, issue_date TEXT NOT NULL,
    valid_from TEXT NOT NULL, valid_to TEXT NOT NULL, state TEXT NOT NULL,
    operate_type TEXT NOT NULL, associated_id TEXT NOT NULL, area_code TEXT NOT NULL,
    fields_json TEXT NOT NULL);
"""
INDEXES = "CREATE INDEX ecerts_holder_type ON ecerts (holder_code, type_code);"


@dataclass(frozen=True, slots=True)
class WorldManifest:
    """``world.json``: what was generated, with what parameters, and row counts.

    ``directory`` is where the manifest lives (not stored in the JSON).
    """

    schema_version: int
    scale: float
    seed: int
    codes: tuple[str, ...]
    counts: Mapping[str, Mapping[str, int]]
    cert_types: tuple[Mapping[str, Any], ...]
    issuers: Mapping[str, Mapping[str, str]]
    generator_version: int
    directory: Path = field(default=Path("."), compare=False)

    def db_path(self, code: str) -> Path:
        """The SQLite file of node ``code``."""
        return self.directory / f"{code}.sqlite"

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``world.json``."""
        return {
            "schema_version": self.schema_version,
            "scale": self.scale,
            "seed": self.seed,
            "codes": list(self.codes),
            "counts": {c: dict(v) for c, v in self.counts.items()},
            "cert_types": [dict(t) for t in self.cert_types],
            "issuers": {c: dict(v) for c, v in self.issuers.items()},
            "generator_version": self.generator_version,
        }


def issuer_for(code: str) -> tuple[str, str]:
    """(social credit code, name) of node ``code``'s synthetic issuing authority."""
    p = province(code)
    uscc = make_uscc(p.code, int(p.prefix2), dept="1", kind="1")
    return uscc, f"{p.name_zh}电子证照签发机构"


# --------------------------------------------------------------------------- dates

_ISO: dict[int, str] = {}


def _iso(o: int) -> str:
    s = _ISO.get(o)
    if s is None:
        s = _ISO[o] = date.fromordinal(o).isoformat()
    return s


def _plus_years(o: int, years: int) -> int:
    d = date.fromordinal(o)
    try:
        return d.replace(year=d.year + years).toordinal()
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28).toordinal()


# --------------------------------------------------------------------------- persons

Holder = tuple[str, str, str, int]
"""(holder code, holder name, division, birth or founding date ordinal)."""


def _persons(rng: random.Random, code: str, n: int, seed: int) -> list[tuple[str, ...]]:
    """Distinct valid ID numbers (sorted), names, sex, birth date, photo digest."""
    divisions = sorted(DIVISIONS[code])
    ndays = _BIRTH_LAST - _BIRTH_FIRST + 1
    per_div = ndays * 1000
    capacity = len(divisions) * per_div
    if n > capacity // 2:
        raise ConfigError(
            f"{code}: {n} persons do not fit in {len(divisions)} divisions x "
            f"{ndays} birth dates x 1000 order codes; expected a smaller scale"
        )
    picks = sorted(rng.sample(range(capacity), n))
    div_sum = [sum(int(c) * w for c, w in zip(d, _CID_W[:6])) for d in divisions]
    day_compact, day_sum = [], []
    for o in range(_BIRTH_FIRST, _BIRTH_LAST + 1):
        ymd = date.fromordinal(o).strftime("%Y%m%d")
        day_compact.append(ymd)
        day_sum.append(sum(int(c) * w for c, w in zip(ymd, _CID_W[6:14])))
    seq_str = [f"{i:03d}" for i in range(1000)]
    seq_sum = [sum(int(c) * w for c, w in zip(q, _CID_W[14:])) for q in seq_str]
    family = rng.choices(SURNAMES, cum_weights=_SURNAME_CUM, k=n)
    rand = rng.random
    mg, fg = MALE_GIVEN, FEMALE_GIVEN
    rows = []
    sha = hashlib.sha256
    for i, x in enumerate(picks):
        di, rem = divmod(x, per_div)
        day, seq = divmod(rem, 1000)
        idn = divisions[di] + day_compact[day] + seq_str[seq] + \
            "10X98765432"[(div_sum[di] + day_sum[day] + seq_sum[seq]) % 11]
        female = not seq & 1
        pool = fg if female else mg
        given = pool[int(rand() * len(pool))]
        if rand() < 0.8:
            given += pool[int(rand() * len(pool))]
        photo = sha(f"tongban-photo:{seed}:{idn}".encode()).hexdigest()
        rows.append((idn, family[i] + given, "F" if female else "M",
                     _iso(_BIRTH_FIRST + day), divisions[di], photo))
    return rows


def _businesses(
    rng: random.Random, code: str, n: int, persons: list[tuple[str, ...]]
) -> list[tuple[str, str, str, str]]:
    """Businesses registered in the node's divisions; legal rep is a local person."""
    p = province(code)
    divisions = sorted(DIVISIONS[code])
    rand = rng.random
    rows = []
    for serial in range(n):
        div = divisions[int(rand() * len(divisions))]
        city = p.short_zh if div[:2] in _MUNICIPALITIES else DIVISION_NAMES[div][:-1]
        trade = TRADE_CHARS[int(rand() * len(TRADE_CHARS))] + \
            TRADE_CHARS[int(rand() * len(TRADE_CHARS))]
        name = f"{city}{trade}{INDUSTRIES[int(rand() * len(INDUSTRIES))]}有限公司"
        rep = persons[int(rand() * len(persons))][0]
        rows.append((make_uscc(div, serial), name, div, rep))
    rows.sort()
    return rows


# --------------------------------------------------------------------------- certificates


def _cert_number(kind: str, holder: str, seq: int, year: int, area: str, abbr: str) -> str:
    """照面编号 (face number), distinct from the GB/T 36904 identifier."""
    if kind == "holder":
        return holder
    if kind == "marriage":
        return f"J{area}-{year}-{seq:06d}"
    if kind == "passport":
        return f"E{seq:08d}"
    if kind == "estate":
        return f"{abbr}({year}){DIVISION_NAMES[area]}不动产权第{seq:07d}号"
    if kind == "plate":
        return f"{abbr}A{seq % 100000:05d}"
    return f"{abbr}{year}{seq:07d}"


def _chosen(rand: Any, n: int, prob: float) -> Iterator[int]:
    """Indices in ``range(n)``, each kept with probability ``prob`` (geometric skips)."""
    if prob >= 1.0:
        yield from range(n)
        return
    log_q = math.log1p(-prob)
    i = -1
    while True:
        i += 1 + int(math.log(1.0 - rand()) / log_q)
        if i >= n:
            return
        yield i


def _plan_issues(
    rng: random.Random, group: int, holders: Sequence[Holder], spec: IssueSpec
) -> list[tuple[int, int, int, int, str]]:
    """(issue ordinal, group, holder index, validity years, state) for one holder list."""
    rand = rng.random
    plan = []
    suspendable = spec.type_name in _SUSPENDABLE
    for hi in _chosen(rand, len(holders), spec.probability):
        birth = holders[hi][3]
        years = spec.validity_years
        if spec.rule == "id_card":  # validity by age at issue: <26 10y, <46 20y, else 长期
            age = (_REF - birth) / 365.25
            years, min_age = (10, 16) if age < 26 else (20, 26) if age < 46 else (0, 46)
            lo = max(birth + int(min_age * 365.25) + 1, _REF - 30 * 365)
        elif spec.rule == "birth":  # 出生医学证明 exists since 1996
            if birth < _BIRTH_CERT_SINCE:
                continue
            lo = birth + 1
        elif years:
            lo = max(birth + spec.min_age * 366, _REF - (years - 1) * 365)
        else:
            lo = max(birth + spec.min_age * 366, _REF - spec.lookback_years * 365)
        if lo >= _REF:
            continue  # too young
        if spec.rule == "birth":
            issue = lo + int(rand() * 30)
        else:
            issue = lo + int(rand() * (_REF - lo))
        r = rand()  # states: 95% 01 有效, 2% 05 失效, 2% 04 注销, 1% 02 暂扣 (else 01)
        state = "01" if r < 0.95 else "05" if r < 0.97 else "04" if r < 0.99 else \
            "02" if suspendable else "01"
        if state == "05" and years:  # 失效: issued one validity period earlier
            issue = _plus_years(issue, -years)
        plan.append((issue, group, hi, years, state))
    return plan


# _FINISH[state][nn]: check character after feeding "nn" + "001" (last two serial
# digits and the version) in MOD 37,36 state ``state``.
_FINISH = tuple(
    tuple(mod37_36_finish(p, f"{nn:02d}001") for nn in range(100)) for p in range(37)
)


def _cert_rows(
    rng: random.Random,
    code: str,
    issuer: tuple[str, str],
    ctype: CertType,
    groups: Sequence[tuple[IssueSpec, Sequence[Holder], str]],
) -> list[tuple[str, ...]]:
    """All rows of one type, serials numbered in issue-date order (so sorted ids)."""
    abbr = province(code).abbr_zh
    issuer_code, issuer_name = issuer
    state0 = mod37_36_prefix_state(ctype.code + issuer_code)
    prefix = f"1.2.156.3005.2.{ctype.code}.{issuer_code}."
    plan = []
    for gi, (spec, holders, _) in enumerate(groups):
        plan.extend(_plan_issues(rng, gi, holders, spec))
    plan.sort()
    rand = rng.random
    iso, iso_get = _iso, _ISO.get
    finish = _FINISH
    hundreds: dict[str, int] = {}  # year + seq // 100 -> MOD 37,36 state
    tcode, tname = ctype.code, ctype.name_zh
    rows = []
    for seq, (issue, gi, hi, years, state) in enumerate(plan, 1):
        spec, holders, code_type = groups[gi]
        holder, name, area, _ = holders[hi]
        issued = iso_get(issue) or iso(issue)
        year = issued[:4]
        head = f"{year}{seq // 100:06d}"
        st = hundreds.get(head)
        if st is None:
            st = hundreds[head] = mod37_36_prefix_state(head, state0)
        last2 = seq % 100
        ident = f"{prefix}{head}{last2:02d}.001.{finish[st][last2]}"
        number = holder if spec.number == "holder" else \
            _cert_number(spec.number, holder, seq, int(year), area, abbr)
        fields = f'{{"cert_number":"{number}","holder_name":"{name}"'
        for key, values in spec.extra:
            fields += f',"{key}":"{values[int(rand() * len(values))]}"'
        if years:
            to = f"{int(year) + years}{issued[4:]}"
            if to.endswith("-02-29"):
                to = to[:-2] + "28"
        else:
            to = ""
        rows.append((ident, tcode, tname, holder, code_type, name, issuer_code,
                     issuer_name, issued, issued, to, state, "01", "", area, fields + "}"))
    return rows


# --------------------------------------------------------------------------- one province


def _generate_province(out_dir: str, code: str, scale: float, seed: int) -> dict[str, int]:
    """Write ``out_dir/<code>.sqlite``; returns its row counts. Runs in a worker too."""
    rng = random.Random(f"{seed}:{code}")
    n = max(1, round(province(code).population_2020 * scale))
    persons = _persons(rng, code, n, seed)
    businesses = _businesses(rng, code, max(1, round(n / 40)), persons)
    issuer = issuer_for(code)
    p_holders = [(r[0], r[1], r[4], date.fromisoformat(r[3]).toordinal()) for r in persons]
    founded = _REF - 30 * 365
    b_holders = [(r[0], r[1], r[2], founded) for r in businesses]
    by_type: dict[str, list[tuple[IssueSpec, Sequence[Holder], str]]] = {}
    for spec in PERSON_PLAN:
        by_type.setdefault(spec.type_name, []).append((spec, p_holders, "111"))
    for spec in BUSINESS_PLAN:
        by_type.setdefault(spec.type_name, []).append((spec, b_holders, "001"))

    final = Path(out_dir) / f"{code}.sqlite"
    tmp = final.with_name(final.name + ".tmp")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        stale.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    n_certs = 0
    try:
        conn.execute("PRAGMA page_size=8192")
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-131072")
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        meta = {"schema_version": SCHEMA_VERSION, "generator_version": GENERATOR_VERSION,
                "code": code, "seed": seed, "scale": repr(scale),
                "issuer_code": issuer[0], "issuer_name": issuer[1]}
        conn.executemany("INSERT INTO meta VALUES (?, ?)",
                         [(k, str(v)) for k, v in meta.items()])
        conn.executemany("INSERT INTO persons VALUES (?,?,?,?,?,?)", persons)
        conn.executemany("INSERT INTO businesses VALUES (?,?,?,?)", businesses)
        for ctype in sorted(CERT_TYPES, key=lambda t: t.code):
            if ctype.name_zh not in by_type:
                continue
            rows = _cert_rows(rng, code, issuer, ctype, by_type[ctype.name_zh])
            conn.executemany(f"INSERT INTO ecerts VALUES ({','.join('?' * 16)})", rows)
            n_certs += len(rows)
        conn.execute("COMMIT")
        conn.execute(INDEXES)
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    os.replace(tmp, final)
    for stale in (Path(f"{final}-wal"), Path(f"{final}-shm")):
        stale.unlink(missing_ok=True)
    return {"persons": len(persons), "businesses": len(businesses), "ecerts": n_certs}


# --------------------------------------------------------------------------- the world


def generate_world(
    out_dir: Path,
    *,
    scale: float,
    seed: int,
    codes: Sequence[str] | None = None,
    workers: int | None = None,
) -> WorldManifest:
    """Generate one SQLite file per node code and ``world.json`` under ``out_dir``.

    ``scale`` is persons per census resident (1e-4 -> about 141 thousand persons in
    all); every province gets at least one person and one business. ``workers``
    defaults to up to 2 processes when the world is large, 1 (in-process) otherwise.
    """
    if not isinstance(scale, (int, float)) or not math.isfinite(scale) or not 0 < scale <= 1:
        raise ConfigError(f"scale: expected a number in (0, 1], found {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed: expected an integer, found {seed!r}")
    wanted = list(dict.fromkeys(codes)) if codes is not None else [p.code for p in PROVINCES]
    for c in wanted:
        province(c)  # ConfigError for unknown codes
    if not wanted:
        raise ConfigError("codes: expected at least one province node code, found none")
    order = [p.code for p in PROVINCES]
    wanted.sort(key=order.index)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    sizes = {c: max(1, round(province(c).population_2020 * scale)) for c in wanted}
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if sum(sizes.values()) >= _PARALLEL_MIN_PERSONS else 1
    counts: dict[str, dict[str, int]] = {}
    if workers <= 1 or len(wanted) == 1:
        for c in wanted:
            counts[c] = _generate_province(str(out), c, float(scale), seed)
    else:
        biggest_first = sorted(wanted, key=lambda c: -sizes[c])
        # fork: no re-import of __main__ and no start-up cost; spawn if threads run.
        method = "fork" if "fork" in get_all_start_methods() and \
            threading.active_count() == 1 else "spawn"
        with ProcessPoolExecutor(workers, mp_context=get_context(method)) as pool:
            futures = {c: pool.submit(_generate_province, str(out), c, float(scale), seed)
                       for c in biggest_first}
            for c in biggest_first:
                counts[c] = futures[c].result()

    manifest = WorldManifest(
        schema_version=SCHEMA_VERSION,
        scale=float(scale),
        seed=seed,
        codes=tuple(wanted),
        counts={c: counts[c] for c in wanted},
        cert_types=tuple(t.to_json() for t in CERT_TYPES),
        issuers={c: dict(zip(("uscc", "name"), issuer_for(c), strict=True)) for c in wanted},
        generator_version=GENERATOR_VERSION,
        directory=out,
    )
    tmp = out / "world.json.tmp"
    tmp.write_text(json.dumps(manifest.to_json(), ensure_ascii=False, indent=2) + "\n",
                   encoding="utf-8")
    os.replace(tmp, out / "world.json")
    return manifest


def load_world_manifest(directory: Path) -> WorldManifest:
    """Read ``directory/world.json``; ConfigError naming the path if missing or bad."""
    path = Path(directory) / "world.json"
    hint = f"; generate one with `tongban world generate {directory}`"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no world manifest at {path}{hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"world manifest {path} is not readable JSON ({e}){hint}") from e
    try:
        if raw["schema_version"] != SCHEMA_VERSION:
            raise ConfigError(
                f"world manifest {path}: expected schema_version {SCHEMA_VERSION}, "
                f"found {raw['schema_version']!r}{hint}"
            )
        codes = tuple(str(c) for c in raw["codes"])
        for c in codes:
            province(c)
        manifest = WorldManifest(
            schema_version=int(raw["schema_version"]),
            scale=float(raw["scale"]),
            seed=int(raw["seed"]),
            codes=codes,
            counts={c: {k: int(v) for k, v in raw["counts"][c].items()} for c in codes},
            cert_types=tuple(dict(t) for t in raw["cert_types"]),
            issuers={c: {"uscc": str(raw["issuers"][c]["uscc"]),
                         "name": str(raw["issuers"][c]["name"])} for c in codes},
            generator_version=int(raw["generator_version"]),
            directory=Path(directory),
        )
    except ConfigError as e:
        raise ConfigError(f"world manifest {path}: {e}") from e
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ConfigError(
            f"world manifest {path}: expected keys schema_version, scale, seed, codes, "
            f"counts, cert_types, issuers, generator_version; bad or missing {e}{hint}"
        ) from e
    for c in codes:
        if not manifest.db_path(c).is_file():
            raise ConfigError(f"world {directory}: missing node database {manifest.db_path(c)}{hint}")
    return manifest

