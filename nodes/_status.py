"""The one place where tongban errors become gRPC status codes, and back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from exchange import errors as E

__all__ = ["REASON_KEY", "ErrorInterceptor", "error_from_rpc", "error_from_status", "status_of"]

log = logging.getLogger(__name__)

#: Trailing metadata key carrying the stable reason code of a refusal.
REASON_KEY = "tongban-reason"

_STATUS: tuple[tuple[type[E.TongbanError], grpc.StatusCode], ...] = (
    (E.MessageTooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (E.OverloadedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (E.EnvelopeError, grpc.StatusCode.INVALID_ARGUMENT),
    (E.ReceiverMismatchError, grpc.StatusCode.INVALID_ARGUMENT),
    (E.DirectoryError, grpc.StatusCode.FAILED_PRECONDITION),
    (E.TrustError, grpc.StatusCode.UNAUTHENTICATED),
    (E.FreshnessError, grpc.StatusCode.UNAUTHENTICATED),
    (E.BindingError, grpc.StatusCode.UNAUTHENTICATED),
    (E.ReplayError, grpc.StatusCode.ALREADY_EXISTS),
    (E.AccessDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (E.RoutingError, grpc.StatusCode.NOT_FOUND),
    (E.PeerUnavailableError, grpc.StatusCode.UNAVAILABLE),
)


def status_of(error: E.TongbanError) -> grpc.StatusCode:
    """The gRPC status a client sees for ``error``."""
    if isinstance(error, E.RemoteError):
        return grpc.StatusCode[error.status]
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return grpc.StatusCode.INTERNAL


#: Statuses that mean "the call did not get through" when no tongban node said why
#: (CANCELLED: the peer's server stopped with the call in flight).
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


def error_from_status(status: str, details: str, reason: str, *, hop: str) -> E.TongbanError:
    """Translate a refusal by ``hop`` (status code name, message, reason code; from a
    unary call's status or a stream's refusal frame) into a tongban error."""
    code = grpc.StatusCode[status] if status in grpc.StatusCode.__members__ else grpc.StatusCode.UNKNOWN
    if code in _UNREACHABLE and not reason:
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return E.TimedOutError(f"{hop} timed out: {details}")
        what = "went away mid-call" if code == grpc.StatusCode.CANCELLED else "unavailable"
        return E.PeerUnavailableError(f"{hop} {what}: {details}")
    return E.RemoteError(f"{hop} refused: {details}", status=code.name, code=reason or code.name.lower())


def error_from_rpc(e: grpc.aio.AioRpcError, *, hop: str) -> E.TongbanError:
    """Translate a failed call to ``hop`` into a tongban error (client side)."""
    reason = ""
    for key, value in e.trailing_metadata() or ():
        if key == REASON_KEY:
            reason = value if isinstance(value, str) else value.decode()
    return error_from_status(e.code().name, e.details() or "", reason, hop=hop)


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


UndecodableHook = Callable[[bytes, str, E.TongbanError], None]


class Undecodable:
    """A stream frame whose bytes are not the RPC's request message; handed to the
    stream handler in its place, so one bad frame is refused without ending the stream."""

    __slots__ = ("error", "raw")

    def __init__(self, raw: bytes, error: E.MalformedError) -> None:
        self.raw, self.error = raw, error


def _undecodable(raw: bytes, decode: Any, e: Exception) -> E.MalformedError:
    name = getattr(getattr(decode, "__self__", None), "DESCRIPTOR", None)
    return E.MalformedError(
        f"request body: expected a serialised {name.full_name if name else 'request'}, "
        f"found {len(raw)} bytes that do not parse ({e})")


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns a TongbanError raised by a unary handler into its status and reason.

    It also decodes the request itself, so a body that is not the RPC's request
    message (corrupt wire format, invalid UTF-8 in a string field) is refused with
    INVALID_ARGUMENT and reported to ``on_undecodable`` (the node's ledger) instead
    of failing inside grpc with UNKNOWN. It decodes each frame of a stream too: on
    tongban's own stream methods (nodes/stream.py) a frame that does not parse is
    refused by an answer frame and the stream goes on; on any other service's stream
    (grpc's reflection), whose servicer knows nothing of that, it ends the stream with
    INVALID_ARGUMENT instead of grpc's UNKNOWN and logged traceback.
    """

    def __init__(self, on_undecodable: UndecodableHook | None = None) -> None:
        self.on_undecodable = on_undecodable

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is not None and handler.stream_stream is not None and handler.request_deserializer is not None:
            # Only tongban's own streams take an Undecodable in place of a frame; any
            # other stream (grpc's server reflection) only ever sees its own messages.
            if _is_tongban_stream(handler_call_details.method):
                return _decoding_frames(handler)
            return _ending_on_bad_frame(handler, self.on_undecodable)
        if handler is None or handler.unary_unary is None:
            return handler
        inner: Handler = handler.unary_unary
        decode = handler.request_deserializer
        hook = self.on_undecodable

        async def wrapped(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            try:
                try:
                    request = decode(raw) if decode is not None else raw
                except DecodeError as e:
                    err = _undecodable(raw, decode, e)
                    _report(hook, raw, context, err)
                    raise err from None
                return await inner(request, context)
            except E.TongbanError as e:
                await context.abort(status_of(e), str(e), trailing_metadata=((REASON_KEY, e.code),))
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("unexpected error in %s", handler_call_details.method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error (logged by the node)",
                                    trailing_metadata=((REASON_KEY, "internal"),))

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=None,
            response_serializer=handler.response_serializer,
        )


def _report(hook: UndecodableHook | None, raw: bytes, context: grpc.aio.ServicerContext,
            err: E.MalformedError) -> None:
    if hook is not None:
        from nodes._grpc import peer_code

        hook(raw, peer_code(context), err)


def _is_tongban_stream(method: str) -> bool:
    """Is ``method`` one of tongban's stream methods (nodes/stream.py), whose servicers
    take an :class:`Undecodable` in place of a frame that does not parse?"""
    from nodes.stream import FRAMES  # nodes.stream imports this module

    return method in FRAMES


def _decoding_frames(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A stream handler that decodes each frame itself: a frame that does not parse
    reaches the servicer as :class:`Undecodable` instead of ending the stream."""
    inner = handler.stream_stream
    decode = handler.request_deserializer

    async def frames(raws: Any) -> Any:
        async for raw in raws:
            try:
                yield decode(raw)
            except DecodeError as e:
                yield Undecodable(raw, _undecodable(raw, decode, e))

    async def wrapped(raws: Any, context: grpc.aio.ServicerContext) -> Any:
        async for reply in inner(frames(raws), context):
            yield reply

    return grpc.stream_stream_rpc_method_handler(
        wrapped, request_deserializer=None, response_serializer=handler.response_serializer)


def _ending_on_bad_frame(handler: grpc.RpcMethodHandler, hook: UndecodableHook | None) -> grpc.RpcMethodHandler:
    """Another service's stream (grpc's reflection): a frame that does not parse ends
    the stream with INVALID_ARGUMENT naming the message expected (reported to ``hook``),
    where grpc would end it with UNKNOWN and log a traceback."""
    inner = handler.stream_stream
    decode = handler.request_deserializer

    async def wrapped(raws: Any, context: grpc.aio.ServicerContext) -> Any:
        async def frames() -> Any:
            async for raw in raws:
                try:
                    request = decode(raw)
                except DecodeError as e:
                    err = _undecodable(raw, decode, e)
                    _report(hook, raw, context, err)
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err),
                                        trailing_metadata=((REASON_KEY, err.code),))
                yield request

        async for reply in inner(frames(), context):
            yield reply

    return grpc.stream_stream_rpc_method_handler(
        wrapped, request_deserializer=None, response_serializer=handler.response_serializer)
