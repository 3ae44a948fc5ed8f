"""The streaming transport between nodes: many envelopes over one long-lived stream.

One unary gRPC call per envelope costs more CPU than everything tongban does with
the envelope (bench/results/profile-notes.md): a call is set up, its metadata
exchanged and torn down, and the event loop woken several times. Between nodes that
talk all day this is waste, so each node keeps one bidirectional stream per peer
(``HubService.ExchangeStream``, ``NodeService.HandleStream``) and multiplexes its
requests over it, each frame tagged with a call id. The server side hands every
frame to the same handler the unary RPC uses, so checks, ledger rows, retries and
refusals are identical; a refusal travels back as a frame instead of ending the
stream.

- :class:`StreamMux` is the caller's side: ``await mux.call(envelope, timeout_s)``.
- :func:`serve_frames` is the server's side, used by the servicers' stream methods.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from exchange.errors import PeerUnavailableError, TongbanError
from nodes._status import Undecodable, error_from_status, status_of
from tongban.v1 import envelope_pb2, services_pb2

__all__ = ["EXCHANGE_STREAM", "HANDLE_STREAM", "TRANSPORTS", "StreamMux", "serve_frames"]

#: How nodes carry envelopes to each other: "stream" (default) or one unary call each.
TRANSPORTS = ("stream", "unary")
EXCHANGE_STREAM = "/tongban.v1.HubService/ExchangeStream"
HANDLE_STREAM = "/tongban.v1.NodeService/HandleStream"
#: Frame types of each stream method (the same fields; one pair per RPC, as buf asks).
FRAMES: dict[str, tuple[Any, Any]] = {
    EXCHANGE_STREAM: (services_pb2.ExchangeStreamRequest, services_pb2.ExchangeStreamResponse),
    HANDLE_STREAM: (services_pb2.HandleStreamRequest, services_pb2.HandleStreamResponse),
}

log = logging.getLogger(__name__)

Envelope = envelope_pb2.Envelope
#: The node's handler for one request: (envelope, TLS peer, timeout or None) -> response.
Handler = Callable[[Envelope, str, "float | None"], Awaitable[Envelope]]

#: Tasks answering frames; held here so a closed stream does not let them be
#: collected mid-flight (an admitted request is always answered and recorded).
_RUNNING: set[asyncio.Task[None]] = set()


def _refusal(reply: Any, call_id: int, error: TongbanError) -> Any:
    return reply(call_id=call_id, refusal=services_pb2.Refusal(
        status=status_of(error).name, reason=error.code, message=str(error)))


async def serve_frames(frames: AsyncIterator[Any], *, method: str, peer: str, handle: Handler,
                       on_undecodable: Callable[[bytes, str, TongbanError], None] | None = None,
                       ) -> AsyncIterator[Any]:
    """Answer every frame of one stream as it completes (not in arrival order).

    Each request runs as its own task, so a slow answer never holds up a quick one;
    how many run at once is bounded by the node's admission control, which refuses
    the excess with RESOURCE_EXHAUSTED frames. When the caller half-closes, the
    answers still in flight are sent before the stream ends.
    """
    reply_type = FRAMES[method][1]
    out: asyncio.Queue[Any] = asyncio.Queue()
    in_flight = 0
    reading = True

    async def one(frame: Any) -> None:
        nonlocal in_flight
        try:
            timeout = frame.timeout_ms / 1000 if frame.timeout_ms else None
            reply = reply_type(call_id=frame.call_id, envelope=await handle(frame.envelope, peer, timeout))
        except TongbanError as e:
            reply = _refusal(reply_type, frame.call_id, e)
        except Exception:  # noqa: BLE001 - answered as INTERNAL, like the unary interceptor
            log.exception("unexpected error answering a streamed request")
            reply = reply_type(call_id=frame.call_id, refusal=services_pb2.Refusal(
                status="INTERNAL", reason="internal", message="internal error (logged by the node)"))
        in_flight -= 1
        out.put_nowait(reply)
        if not reading and in_flight == 0:
            out.put_nowait(None)

    async def read() -> None:
        nonlocal in_flight, reading
        try:
            async for frame in frames:
                if isinstance(frame, Undecodable):
                    if on_undecodable is not None:
                        on_undecodable(frame.raw, peer, frame.error)
                    out.put_nowait(_refusal(reply_type, 0, frame.error))
                    continue
                in_flight += 1
                task = asyncio.ensure_future(one(frame))
                _RUNNING.add(task)
                task.add_done_callback(_RUNNING.discard)
        except (grpc.aio.AioRpcError, grpc.RpcError) as e:  # the caller went away mid-stream
            log.debug("stream from %s ended: %s", peer, e)
        finally:
            reading = False
            if in_flight == 0:
                out.put_nowait(None)

    reader = asyncio.ensure_future(read())
    try:
        while (reply := await out.get()) is not None:
            yield reply
    finally:
        reader.cancel()


class StreamMux:
    """The caller's side of one peer's stream: concurrent calls over one stream.

    The stream opens on the first call and again after it breaks; a broken stream
    fails every call in flight on it with ``PeerUnavailableError`` (as a dropped
    unary call would). A peer that does not serve the stream method (a node built
    on the unary protocol only) sets ``unsupported``; callers then use the unary RPC.
    """

    def __init__(self, channel: grpc.aio.Channel, method: str, *, hop: str) -> None:
        self._request, reply_type = FRAMES[method]
        self._open = channel.stream_stream(
            method, request_serializer=self._request.SerializeToString, response_deserializer=reply_type.FromString)
        self.hop = hop
        self.unsupported = False
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Envelope]] = {}
        self._ids = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self._last_rx = 0.0

    def _stream(self) -> Any:
        if self._call is None:
            self._call = self._open()
            self._last_rx = time.monotonic()
            self._reader = asyncio.ensure_future(self._read(self._call))
        return self._call

    async def _read(self, call: Any) -> None:
        error: TongbanError | None = None
        try:
            async for frame in call:
                self._last_rx = time.monotonic()
                fut = self._pending.get(frame.call_id)
                if fut is None or fut.done():
                    if frame.call_id == 0:
                        log.warning("%s could not decode a frame of ours: %s", self.hop, frame.refusal.message)
                    continue  # the caller gave up waiting
                if frame.WhichOneof("outcome") == "envelope":
                    fut.set_result(frame.envelope)
                else:
                    r = frame.refusal
                    fut.set_exception(error_from_status(r.status, r.message, r.reason, hop=self.hop))
            error = PeerUnavailableError(f"{self.hop} closed the stream")
        except grpc.aio.AioRpcError as e:
            # Refusals travel as frames, so a stream that ends with a status is the
            # transport failing (peer stopped, connection reset: often INTERNAL from
            # an HTTP/2 RST_STREAM), or a peer without the stream method.
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.unsupported = True
                error = error_from_status(e.code().name, e.details() or "", "", hop=self.hop)
            else:
                error = PeerUnavailableError(
                    f"{self.hop} unavailable: the stream ended with {e.code().name}: {e.details()}")
        except asyncio.CancelledError:
            error = PeerUnavailableError(f"{self.hop}: stream closed by this node")
            raise
        finally:
            if self._call is call:
                self._call = None
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(error or PeerUnavailableError(f"{self.hop} closed the stream"))
                    fut.exception()  # retrieved: a caller that already left must not log it

    async def call(self, envelope: Envelope, timeout_s: float) -> Envelope:
        """Send one request and wait at most ``timeout_s`` for its answer."""
        call_id = next(self._ids)
        fut: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = fut
        sent_at = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                stream = self._stream()
                async with self._write_lock:
                    try:
                        await stream.write(self._request(
                            call_id=call_id, envelope=envelope, timeout_ms=max(1, int(timeout_s * 1000))))
                    except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
                        pass  # the stream is ending: its reader fails ``fut`` with the reason
                return await fut
        except TimeoutError:
            if self._last_rx < sent_at and self._call is not None:
                self._call.cancel()  # nothing at all came back: the stream is presumed dead
            raise PeerUnavailableError(f"{self.hop} timed out: no answer within {timeout_s:g} s") from None
        finally:
            del self._pending[call_id]

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
