"""A holder ID that is right but for its check character: a client's typo, refused as
INVALID_ARGUMENT naming the check character expected and found, not as a holder that
no node serves (NOT_FOUND)."""

from __future__ import annotations

from datetime import date

import grpc
import pytest

from certs.identifiers import make_citizen_id, make_uscc
from exchange.directory import DirectoryView
from exchange.errors import HeaderError, RoutingError
from nodes._status import status_of
from tongban.v1 import directory_pb2

ID = make_citizen_id("440100", date(1940, 7, 7), 52, female=True)  # 440100194007070526
USCC = make_uscc("440300", 12345)


def _directory() -> DirectoryView:
    pb = directory_pb2.Directory(version=3)
    pb.division_routes.add(prefix="44", node="440000")
    return DirectoryView(pb, None)  # type: ignore[arg-type]  # routing needs no envelope


def _other(check: str, alphabet: str) -> str:
    return next(c for c in alphabet if c != check)


def test_a_valid_id_routes_home() -> None:
    assert _directory().route_subject(ID, "") == "440000"
    assert _directory().route_subject(USCC, "") == "440000"


def test_a_citizen_id_with_a_wrong_check_digit_names_the_digit_expected_and_found() -> None:
    bad = ID[:17] + _other(ID[17], "0123456789X")
    with pytest.raises(HeaderError) as e:
        _directory().route_subject(bad, "")
    assert str(e.value) == f"holder {bad!r}: 公民身份号码 check digit: expected {ID[17]}, found {bad[17]}"
    assert (status_of(e.value), e.value.code) == (grpc.StatusCode.INVALID_ARGUMENT, "bad_header")


def test_a_social_credit_code_with_a_wrong_check_character_names_the_character_expected_and_found() -> None:
    bad = USCC[:17] + _other(USCC[17], "ABCDEFGHJKLMNPQRTUWXY")
    with pytest.raises(HeaderError) as e:
        _directory().route_subject(bad, "")
    assert str(e.value) == f"holder {bad!r}: 统一社会信用代码 check character: expected {USCC[17]}, found {bad[17]}"


@pytest.mark.parametrize("holder", ["123", "440100194013070526", "", "44010019400707052６"])
def test_what_is_no_id_at_all_still_cannot_be_routed(holder: str) -> None:
    # too short; a 13th month (no check digit would make it an ID); empty; a full-width digit
    with pytest.raises(RoutingError) as e:
        _directory().route_subject(holder, "")
    assert str(e.value) == (f"cannot route by holder {holder!r}: expected an 18-digit 公民身份号码 or "
                            "统一社会信用代码")
    assert status_of(e.value) == grpc.StatusCode.NOT_FOUND
