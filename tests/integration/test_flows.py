"""Each flow's success and failure paths, through the hub, verified end to end."""

from __future__ import annotations

import random
from typing import Any

import pytest

from nodes.store import ProvinceStore
from tests.integration.conftest import Country
from tongban.v1 import header_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration


def submit(country: Country, origin: str, **kw: Any) -> services_pb2.SubmitResponse:
    with country.window_channel(origin) as ch:
        return services_pb2_grpc.WindowServiceStub(ch).Submit(
            services_pb2.SubmitRequest(purpose="跨省通办 测试", **kw), timeout=10)


def _people(country: Country, code: str, n: int = 40) -> list[Any]:
    with ProvinceStore(country.data / f"{code}.sqlite", code=code) as s:
        return s.sample_persons(random.Random(5), n)


def _holder_of(country: Country, code: str, type_name: str, *, has: bool) -> Any:
    with ProvinceStore(country.data / f"{code}.sqlite", code=code) as s:
        type_code = next(c.type_code for c in s.sample_certificates(random.Random(1), 200) if c.type_name == type_name)
        for p in s.sample_persons(random.Random(6), 200):
            rec = s.certificate(p.id_number, type_code)
            if (rec is not None and rec.state == "01") == has:
                return p
    raise AssertionError(f"no person in {code} {'with' if has else 'without'} {type_name}")


def test_healthcode_check_answers_a_colour_from_the_home_province(country: Country) -> None:
    p = _people(country, "510000")[0]
    reply = submit(country, "440000", flow="healthcode.check", subject=header_pb2.Subject(holder_id=p.id_number))
    assert reply.outcome == "ok" and reply.result in {"green", "yellow", "red"}


def test_healthcode_check_for_an_unknown_person_is_not_found(country: Country) -> None:
    from certs.identifiers import make_citizen_id
    from datetime import date

    stranger = make_citizen_id("510100", date(1990, 1, 1), 999, female=False)
    reply = submit(country, "440000", flow="healthcode.check", subject=header_pb2.Subject(holder_id=stranger))
    assert (reply.outcome, reply.result) == ("ok", "not_found")


def test_apply_online_completes_with_zero_trips(country: Country) -> None:
    p = _people(country, "110000")[1]
    reply = submit(country, "440000", flow="tongban.apply", item="社会保障卡申领", channel="online",
                   name=p.name, photo_sha256=p.photo_sha256, subject=header_pb2.Subject(holder_id=p.id_number))
    assert (reply.outcome, reply.result, reply.trips, reply.delay_days) == ("ok", "online", 0, 0.0)
    assert list(reply.steps) == ["identity.verify=ok/match"]


def test_apply_with_a_missing_certificate_falls_back_to_daishou(country: Country) -> None:
    p = _holder_of(country, "110000", "结婚证", has=False)
    reply = submit(country, "440000", flow="tongban.apply", item="户口迁移(夫妻投靠)", channel="window",
                   name=p.name, photo_sha256=p.photo_sha256, subject=header_pb2.Subject(holder_id=p.id_number))
    assert reply.outcome == "ok" and reply.trips == 2 and reply.result == "daishou"
    assert 2.0 <= reply.delay_days <= 7.0
    assert reply.steps[0] == "identity.verify=ok/match" and "ecert.fetch=ok/not_found" in reply.steps


def test_apply_duodi_lianban_waits_for_the_home_provinces_signed_confirmation(country: Country) -> None:
    p = _holder_of(country, "510000", "居民户口簿", has=True)
    reply = submit(country, "110000", flow="tongban.apply", item="户口迁移(工作调动)", channel="window",
                   name=p.name, photo_sha256=p.photo_sha256, subject=header_pb2.Subject(holder_id=p.id_number))
    assert list(reply.steps) == ["identity.verify=ok/match", "ecert.fetch=ok/ok", "joint.act=ok/confirmed"]
    assert (reply.outcome, reply.trips, reply.result) == ("ok", 1, "daishou")


def test_apply_with_a_wrong_name_costs_a_trip(country: Country) -> None:
    p = _people(country, "110000")[2]
    reply = submit(country, "440000", flow="tongban.apply", item="社会保障卡申领", channel="online",
                   name=p.name + "某", subject=header_pb2.Subject(holder_id=p.id_number))
    assert (reply.outcome, reply.trips, reply.result) == ("ok", 1, "daishou")
    assert list(reply.steps) == ["identity.verify=ok/no_match"]
