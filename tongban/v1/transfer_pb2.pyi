from tongban.v1 import envelope_pb2 as _envelope_pb2
from tongban.v1 import header_pb2 as _header_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TransferOutRequest(_message.Message):
    __slots__ = ("header", "transfer_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    transfer_id: str
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., transfer_id: _Optional[str] = ...) -> None: ...

class TransferOutResponse(_message.Message):
    __slots__ = ("header", "found", "certificate", "detail")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    found: bool
    certificate: _envelope_pb2.Envelope
    detail: str
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., found: _Optional[bool] = ..., certificate: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...

class TransferCommitRequest(_message.Message):
    __slots__ = ("header", "transfer_id", "new_identifier")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    transfer_id: str
    new_identifier: str
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., transfer_id: _Optional[str] = ..., new_identifier: _Optional[str] = ...) -> None: ...

class TransferCommitResponse(_message.Message):
    __slots__ = ("header", "recorded")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    recorded: bool
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., recorded: _Optional[bool] = ...) -> None: ...
