"""A client's mistakes at a running node: each refused with the status that says whose
mistake it is and a message naming what was expected and what was found, and the
node keeps serving.

- a window that names no flow a window may submit, no 跨省通办 item, or a holder
  whose check digit is wrong: INVALID_ARGUMENT (not INTERNAL, not NOT_FOUND);
- a frame that does not parse on a stream of another service than tongban's own
  (grpc's server reflection): that stream ends with INVALID_ARGUMENT, where the
  stream handling of tongban's streams used to hand the reflection servicer an
  object it cannot read (UNKNOWN, AttributeError).
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from exchange.kstb import ITEMS
from tests.integration.conftest import Country
from tests.integration.test_exchange import _a_certificate, _a_person
from tongban.v1 import header_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration

FLOWS = "ecert.fetch, ecert.transfer, healthcode.check, identity.verify, joint.act, tongban.apply"


def _refusal(country: Country, origin: str = "440000", **kw: Any) -> tuple[grpc.StatusCode, str, str]:
    """(status, reason, message) of a Submit the window expects to be refused."""
    with country.window_channel(origin) as ch, pytest.raises(grpc.RpcError) as e:
        services_pb2_grpc.WindowServiceStub(ch).Submit(services_pb2.SubmitRequest(purpose="跨省通办 测试", **kw),
                                                       timeout=10)
    err: Any = e.value
    reason = dict(err.trailing_metadata() or ()).get("tongban-reason", "")
    return err.code(), reason, err.details()


def _still_serving(country: Country, origin: str = "440000") -> None:
    person = _a_person(country, "110000")
    with country.window_channel(origin) as ch:
        reply = services_pb2_grpc.WindowServiceStub(ch).Submit(services_pb2.SubmitRequest(
            flow="identity.verify", subject=header_pb2.Subject(holder_id=person.id_number), name=person.name,
            photo_sha256=person.photo_sha256, purpose="跨省通办 测试"), timeout=10)
    assert (reply.outcome, reply.result) == ("ok", "match")


def test_the_window_flows_are_the_flows_a_window_is_served() -> None:
    from nodes.flows import WINDOW_FLOWS

    assert ", ".join(WINDOW_FLOWS) == FLOWS


@pytest.mark.parametrize("flow", ["bogus.flow", "transfer.out", "transfer.commit", ""])
def test_a_flow_no_window_may_submit_is_invalid_argument_listing_those_it_may(country: Country, flow: str) -> None:
    person = _a_person(country, "110000")
    status, reason, message = _refusal(country, flow=flow, subject=header_pb2.Subject(holder_id=person.id_number))
    assert (status, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "payload_type")
    assert message == f"flow: expected one of the flows a window submits ({FLOWS}), found {flow!r}"
    _still_serving(country)


@pytest.mark.parametrize(("item", "found"), [("", "none"), ("bogus", "'bogus'")])
def test_an_application_for_no_item_of_the_catalogue_is_invalid_argument(country: Country, item: str,
                                                                         found: str) -> None:
    person = _a_person(country, "110000")
    status, reason, message = _refusal(country, flow="tongban.apply", item=item,
                                       subject=header_pb2.Subject(holder_id=person.id_number))
    assert (status, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "bad_header")
    assert message == (f"tongban.apply item: expected the name of one of the {len(ITEMS)} items of the 跨省通办 "
                       f"catalogue (e.g. '市场主体登记注册'), found {found}")
    _still_serving(country)


def test_an_application_on_an_unknown_channel_is_invalid_argument(country: Country) -> None:
    person = _a_person(country, "110000")
    status, reason, message = _refusal(country, flow="tongban.apply", item="社会保障卡申领", channel="fax",
                                       subject=header_pb2.Subject(holder_id=person.id_number))
    assert (status, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "bad_header")
    assert message == "tongban.apply channel: expected 'online' or 'window', found 'fax'"


def test_a_holder_id_with_a_wrong_check_digit_is_invalid_argument_naming_the_digit(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    holder = cert.holder_code
    wrong = "0" if holder[17] != "0" else "1"
    bad = holder[:17] + wrong
    status, reason, message = _refusal(country, flow="ecert.fetch",
                                       subject=header_pb2.Subject(holder_id=bad, cert_type=cert.type_code))
    assert (status, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "bad_header")
    assert message == f"holder {bad!r}: 公民身份号码 check digit: expected {holder[17]}, found {wrong}"


REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


@pytest.mark.parametrize("code", ["000000", "440000"])
def test_a_garbage_frame_on_the_reflection_stream_is_invalid_argument_and_reflection_goes_on(
        country: Country, code: str) -> None:
    from grpc_reflection.v1alpha import reflection_pb2

    target = country.hub_target if code == "000000" else country.provinces[code].endpoint
    listing = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
    with country.node_channel("110000", target=target, peer=code) as ch:
        call = ch.stream_stream(REFLECTION, request_serializer=None,
                                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        with pytest.raises(grpc.RpcError) as e:
            list(call(iter([b"\xff\xff\xff", listing]), timeout=10))
        err: Any = e.value
        assert (err.code(), dict(err.trailing_metadata() or ()).get("tongban-reason")) == (
            grpc.StatusCode.INVALID_ARGUMENT, "malformed")
        assert err.details().startswith(  # then protobuf's own words, which vary by its version
            "request body: expected a serialised grpc.reflection.v1alpha.ServerReflectionRequest, found 3 bytes "
            "that do not parse (")
        # the next reflection stream on the same channel is answered
        [reply] = list(call(iter([listing]), timeout=10))
        assert "grpc.health.v1.Health" in {s.name for s in reply.list_services_response.service}
