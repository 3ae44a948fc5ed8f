from tongban.v1 import header_pb2 as _header_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VerifyResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERIFY_RESULT_UNSPECIFIED: _ClassVar[VerifyResult]
    VERIFY_RESULT_MATCH: _ClassVar[VerifyResult]
    VERIFY_RESULT_NO_MATCH: _ClassVar[VerifyResult]
VERIFY_RESULT_UNSPECIFIED: VerifyResult
VERIFY_RESULT_MATCH: VerifyResult
VERIFY_RESULT_NO_MATCH: VerifyResult

class IdentityVerifyRequest(_message.Message):
    __slots__ = ("header", "name", "photo_sha256")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHOTO_SHA256_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    name: str
    photo_sha256: str
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., name: _Optional[str] = ..., photo_sha256: _Optional[str] = ...) -> None: ...

class IdentityVerifyResponse(_message.Message):
    __slots__ = ("header", "result")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    header: _header_pb2.Header
    result: VerifyResult
    def __init__(self, header: _Optional[_Union[_header_pb2.Header, _Mapping]] = ..., result: _Optional[_Union[VerifyResult, str]] = ...) -> None: ...
