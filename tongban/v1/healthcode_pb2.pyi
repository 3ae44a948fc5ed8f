import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tongban.v1 import header_pb2 as _header_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HealthColour(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_COLOUR_UNSPECIFIED: _ClassVar[HealthColour]
    HEALTH_COLOUR_GREEN: _ClassVar[HealthColour]
    HEALTH_COLOUR_YELLOW: _ClassVar[HealthColour]
    HEALTH_COLOUR_RED: _ClassVar[HealthColour]
HEALTH_COLOUR_UNSPECIFIED: HealthColour
HEALTH_COLOUR_GREEN: HealthColour
HEALTH_COLOUR_YELLOW: HealthColour
HEALTH_COLOUR_RED: HealthColour

class HealthCodeCheckRequest(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ...) -> None: ...

class HealthCodeCheckResponse(_message.Message):
    __slots__ = ("header", "found", "code")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    found: bool
    code: HealthCode
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., found: _Optional[bool] = ..., code: _Optional[_Union[HealthCode, _Mapping]] = ...) -> None: ...

class HealthCode(_message.Message):
    __slots__ = ("code_id", "holder_id", "colour", "generated_at", "valid_until", "issuer_node")
    CODE_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    ISSUER_NODE_FIELD_NUMBER: _ClassVar[int]
    code_id: str
    holder_id: str
    colour: HealthColour
    generated_at: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    issuer_node: str
    def __init__(self, code_id: _Optional[str] = ..., holder_id: _Optional[str] = ..., colour: _Optional[_Union[HealthColour, str]] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., issuer_node: _Optional[str] = ...) -> None: ...
