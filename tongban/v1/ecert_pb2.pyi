import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tongban.v1 import envelope_pb2 as _envelope_pb2
from tongban.v1 import header_pb2 as _header_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FetchStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FETCH_STATUS_UNSPECIFIED: _ClassVar[FetchStatus]
    FETCH_STATUS_OK: _ClassVar[FetchStatus]
    FETCH_STATUS_NOT_FOUND: _ClassVar[FetchStatus]
FETCH_STATUS_UNSPECIFIED: FetchStatus
FETCH_STATUS_OK: FetchStatus
FETCH_STATUS_NOT_FOUND: FetchStatus

class EcertFetchRequest(_message.Message):
    __slots__ = ("header", "identifier")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    identifier: str
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., identifier: _Optional[str] = ...) -> None: ...

class EcertFetchResponse(_message.Message):
    __slots__ = ("header", "status", "detail", "certificate")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    status: FetchStatus
    detail: str
    certificate: _envelope_pb2.Envelope
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., status: _Optional[_Union[FetchStatus, str]] = ..., detail: _Optional[str] = ..., certificate: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ECertificate(_message.Message):
    __slots__ = ("identifier", "type_code", "type_name", "holder_code", "holder_code_type", "holder_name", "issuer_code", "issuer_name", "issuer_node", "issue_date", "valid_from", "valid_to", "state", "operate_type", "associated_id", "area_code", "fields", "signed_at")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    HOLDER_CODE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_CODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_NAME_FIELD_NUMBER: _ClassVar[int]
    ISSUER_CODE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_NAME_FIELD_NUMBER: _ClassVar[int]
    ISSUER_NODE_FIELD_NUMBER: _ClassVar[int]
    ISSUE_DATE_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OPERATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATED_ID_FIELD_NUMBER: _ClassVar[int]
    AREA_CODE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    SIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    type_code: str
    type_name: str
    holder_code: str
    holder_code_type: str
    holder_name: str
    issuer_code: str
    issuer_name: str
    issuer_node: str
    issue_date: str
    valid_from: str
    valid_to: str
    state: str
    operate_type: str
    associated_id: str
    area_code: str
    fields: _containers.ScalarMap[str, str]
    signed_at: _timestamp_pb2.Timestamp
    def __init__(self, identifier: _Optional[str] = ..., type_code: _Optional[str] = ..., type_name: _Optional[str] = ..., holder_code: _Optional[str] = ..., holder_code_type: _Optional[str] = ..., holder_name: _Optional[str] = ..., issuer_code: _Optional[str] = ..., issuer_name: _Optional[str] = ..., issuer_node: _Optional[str] = ..., issue_date: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_to: _Optional[str] = ..., state: _Optional[str] = ..., operate_type: _Optional[str] = ..., associated_id: _Optional[str] = ..., area_code: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., signed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
