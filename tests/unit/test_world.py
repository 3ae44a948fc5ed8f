"""exchange.geo, nodes.world and nodes.store on a tiny generated world."""

from __future__ import annotations

import csv
import json
import math
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from certs.identifiers import (
    citizen_id_is_female,
    is_valid_citizen_id,
    is_valid_ecert_identifier,
    is_valid_uscc,
    parse_ecert_identifier,
    uscc_division,
)
from exchange.errors import ConfigError, MalformedError, RoutingError
from exchange.geo import (
    DIVISION_NAMES,
    DIVISIONS,
    HUB_CODE,
    PROVINCES,
    XPCC_POPULATION_2020,
    division_routes,
    great_circle_km,
    province,
    route_division,
)
from nodes.store import Business, Person, ProvinceStore, holder_division
from nodes.world import CERT_TYPES, WorldManifest, generate_world, issuer_for, load_world_manifest

#: The design repository's provinces.csv, copied into tests/data/ so a clone tests alone.
CSV = Path(__file__).resolve().parents[1] / "data" / "provinces.csv"
SHARED_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "provinces.csv"
CODES = ("110000", "440000", "660000")
SCALE = 2e-6
ID_CARD = "SYN000000000000001001"
LICENCE = "SYN000000000000003001"


def _census() -> list[dict[str, str]]:
    with CSV.open(encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["pop_2020_census"]]


def _dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
            for t in ("meta", "persons", "businesses", "ecerts")
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> WorldManifest:
    return generate_world(tmp_path_factory.mktemp("world"), scale=SCALE, seed=11, codes=CODES)


# ----------------------------------------------------------------- geo


def test_the_copy_of_provinces_csv_is_current() -> None:
    if not SHARED_CSV.exists():
        pytest.skip(f"no design repository beside this clone ({SHARED_CSV}): nothing to compare the copy with")
    assert CSV.read_bytes() == SHARED_CSV.read_bytes(), f"refresh {CSV} from {SHARED_CSV}"


def test_xpcc_carve_out_keeps_census_total() -> None:
    census = _census()
    assert len(census) == 31
    total = sum(int(r["pop_2020_census"]) for r in census)
    assert total == 1_409_778_724
    assert sum(p.population_2020 for p in PROVINCES) == total
    assert province("650000").population_2020 == 25_852_345 - XPCC_POPULATION_2020
    assert province("660000").population_2020 == XPCC_POPULATION_2020


def test_provinces_match_csv() -> None:
    census = _census()
    assert [p.code for p in PROVINCES] == [r["adcode6"] for r in census] + ["660000"]
    for p, r in zip(PROVINCES, census, strict=False):
        assert (p.name_zh, p.short_zh, p.abbr_zh, p.prefix2) == (
            r["name_zh"], r["short_name_zh"], r["abbr_zh"], r["gbt2260_code"])
        if p.code != "650000":
            assert p.population_2020 == int(r["pop_2020_census"])
    assert province("440000").pinyin == "Guangdong"
    assert province("660000").capital_zh == "乌鲁木齐"


def test_routing() -> None:
    assert route_division("440300") == "440000"
    assert route_division("110105") == "110000"
    assert route_division("650100") == "650000"
    assert route_division("659001") == "660000"
    assert route_division("659012") == "660000"
    assert route_division("659099") == "650000"  # not an XPCC city: Xinjiang
    routes = division_routes()
    assert routes["11"] == "110000" and routes["65"] == "650000" and routes["659004"] == "660000"
    assert HUB_CODE not in routes.values()
    for node, divs in DIVISIONS.items():
        assert divs, node
        for d in divs:
            assert route_division(d) == node
            assert d in DIVISION_NAMES


@pytest.mark.parametrize("bad", ["999999", "000000", "4403", "44030a", ""])
def test_route_errors_name_the_division(bad: str) -> None:
    with pytest.raises(RoutingError, match=f"division {bad!r}"):
        route_division(bad)


def test_unknown_province() -> None:
    with pytest.raises(ConfigError, match=r"unknown province node code '999999'.*110000"):
        province("999999")


def test_great_circle() -> None:
    assert great_circle_km(0, 0, 0, 90) == pytest.approx(6371.0 * math.pi / 2, rel=1e-12)
    assert great_circle_km(39.9, 116.4, 39.9, 116.4) == 0.0
    bj_sh = great_circle_km(39.90, 116.40, 31.23, 121.47)
    assert bj_sh == pytest.approx(1067.08, abs=0.01)
    assert great_circle_km(31.23, 121.47, 39.90, 116.40) == pytest.approx(bj_sh)


# ----------------------------------------------------------------- world


def test_files_and_manifest(world: WorldManifest) -> None:
    d = world.directory
    assert world.codes == CODES
    for code in CODES:
        assert (d / f"{code}.sqlite").is_file()
    raw = json.loads((d / "world.json").read_text(encoding="utf-8"))
    assert raw["schema_version"] == 1 and raw["generator_version"] == 1
    assert raw["scale"] == SCALE and raw["seed"] == 11 and raw["codes"] == list(CODES)
    assert raw["counts"]["110000"]["persons"] == 44  # round(21_893_095 * 2e-6)
    assert raw["counts"]["440000"]["persons"] == 252
    assert raw["counts"]["660000"]["persons"] == 6  # round(6.5): banker's rounding
    assert raw["counts"]["440000"]["businesses"] == 6
    assert raw["issuers"]["440000"] == {"uscc": issuer_for("440000")[0], "name": "广东省电子证照签发机构"}
    assert {t["code"] for t in raw["cert_types"]} == {t.code for t in CERT_TYPES}
    assert load_world_manifest(d) == world


def test_rows_are_valid_and_route_home(world: WorldManifest) -> None:
    for code in CODES:
        issuer = world.issuers[code]["uscc"]
        assert is_valid_uscc(issuer) and route_division(uscc_division(issuer)) == code
        with sqlite3.connect(world.db_path(code)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            persons = conn.execute("SELECT * FROM persons").fetchall()
            ids = {p[0] for p in persons}
            for idn, name, sex, birth, division, photo in persons:
                assert is_valid_citizen_id(idn), idn
                assert route_division(idn[:6]) == code and division == idn[:6]
                assert sex == ("F" if citizen_id_is_female(idn) else "M")
                assert birth.replace("-", "") == idn[6:14]
                assert 2 <= len(name) <= 3 and len(photo) == 64
            businesses = conn.execute("SELECT * FROM businesses").fetchall()
            for uscc, name, division, rep in businesses:
                assert is_valid_uscc(uscc) and uscc_division(uscc) == division
                assert route_division(division) == code
                assert rep in ids and name.endswith("有限公司")
            holders = ids | {b[0] for b in businesses}
            certs = conn.execute("SELECT * FROM ecerts").fetchall()
            assert len(certs) >= len(persons) + len(businesses)
            for row in certs:
                ident, tcode, _, holder, htype, _, icode, iname, issued, vfrom, vto, state = row[:12]
                assert is_valid_ecert_identifier(ident), ident
                assert parse_ecert_identifier(ident).type_code == tcode
                assert holder in holders and htype == ("111" if holder in ids else "001")
                assert route_division(holder_division(holder, htype)) == code
                assert (icode, iname) == issuer_for(code)
                assert vfrom == issued and (vto == "" or vto > issued)
                assert state in {"01", "02", "04", "05"} and row[12:15] == ("01", "", row[14])
                assert json.loads(row[15])["cert_number"]
            if code == "660000":
                assert all(p[4].startswith("6590") for p in persons)


def test_every_person_has_an_id_card(world: WorldManifest) -> None:
    with sqlite3.connect(world.db_path("440000")) as conn:
        missing = conn.execute(
            "SELECT count(*) FROM persons WHERE id_number NOT IN "
            "(SELECT holder_code FROM ecerts WHERE type_code = ?)", (ID_CARD,)).fetchone()[0]
        licences = conn.execute(
            "SELECT count(*) FROM ecerts WHERE type_code = ?", (LICENCE,)).fetchone()[0]
    assert missing == 0
    assert licences == world.counts["440000"]["businesses"]


def test_counts_match_manifest_and_store(world: WorldManifest) -> None:
    for code in CODES:
        with ProvinceStore(world.db_path(code), code=code) as store:
            assert store.counts() == dict(world.counts[code])


def test_deterministic_for_a_seed(world: WorldManifest, tmp_path: Path) -> None:
    again = generate_world(tmp_path / "a", scale=SCALE, seed=11, codes=CODES[::-1], workers=2)
    assert again == world
    for code in CODES:
        assert _dump(again.db_path(code)) == _dump(world.db_path(code))
    other = generate_world(tmp_path / "b", scale=SCALE, seed=12, codes=("110000",))
    assert _dump(other.db_path("110000"))["persons"] != _dump(world.db_path("110000"))["persons"]


def test_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown province node code '990000'"):
        generate_world(tmp_path, scale=SCALE, seed=1, codes=("990000",))
    with pytest.raises(ConfigError, match=r"scale: expected a number in \(0, 1\], found 0"):
        generate_world(tmp_path, scale=0, seed=1)
    with pytest.raises(ConfigError, match="seed: expected an integer, found '1'"):
        generate_world(tmp_path, scale=SCALE, seed="1")  # type: ignore[arg-type]


def test_load_manifest_errors(world: WorldManifest, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no world manifest at .*world\.json.*tongban world generate"):
        load_world_manifest(tmp_path)
    (tmp_path / "world.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not readable JSON"):
        load_world_manifest(tmp_path)
    (tmp_path / "world.json").write_text('{"schema_version": 1}', encoding="utf-8")
    with pytest.raises(ConfigError, match="bad or missing"):
        load_world_manifest(tmp_path)
    shutil.copy(world.directory / "world.json", tmp_path / "world.json")
    with pytest.raises(ConfigError, match=r"missing node database .*110000\.sqlite"):
        load_world_manifest(tmp_path)


# ----------------------------------------------------------------- store


def test_store_lookups_hit_and_miss(world: WorldManifest) -> None:
    with ProvinceStore(world.db_path("440000"), code="440000") as store:
        person = store.sample_persons(random.Random(1), 1)[0]
        assert isinstance(person, Person)
        assert store.person(person.id_number) == person
        assert store.person("11010519491231002X") is None
        card = store.certificate(person.id_number, ID_CARD)
        assert card is not None and card.holder_code == person.id_number
        assert card.type_name == "居民身份证" and card.fields["cert_number"] == person.id_number
        assert store.certificate_by_id(card.identifier) == card
        assert store.certificate_by_id(card.identifier[:-1] + "0") is None
        assert store.certificate(person.id_number, "SYN999999999999999999") is None
        rep_business = store.sample_certificates(random.Random(2), 1, type_code=LICENCE)[0]
        business = store.business(rep_business.holder_code)
        assert isinstance(business, Business) and business.name == rep_business.holder_name
        assert store.person(business.legal_rep_id) is not None
        assert store.business("91440300MA00000077") is None


def test_store_prefers_valid_certificate(world: WorldManifest, tmp_path: Path) -> None:
    db = tmp_path / "440000.sqlite"
    shutil.copy(world.db_path("440000"), db)
    with ProvinceStore(db, code="440000") as store:
        person = store.sample_persons(random.Random(3), 1)[0]
        current = store.certificate(person.id_number, ID_CARD)
        assert current is not None
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE ecerts SET state = '01' WHERE identifier = ?", (current.identifier,))
        row = list(conn.execute("SELECT * FROM ecerts WHERE identifier = ?",
                                (current.identifier,)).fetchone())
        row[0], row[8], row[11] = "1.2.156.3005.2.X.Y.Z.001.0", "2024-12-31", "05"
        conn.execute(f"INSERT INTO ecerts VALUES ({','.join('?' * 16)})", row)
    with ProvinceStore(db, code="440000") as store:
        found = store.certificate(person.id_number, ID_CARD)
        assert found is not None and found.identifier == current.identifier


def test_store_sampling(world: WorldManifest) -> None:
    with ProvinceStore(world.db_path("440000"), code="440000") as store:
        a = store.sample_persons(random.Random(5), 20)
        assert a == store.sample_persons(random.Random(5), 20)
        assert len({p.id_number for p in a}) == 20
        every = store.sample_persons(random.Random(5), 300)
        assert len(every) == 300 and len({p.id_number for p in every}) == 252
        cards = store.sample_certificates(random.Random(6), 50, type_code=ID_CARD)
        assert len(cards) == 50 and {c.type_code for c in cards} == {ID_CARD}
        assert store.sample_certificates(random.Random(6), 5, type_code="SYN0") == []
        assert store.sample_persons(random.Random(6), 0) == []


def test_store_open_errors(world: WorldManifest, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no world database for 440000 at .*tongban world generate"):
        ProvinceStore(tmp_path / "440000.sqlite", code="440000")
    with pytest.raises(ConfigError, match="expected node code 110000, found '440000'"):
        ProvinceStore(world.db_path("440000"), code="110000")
    (tmp_path / "x.sqlite").write_bytes(b"")
    with pytest.raises(ConfigError, match="not a tongban world database"):
        ProvinceStore(tmp_path / "x.sqlite", code="440000")


def test_holder_division() -> None:
    assert holder_division("11010519491231002X") == "110105"
    assert holder_division("91350100M000100Y43") == "350100"
    assert holder_division("91350100M000100Y43", "001") == "350100"
    with pytest.raises(MalformedError, match=r"expected an 18-character citizen ID number .* found '123'"):
        holder_division("123")
    with pytest.raises(MalformedError, match=r"expected an 18-character unified social credit code"):
        holder_division("11010519491231002X", "001")
