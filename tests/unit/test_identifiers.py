"""certs.identifiers against published examples and hand-checked values."""

from __future__ import annotations

from datetime import date

import pytest

from certs.identifiers import (
    EcertIdentifier,
    citizen_id_check,
    citizen_id_division,
    citizen_id_is_female,
    iso7064_mod37_36_check,
    is_valid_citizen_id,
    is_valid_ecert_identifier,
    is_valid_uscc,
    make_citizen_id,
    make_ecert_identifier,
    make_uscc,
    org_code_check,
    parse_ecert_identifier,
    uscc_check,
    uscc_division,
)
from exchange.errors import MalformedError

# Published examples.
CITIZEN_EXAMPLE = "11010519491231002X"  # the GB 11643 example
MOHURD_USCC = "11100000000013338W"  # 住建部, defining authority in ecert_types.csv
GB32100_EXAMPLE = "91350100M000100Y43"  # example widely quoted from GB 32100-2015
ECERT_EXAMPLE = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"


# ----------------------------------------------------------------- citizen ID


def test_citizen_example_checks_to_x() -> None:
    assert citizen_id_check("11010519491231002") == "X"
    assert is_valid_citizen_id(CITIZEN_EXAMPLE)
    assert citizen_id_division(CITIZEN_EXAMPLE) == "110105"
    assert citizen_id_is_female(CITIZEN_EXAMPLE)


def test_make_citizen_id_reproduces_example_and_adjusts_parity() -> None:
    assert make_citizen_id("110105", date(1949, 12, 31), 2, female=True) == CITIZEN_EXAMPLE
    male = make_citizen_id("110105", date(1949, 12, 31), 2, female=False)
    assert male == "110105194912310038"
    assert not citizen_id_is_female(male)
    assert make_citizen_id("659001", date(2000, 2, 29), 999, female=True) == "659001200002299985"
    assert make_citizen_id("440100", date(1990, 1, 1), 0, female=False)[14:17] == "001"


@pytest.mark.parametrize(
    "bad",
    [
        "11010519491231002x",  # lower-case check
        "110105194912310021",  # wrong check
        "11010519491231002",  # 17 characters
        "1101051949123100200",  # 19 characters
        "110105194902300025",  # 30 February
        "11010519491231X02X",
        "",
    ],
)
def test_invalid_citizen_ids(bad: str) -> None:
    assert not is_valid_citizen_id(bad)


def test_is_valid_citizen_id_of_non_string() -> None:
    assert not is_valid_citizen_id(110105194912310038)
    assert not is_valid_citizen_id(None)


def test_citizen_errors_name_expected_and_found() -> None:
    with pytest.raises(MalformedError, match=r"expected 17 ASCII digits, found '123'"):
        citizen_id_check("123")
    with pytest.raises(MalformedError, match=r"expected 18 characters.*found '110105194912310021'"):
        citizen_id_division("110105194912310021")
    with pytest.raises(MalformedError, match=r"expected 6 ASCII digits, found '11010'"):
        make_citizen_id("11010", date(2000, 1, 1), 1, female=False)
    with pytest.raises(MalformedError, match=r"expected 0..999, found 1000"):
        make_citizen_id("110105", date(2000, 1, 1), 1000, female=False)


# ----------------------------------------------------------------- USCC


def test_uscc_published_codes_validate() -> None:
    assert uscc_check("11100000000013338") == "W"
    assert is_valid_uscc(MOHURD_USCC)
    assert is_valid_uscc(GB32100_EXAMPLE)
    assert is_valid_uscc("11430000006122244L")  # issuer of the GB/T 36904 sample
    assert uscc_division(GB32100_EXAMPLE) == "350100"
    assert uscc_division(MOHURD_USCC) == "100000"


def test_org_code_check_gb11714_example() -> None:
    assert org_code_check("D2143569") == "X"
    assert org_code_check("M000100Y") == "4"  # inside the GB 32100 example


def test_make_uscc_exact_values() -> None:
    assert make_uscc("440300", 0) == "91440300MA00000077"
    assert make_uscc("440300", 31**6 - 1) == "91440300MAYYYYYY29"
    assert make_uscc("110105", 12345, dept="1", kind="2") == "12110105MB000CT757"
    assert uscc_division(make_uscc("659001", 7)) == "659001"


@pytest.mark.parametrize(
    "bad", ["11100000000013338X", "11100000000013338", "I1100000000013338W", "", "z" * 18]
)
def test_invalid_usccs(bad: str) -> None:
    assert not is_valid_uscc(bad)


def test_uscc_errors_name_expected_and_found() -> None:
    with pytest.raises(MalformedError, match=r"expected 17 characters of 0123.*found 'ABC'"):
        uscc_check("ABC")
    with pytest.raises(MalformedError, match=r"found '11100000000013338X'"):
        uscc_division("11100000000013338X")
    with pytest.raises(MalformedError, match=r"serial: expected 0\.\.887503680, found -1"):
        make_uscc("440300", -1)
    with pytest.raises(MalformedError, match=r"dept: expected one character .* found 'I'"):
        make_uscc("440300", 1, dept="I")


# ----------------------------------------------------------------- GB/T 36904


def test_ecert_example_checks_to_u() -> None:
    assert iso7064_mod37_36_check("11100000000013338W011" "11430000006122244L" "20230000403" "001") == "U"
    assert is_valid_ecert_identifier(ECERT_EXAMPLE)
    assert parse_ecert_identifier(ECERT_EXAMPLE) == EcertIdentifier(
        type_code="11100000000013338W011",
        issuer_code="11430000006122244L",
        serial="20230000403",
        version="001",
        check="U",
    )
    assert (
        make_ecert_identifier("11100000000013338W011", "11430000006122244L", "20230000403")
        == ECERT_EXAMPLE
    )


def test_ecert_round_trip() -> None:
    ident = make_ecert_identifier("SYN000000000000001001", "11440000MB00001D3Q", "202400000001")
    assert ident == (
        "1.2.156.3005.2.SYN000000000000001001.11440000MB00001D3Q.202400000001.001.L"
    )
    parsed = parse_ecert_identifier(ident)
    assert str(parsed) == ident
    assert parsed.check == "L"
    six_digit_issuer = make_ecert_identifier("11100000MB03271699022", "340100", "ABC", "002")
    assert parse_ecert_identifier(six_digit_issuer).issuer_code == "340100"


def test_ecert_wrong_check_names_expected_and_found() -> None:
    with pytest.raises(MalformedError, match=r"expected 'U', found 'V'"):
        parse_ecert_identifier(ECERT_EXAMPLE[:-1] + "V")
    assert not is_valid_ecert_identifier(ECERT_EXAMPLE[:-1] + "V")


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("1.2.156.3005.3.X.Y.Z.001.U", r"does not start with '1\.2\.156\.3005\.2\.'"),
        (ECERT_EXAMPLE.replace(".001.U", ".U"), r"4 dot-separated parts after the prefix, expected 5"),
        (ECERT_EXAMPLE.replace("W011.", "W01."), r"type code: expected 21 characters 0-9A-Z, found"),
        (ECERT_EXAMPLE.replace(".001.", ".1.") , r"version: expected 3 digits, found '1'"),
        (ECERT_EXAMPLE.replace("20230000403", "2023abc"), r"serial: expected 1-64 characters"),
        (ECERT_EXAMPLE[:-1] + "UU", r"check: expected 1 character 0-9A-Z, found 'UU'"),
    ],
)
def test_ecert_structure_errors(bad: str, why: str) -> None:
    with pytest.raises(MalformedError, match=why):
        parse_ecert_identifier(bad)
    assert not is_valid_ecert_identifier(bad)


def test_mod37_36_rejects_outside_alphabet() -> None:
    with pytest.raises(MalformedError, match=r"expected one or more characters 0-9A-Z, found 'ab'"):
        iso7064_mod37_36_check("ab")
    with pytest.raises(MalformedError):
        iso7064_mod37_36_check("")
