from tongban.v1 import header_pb2 as _header_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JointActRequest(_message.Message):
    __slots__ = ("header", "item_name", "action")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ITEM_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    item_name: str
    action: str
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., item_name: _Optional[str] = ..., action: _Optional[str] = ...) -> None: ...

class JointActResponse(_message.Message):
    __slots__ = ("header", "confirmed", "reference", "detail")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    confirmed: bool
    reference: str
    detail: str
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., confirmed: _Optional[bool] = ..., reference: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...
