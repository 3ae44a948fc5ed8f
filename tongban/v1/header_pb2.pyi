import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Header(_message.Message):
    __slots__ = ("message_id", "sender", "receiver", "issued_at", "expires_at", "purpose", "audit", "trace_id", "request_digest", "subject")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    sender: str
    receiver: str
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    purpose: str
    audit: AuditContext
    trace_id: str
    request_digest: bytes
    subject: Subject
    def __init__(self, message_id: _Optional[str] = ..., sender: _Optional[str] = ..., receiver: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., purpose: _Optional[str] = ..., audit: _Optional[_Union[AuditContext, _Mapping]] = ..., trace_id: _Optional[str] = ..., request_digest: _Optional[bytes] = ..., subject: _Optional[_Union[Subject, _Mapping]] = ...) -> None: ...

class AuditContext(_message.Message):
    __slots__ = ("organisation", "operator", "item_name", "item_code", "business_serial")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    ITEM_NAME_FIELD_NUMBER: _ClassVar[int]
    ITEM_CODE_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_SERIAL_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    operator: str
    item_name: str
    item_code: str
    business_serial: str
    def __init__(self, organisation: _Optional[str] = ..., operator: _Optional[str] = ..., item_name: _Optional[str] = ..., item_code: _Optional[str] = ..., business_serial: _Optional[str] = ...) -> None: ...

class Subject(_message.Message):
    __slots__ = ("holder_id", "cert_type")
    HOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    CERT_TYPE_FIELD_NUMBER: _ClassVar[int]
    holder_id: str
    cert_type: str
    def __init__(self, holder_id: _Optional[str] = ..., cert_type: _Optional[str] = ...) -> None: ...

class RoutedPayload(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: Header
    def __init__(self, header: _Optional[_Union[Header, _Mapping]] = ...) -> None: ...
