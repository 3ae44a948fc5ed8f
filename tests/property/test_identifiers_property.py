"""Properties: generated identifiers validate; any single substitution is detected."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from certs.identifiers import (
    ECERT_OID_PREFIX,
    USCC_ALPHABET,
    citizen_id_division,
    citizen_id_is_female,
    iso7064_mod37_36_check,
    is_valid_citizen_id,
    is_valid_ecert_identifier,
    is_valid_uscc,
    make_citizen_id,
    make_ecert_identifier,
    make_uscc,
    parse_ecert_identifier,
    uscc_division,
)
from exchange.geo import DIVISIONS, route_division

A36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
divisions6 = st.text("0123456789", min_size=6, max_size=6)
births = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
citizen_ids = st.builds(
    make_citizen_id, divisions6, births, st.integers(0, 999), female=st.booleans()
)
usccs = st.builds(
    make_uscc,
    divisions6,
    st.integers(0, 31**6 - 1),
    dept=st.sampled_from(USCC_ALPHABET),
    kind=st.sampled_from(USCC_ALPHABET),
)
ecert_ids = st.builds(
    make_ecert_identifier,
    st.text(A36, min_size=21, max_size=21),
    st.one_of(st.text(A36, min_size=18, max_size=18), divisions6),
    st.text(A36, min_size=1, max_size=40),
    st.text("0123456789", min_size=3, max_size=3),
)


@given(divisions6, births, st.integers(0, 999), st.booleans())
def test_generated_citizen_ids_validate(div: str, birth: date, seq: int, female: bool) -> None:
    cid = make_citizen_id(div, birth, seq, female=female)
    assert is_valid_citizen_id(cid)
    assert citizen_id_division(cid) == div
    assert citizen_id_is_female(cid) is female
    assert cid[6:14] == birth.strftime("%Y%m%d")
    assert abs(int(cid[14:17]) - seq) <= 1


@given(citizen_ids, st.data())
def test_citizen_single_substitution_detected(cid: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, 17))
    alphabet = "0123456789X" if i == 17 else "0123456789"
    c = data.draw(st.sampled_from(alphabet).filter(lambda ch: ch != cid[i]))
    assert not is_valid_citizen_id(cid[:i] + c + cid[i + 1 :])


@given(usccs)
def test_generated_usccs_validate(code: str) -> None:
    assert is_valid_uscc(code)
    assert len(code) == 18


@given(divisions6, st.integers(0, 31**6 - 1))
def test_uscc_division_round_trip(div: str, serial: int) -> None:
    assert uscc_division(make_uscc(div, serial)) == div


@given(usccs, st.data())
def test_uscc_single_substitution_detected(code: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, 17))
    c = data.draw(st.sampled_from(USCC_ALPHABET).filter(lambda ch: ch != code[i]))
    assert not is_valid_uscc(code[:i] + c + code[i + 1 :])


@given(ecert_ids)
def test_generated_ecert_ids_validate_and_round_trip(ident: str) -> None:
    assert is_valid_ecert_identifier(ident)
    assert str(parse_ecert_identifier(ident)) == ident


@given(ecert_ids, st.data())
def test_ecert_single_substitution_detected(ident: str, data: st.DataObject) -> None:
    positions = [
        i for i in range(len(ECERT_OID_PREFIX), len(ident)) if ident[i] != "."
    ]
    i = data.draw(st.sampled_from(positions))
    c = data.draw(st.sampled_from(A36).filter(lambda ch: ch != ident[i]))
    assert not is_valid_ecert_identifier(ident[:i] + c + ident[i + 1 :])


@given(st.text(A36, min_size=1, max_size=60), st.data())
def test_mod37_36_detects_every_substitution(s: str, data: st.DataObject) -> None:
    full = s + iso7064_mod37_36_check(s)
    i = data.draw(st.integers(0, len(full) - 1))
    c = data.draw(st.sampled_from(A36).filter(lambda ch: ch != full[i]))
    changed = full[:i] + c + full[i + 1 :]
    assert iso7064_mod37_36_check(changed[:-1]) != changed[-1]


@given(st.sampled_from(sorted(DIVISIONS)), st.data())
def test_world_divisions_route_home(node: str, data: st.DataObject) -> None:
    div = data.draw(st.sampled_from(DIVISIONS[node]))
    cid = make_citizen_id(div, date(1980, 1, 1), data.draw(st.integers(0, 999)), female=False)
    assert route_division(citizen_id_division(cid)) == node
