import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tongban.v1 import header_pb2 as _header_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TopologyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOPOLOGY_KIND_UNSPECIFIED: _ClassVar[TopologyKind]
    TOPOLOGY_KIND_STAR: _ClassVar[TopologyKind]
    TOPOLOGY_KIND_REGIONAL: _ClassVar[TopologyKind]
    TOPOLOGY_KIND_DIRECT: _ClassVar[TopologyKind]

class MemberKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBER_KIND_UNSPECIFIED: _ClassVar[MemberKind]
    MEMBER_KIND_HUB: _ClassVar[MemberKind]
    MEMBER_KIND_PROVINCE: _ClassVar[MemberKind]
TOPOLOGY_KIND_UNSPECIFIED: TopologyKind
TOPOLOGY_KIND_STAR: TopologyKind
TOPOLOGY_KIND_REGIONAL: TopologyKind
TOPOLOGY_KIND_DIRECT: TopologyKind
MEMBER_KIND_UNSPECIFIED: MemberKind
MEMBER_KIND_HUB: MemberKind
MEMBER_KIND_PROVINCE: MemberKind

class Directory(_message.Message):
    __slots__ = ("header", "version", "valid_from", "valid_until", "hub", "members", "catalogue", "division_routes", "access_rules", "revocations", "policy", "topology")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    HUB_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_FIELD_NUMBER: _ClassVar[int]
    DIVISION_ROUTES_FIELD_NUMBER: _ClassVar[int]
    ACCESS_RULES_FIELD_NUMBER: _ClassVar[int]
    REVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TOPOLOGY_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    version: int
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    hub: str
    members: _containers.RepeatedCompositeFieldContainer[Member]
    catalogue: _containers.RepeatedCompositeFieldContainer[CatalogueEntry]
    division_routes: _containers.RepeatedCompositeFieldContainer[DivisionRoute]
    access_rules: _containers.RepeatedCompositeFieldContainer[AccessRule]
    revocations: _containers.RepeatedCompositeFieldContainer[Revocation]
    policy: Policy
    topology: Topology
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., version: _Optional[int] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hub: _Optional[str] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., catalogue: _Optional[_Iterable[_Union[CatalogueEntry, _Mapping]]] = ..., division_routes: _Optional[_Iterable[_Union[DivisionRoute, _Mapping]]] = ..., access_rules: _Optional[_Iterable[_Union[AccessRule, _Mapping]]] = ..., revocations: _Optional[_Iterable[_Union[Revocation, _Mapping]]] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., topology: _Optional[_Union[Topology, _Mapping]] = ...) -> None: ...

class Topology(_message.Message):
    __slots__ = ("kind", "regions")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    kind: TopologyKind
    regions: _containers.RepeatedCompositeFieldContainer[Region]
    def __init__(self, kind: _Optional[_Union[TopologyKind, str]] = ..., regions: _Optional[_Iterable[_Union[Region, _Mapping]]] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("name", "members")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    members: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., members: _Optional[_Iterable[str]] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("code", "name", "kind", "endpoint", "intermediate_certificate", "signing_keys", "issuer_certificate", "host")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    INTERMEDIATE_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEYS_FIELD_NUMBER: _ClassVar[int]
    ISSUER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    kind: MemberKind
    endpoint: str
    intermediate_certificate: bytes
    signing_keys: _containers.RepeatedCompositeFieldContainer[SigningKey]
    issuer_certificate: bytes
    host: str
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[MemberKind, str]] = ..., endpoint: _Optional[str] = ..., intermediate_certificate: _Optional[bytes] = ..., signing_keys: _Optional[_Iterable[_Union[SigningKey, _Mapping]]] = ..., issuer_certificate: _Optional[bytes] = ..., host: _Optional[str] = ...) -> None: ...

class SigningKey(_message.Message):
    __slots__ = ("keyid", "certificate")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    certificate: bytes
    def __init__(self, keyid: _Optional[str] = ..., certificate: _Optional[bytes] = ...) -> None: ...

class CatalogueEntry(_message.Message):
    __slots__ = ("cert_type", "cert_type_name", "issuers")
    CERT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CERT_TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    ISSUERS_FIELD_NUMBER: _ClassVar[int]
    cert_type: str
    cert_type_name: str
    issuers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cert_type: _Optional[str] = ..., cert_type_name: _Optional[str] = ..., issuers: _Optional[_Iterable[str]] = ...) -> None: ...

class DivisionRoute(_message.Message):
    __slots__ = ("prefix", "node")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    node: str
    def __init__(self, prefix: _Optional[str] = ..., node: _Optional[str] = ...) -> None: ...

class AccessRule(_message.Message):
    __slots__ = ("sender", "flow", "cert_types")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    CERT_TYPES_FIELD_NUMBER: _ClassVar[int]
    sender: str
    flow: str
    cert_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sender: _Optional[str] = ..., flow: _Optional[str] = ..., cert_types: _Optional[_Iterable[str]] = ...) -> None: ...

class Revocation(_message.Message):
    __slots__ = ("keyid", "revoked_at", "reason")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    revoked_at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, keyid: _Optional[str] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("max_clock_skew_ms", "max_message_lifetime_ms", "max_message_bytes")
    MAX_CLOCK_SKEW_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_LIFETIME_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_clock_skew_ms: int
    max_message_lifetime_ms: int
    max_message_bytes: int
    def __init__(self, max_clock_skew_ms: _Optional[int] = ..., max_message_lifetime_ms: _Optional[int] = ..., max_message_bytes: _Optional[int] = ...) -> None: ...

class Registration(_message.Message):
    __slots__ = ("header", "endpoint", "host", "carries")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    CARRIES_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    endpoint: str
    host: str
    carries: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., endpoint: _Optional[str] = ..., host: _Optional[str] = ..., carries: _Optional[_Iterable[str]] = ...) -> None: ...
