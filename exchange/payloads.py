"""The payload types tongban knows: media type -> protobuf message, flow and role.

Adding a flow adds rows here and payload messages in ``proto/``; the hub's routing
code does not change (it reads only the header, field 1 of every payload).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from google.protobuf.message import DecodeError, Message

from exchange.errors import MalformedError, PayloadTypeError
from tongban.v1 import directory_pb2, ecert_pb2, header_pb2, healthcode_pb2, identity_pb2, joint_pb2, transfer_pb2

__all__ = [
    "DIRECTORY",
    "ECERT",
    "ECERT_REQUEST",
    "ECERT_RESPONSE",
    "COMPOSITE_FLOWS",
    "FLOWS",
    "JOINT_REQUEST",
    "JOINT_RESPONSE",
    "LOAD_FLOWS",
    "HEALTHCODE_REQUEST",
    "HEALTHCODE_RESPONSE",
    "IDENTITY_REQUEST",
    "IDENTITY_RESPONSE",
    "REGISTRATION",
    "TRANSFER_COMMIT_REQUEST",
    "TRANSFER_COMMIT_RESPONSE",
    "TRANSFER_OUT_REQUEST",
    "TRANSFER_OUT_RESPONSE",
    "PayloadKind",
    "PayloadSpec",
    "parse_payload",
    "parse_routed",
    "request_type_of",
    "spec_of",
]

PayloadKind = Literal["request", "response", "document"]

ECERT_REQUEST = "application/vnd.tongban.ecert-request.v1+proto"
ECERT_RESPONSE = "application/vnd.tongban.ecert-response.v1+proto"
IDENTITY_REQUEST = "application/vnd.tongban.identity-request.v1+proto"
IDENTITY_RESPONSE = "application/vnd.tongban.identity-response.v1+proto"
ECERT = "application/vnd.tongban.ecert.v1+proto"
DIRECTORY = "application/vnd.tongban.directory.v1+proto"
REGISTRATION = "application/vnd.tongban.registration.v1+proto"
HEALTHCODE_REQUEST = "application/vnd.tongban.healthcode-request.v1+proto"
JOINT_REQUEST = "application/vnd.tongban.joint-request.v1+proto"
TRANSFER_OUT_REQUEST = "application/vnd.tongban.transfer-out-request.v1+proto"
TRANSFER_OUT_RESPONSE = "application/vnd.tongban.transfer-out-response.v1+proto"
TRANSFER_COMMIT_REQUEST = "application/vnd.tongban.transfer-commit-request.v1+proto"
TRANSFER_COMMIT_RESPONSE = "application/vnd.tongban.transfer-commit-response.v1+proto"
JOINT_RESPONSE = "application/vnd.tongban.joint-response.v1+proto"
HEALTHCODE_RESPONSE = "application/vnd.tongban.healthcode-response.v1+proto"


@dataclass(frozen=True, slots=True)
class PayloadSpec:
    """What a payload type is: its message class, flow, and request/response role."""

    media_type: str
    message: type[Message]
    flow: str
    kind: PayloadKind
    response_type: str = ""


_SPECS: dict[str, PayloadSpec] = {
    s.media_type: s
    for s in (
        PayloadSpec(ECERT_REQUEST, ecert_pb2.EcertFetchRequest, "ecert.fetch", "request", ECERT_RESPONSE),
        PayloadSpec(ECERT_RESPONSE, ecert_pb2.EcertFetchResponse, "ecert.fetch", "response"),
        PayloadSpec(IDENTITY_REQUEST, identity_pb2.IdentityVerifyRequest, "identity.verify", "request", IDENTITY_RESPONSE),
        PayloadSpec(IDENTITY_RESPONSE, identity_pb2.IdentityVerifyResponse, "identity.verify", "response"),
        PayloadSpec(HEALTHCODE_REQUEST, healthcode_pb2.HealthCodeCheckRequest, "healthcode.check", "request",
                    HEALTHCODE_RESPONSE),
        PayloadSpec(HEALTHCODE_RESPONSE, healthcode_pb2.HealthCodeCheckResponse, "healthcode.check", "response"),
        PayloadSpec(JOINT_REQUEST, joint_pb2.JointActRequest, "joint.act", "request", JOINT_RESPONSE),
        PayloadSpec(JOINT_RESPONSE, joint_pb2.JointActResponse, "joint.act", "response"),
        PayloadSpec(TRANSFER_OUT_REQUEST, transfer_pb2.TransferOutRequest, "transfer.out", "request",
                    TRANSFER_OUT_RESPONSE),
        PayloadSpec(TRANSFER_OUT_RESPONSE, transfer_pb2.TransferOutResponse, "transfer.out", "response"),
        PayloadSpec(TRANSFER_COMMIT_REQUEST, transfer_pb2.TransferCommitRequest, "transfer.commit", "request",
                    TRANSFER_COMMIT_RESPONSE),
        PayloadSpec(TRANSFER_COMMIT_RESPONSE, transfer_pb2.TransferCommitResponse, "transfer.commit", "response"),
        PayloadSpec(ECERT, ecert_pb2.ECertificate, "ecert", "document"),
        PayloadSpec(DIRECTORY, directory_pb2.Directory, "directory", "document"),
        PayloadSpec(REGISTRATION, directory_pb2.Registration, "registration", "request"),
    )
}

#: Flows made of several exchanges, orchestrated by the asking province.
COMPOSITE_FLOWS: tuple[str, ...] = ("ecert.transfer", "tongban.apply")

#: Flow name -> its request media type.
FLOWS: dict[str, str] = {s.flow: s.media_type for s in _SPECS.values() if s.response_type}

#: Every flow a scenario's load may name.
LOAD_FLOWS: tuple[str, ...] = (*sorted(f for f in FLOWS if not f.startswith("transfer.")), *COMPOSITE_FLOWS)


def spec_of(media_type: str) -> PayloadSpec:
    """The spec of a known payload type, or PayloadTypeError naming the known ones."""
    spec = _SPECS.get(media_type)
    if spec is None:
        known = ", ".join(sorted(_SPECS))
        raise PayloadTypeError(f"unknown payload type {media_type[:120]!r}, expected one of: {known}")
    return spec


def request_type_of(flow: str) -> str:
    """The request media type of a flow name, or PayloadTypeError."""
    try:
        return FLOWS[flow]
    except KeyError:
        raise PayloadTypeError(
            f"unknown flow {flow[:80]!r}, expected one of: {', '.join(sorted(FLOWS))}"
        ) from None


def _parse(cls: type[Message], data: bytes, what: str) -> Message:
    msg = cls()
    try:
        msg.ParseFromString(data)
    except DecodeError as e:
        raise MalformedError(
            f"payload of type {what}: expected a serialised {cls.DESCRIPTOR.full_name}, "
            f"found {len(data)} bytes that do not parse ({e})"
        ) from e
    return msg


def parse_routed(media_type: str, payload: bytes) -> header_pb2.RoutedPayload:
    """Parse any known payload just far enough to read its header."""
    spec_of(media_type)
    routed = _parse(header_pb2.RoutedPayload, payload, media_type)
    assert isinstance(routed, header_pb2.RoutedPayload)
    return routed


def parse_payload(media_type: str, payload: bytes) -> Message:
    """Parse a payload into its full message class."""
    return _parse(spec_of(media_type).message, payload, media_type)
