"""The streaming transport between nodes: many envelopes over one long-lived stream.

One unary gRPC call per envelope is expensive: a call is set up, its metadata
exchanged and torn down, and the event loop woken several times; at the hub that
cost more CPU than its checks, signature verification and ledger together
(bench/results/profile-notes.md). Between nodes that talk all day this is waste,
so each node keeps long-lived bidirectional streams to each peer
(``HubService.ExchangeStream``, ``NodeService.HandleStream``) and multiplexes its
requests over them, each tagged with a call id. The server side hands every
frame to the same handler the unary RPC uses, so checks, ledger rows, retries and
refusals are identical; a refusal travels back as a frame instead of ending the
stream.

- :class:`StreamMux` is the caller's side: ``await mux.send(envelope, timeout_s)`` (the
  stream, or the unary RPC for ``stream=False`` and for peers without the stream method).
- :func:`serve_frames` is the server's side, used by the servicers' stream methods.

A service window's submissions travel the same way (``WindowService.SubmitStream``:
a ``SubmitRequest`` per call, a ``SubmitResponse`` per answer, ``Submit`` as its unary
RPC), so a window that keeps many in flight hands them to its node, and its node to
the hub, in batches.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from exchange.errors import ConfigError, PeerUnavailableError, TimedOutError, TongbanError
from nodes._status import Undecodable, error_from_rpc, error_from_status, status_of
from tongban.v1 import services_pb2

__all__ = ["EXCHANGE_STREAM", "HANDLE_STREAM", "TRANSPORTS", "WINDOW_STREAM", "StreamMux", "check_transport",
           "serve_frames"]

#: How nodes carry envelopes to each other: "stream" (default) or one unary call each.
TRANSPORTS = ("stream", "unary")
EXCHANGE_STREAM = "/tongban.v1.HubService/ExchangeStream"
HANDLE_STREAM = "/tongban.v1.NodeService/HandleStream"
WINDOW_STREAM = "/tongban.v1.WindowService/SubmitStream"


@dataclass(frozen=True)
class _Method:
    """One stream method: its frames, the field a call and an answer carry, and the
    unary RPC that carries one call (``wrap`` makes its request, ``unwrap`` reads its reply)."""

    request: Any
    reply: Any
    call: Any
    answer: Any
    call_field: str
    answer_field: str
    unary: str
    unary_request: Any
    unary_reply: Any
    wrap: Callable[[Any], Any]
    unwrap: Callable[[Any], Any]
    #: A call that times out with nothing at all received since it was sent means the
    #: stream is dead (between nodes, whose answers come within the caller's timeout). Not
    #: on the window's stream: a flow may take the node's whole request timeout, and the
    #: stream carries the window's other submissions.
    silence_is_death: bool = True


def _envelopes(unary: str, request: Any, reply: Any, unary_request: Any, unary_reply: Any) -> _Method:
    return _Method(request, reply, services_pb2.StreamCall, services_pb2.StreamAnswer, "envelope", "envelope",
                   unary, unary_request, unary_reply, lambda e: unary_request(envelope=e), lambda r: r.envelope)


_METHODS: dict[str, _Method] = {
    EXCHANGE_STREAM: _envelopes("/tongban.v1.HubService/Exchange",
                                services_pb2.ExchangeStreamRequest, services_pb2.ExchangeStreamResponse,
                                services_pb2.ExchangeRequest, services_pb2.ExchangeResponse),
    HANDLE_STREAM: _envelopes("/tongban.v1.NodeService/Handle",
                              services_pb2.HandleStreamRequest, services_pb2.HandleStreamResponse,
                              services_pb2.HandleRequest, services_pb2.HandleResponse),
    WINDOW_STREAM: _Method(services_pb2.SubmitStreamRequest, services_pb2.SubmitStreamResponse,
                           services_pb2.WindowCall, services_pb2.WindowAnswer, "request", "response",
                           "/tongban.v1.WindowService/Submit", services_pb2.SubmitRequest,
                           services_pb2.SubmitResponse, lambda r: r, lambda r: r, silence_is_death=False),
}
#: Frame types of each stream method (the same fields; one pair per RPC, as buf asks).
FRAMES: dict[str, tuple[Any, Any]] = {name: (m.request, m.reply) for name, m in _METHODS.items()}


def check_transport(transport: str, *, setting: str = "transport") -> str:
    """``transport`` if it is one of TRANSPORTS, else a ConfigError naming ``setting`` and them."""
    if transport not in TRANSPORTS:
        raise ConfigError(f"{setting}: expected one of {', '.join(TRANSPORTS)}, found {transport!r}")
    return transport

log = logging.getLogger(__name__)

#: The node's handler for one call: (what it carries, TLS peer, timeout or None) -> the answer's
#: content (an envelope for the node streams, a SubmitResponse for the window's).
Handler = Callable[[Any, str, "float | None"], Awaitable[Any]]

#: Tasks answering frames; held here so a closed stream does not let them be
#: collected mid-flight (an admitted request is always answered and recorded).
_RUNNING: set[asyncio.Task[None]] = set()
#: A reader hands on at most this many requests (or answers) of one frame before it
#: lets the event loop run what they started. Without it a node takes a whole batch
#: through every step (64 verifications, say) before the first request goes on to the
#: next node, so the nodes work in turn, not at once: in bench/ at c=64, 1,493/s with
#: half the CPU idle, against 2,022–2,121/s with chunks of 12–16 (8: 1,828; 4: 1,653,
#: batches too small; 32: 1,824).
_PIPELINE = 16
#: At most this many calls (or answers) in one stream message: a backlog let go at once
#: (a peer back after a stall) must stay far below gRPC's 4 MiB message limit (a window
#: answer, two envelopes and a certificate, is 1.5-2.5 KiB).
_MAX_PER_MESSAGE = 256


def _refusal(m: _Method, call_id: int, error: TongbanError) -> Any:
    return m.answer(call_id=call_id, refusal=services_pb2.Refusal(
        status=status_of(error).name, reason=error.code, message=str(error)))


async def serve_frames(frames: AsyncIterator[Any], *, method: str, peer: str, handle: Handler,
                       on_undecodable: Callable[[bytes, str, TongbanError], None] | None = None,
                       ) -> AsyncIterator[Any]:
    """Answer every request of one stream as it completes (not in arrival order).

    Each request runs as its own task, so a slow answer never holds up a quick one;
    how many run at once is bounded by the node's admission control, which refuses
    the excess with RESOURCE_EXHAUSTED answers. Answers that are ready together go
    out in one message. When the caller half-closes, the answers still in flight
    are sent before the stream ends.
    """
    m = _METHODS[method]
    reply_type = m.reply
    ready: list[Any] = []
    wake = asyncio.Event()
    in_flight = 0
    reading = True

    def answer(a: Any) -> None:
        ready.append(a)
        wake.set()

    async def one(call: Any) -> None:
        nonlocal in_flight
        try:
            timeout = call.timeout_ms / 1000 if call.timeout_ms else None
            reply = m.answer(call_id=call.call_id,
                             **{m.answer_field: await handle(getattr(call, m.call_field), peer, timeout)})
        except TongbanError as e:
            reply = _refusal(m, call.call_id, e)
        except Exception:  # noqa: BLE001 - answered as INTERNAL, like the unary interceptor
            log.exception("unexpected error answering a streamed request")
            reply = m.answer(call_id=call.call_id, refusal=services_pb2.Refusal(
                status="INTERNAL", reason="internal", message="internal error (logged by the node)"))
        in_flight -= 1
        answer(reply)

    async def read() -> None:
        nonlocal in_flight, reading
        try:
            async for frame in frames:
                if isinstance(frame, Undecodable):
                    if on_undecodable is not None:
                        on_undecodable(frame.raw, peer, frame.error)
                    answer(_refusal(m, 0, frame.error))
                    continue
                for i, call in enumerate(frame.calls, 1):
                    in_flight += 1
                    task = asyncio.ensure_future(one(call))
                    _RUNNING.add(task)
                    task.add_done_callback(_RUNNING.discard)
                    if i % _PIPELINE == 0:
                        # The stream may be torn down here (the caller went away): the rest
                        # of this frame is then never started, so never admitted or ledgered;
                        # the caller has failed those calls already (PeerUnavailableError).
                        await asyncio.sleep(0)
        except (grpc.aio.AioRpcError, grpc.RpcError) as e:  # the caller went away mid-stream
            log.debug("stream from %s ended: %s", peer, e)
        finally:
            reading = False
            wake.set()

    reader = asyncio.ensure_future(read())
    try:
        while True:
            if ready:
                batch, ready[:] = ready[:_MAX_PER_MESSAGE], ready[_MAX_PER_MESSAGE:]
                yield reply_type(answers=batch)
            elif not reading and in_flight == 0:
                return
            else:
                await wake.wait()
                wake.clear()
    finally:
        reader.cancel()


class _Lane:
    """One stream of a mux: its call, its reader, its calls in flight, what waits
    to be written, and whether a write is under way (gRPC allows one at a time)."""

    __slots__ = ("call", "reader", "pending", "queue", "writing", "last_rx")

    def __init__(self, call: Any) -> None:
        self.call = call
        self.reader: asyncio.Task[None] | None = None
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.queue: list[Any] = []
        self.writing = False
        self.last_rx = time.monotonic()


class StreamMux:
    """The caller's side of the streams to one peer: concurrent calls, multiplexed.

    Each write on a gRPC stream is a round trip through its completion queue, and
    only one may be under way per stream. So calls made while a write is under way
    wait in the lane's queue and go out together in the next message: at low load
    every request is sent at once, under load many share one write (and the peer
    answers those ready together in one message), without any timer. Calls share
    ``max_lanes`` long-lived streams ("lanes"), opened as needed: one by default, which
    batches most (more lanes let a call go out while a write is under way, but split the
    batches; at saturation two lanes cost 3–16 % of throughput, bench/results/profile-notes.md).
    A broken stream fails the calls in flight on it with ``PeerUnavailableError`` (as a
    dropped unary call would) and is replaced on the next call. A peer that does not serve
    the stream method (a node built on the unary protocol only) sets ``unsupported``, and
    :meth:`send` uses the unary RPC.
    """

    def __init__(self, channel: grpc.aio.Channel, method: str, *, hop: str, max_lanes: int = 1) -> None:
        self._m = m = _METHODS[method]
        self._open = channel.stream_stream(
            method, request_serializer=m.request.SerializeToString, response_deserializer=m.reply.FromString)
        self._unary = channel.unary_unary(m.unary, request_serializer=m.unary_request.SerializeToString,
                                          response_deserializer=m.unary_reply.FromString)
        self.hop = hop
        self.max_lanes = max_lanes
        self.unsupported = False
        self._lanes: list[_Lane] = []
        self._ids = itertools.count(1)
        self._turn = 0

    @property
    def streams_open(self) -> int:
        """How many streams are open now."""
        return len(self._lanes)

    def _lane(self) -> _Lane:
        for lane in self._lanes:
            if not lane.writing:
                return lane
        if len(self._lanes) < self.max_lanes:
            lane = _Lane(self._open())
            lane.reader = asyncio.ensure_future(self._read(lane))
            self._lanes.append(lane)
            return lane
        self._turn = (self._turn + 1) % len(self._lanes)
        return self._lanes[self._turn]

    async def _read(self, lane: _Lane) -> None:
        error: TongbanError | None = None
        try:
            async for frame in lane.call:
                lane.last_rx = time.monotonic()
                for i, answer in enumerate(frame.answers):
                    if i and i % _PIPELINE == 0:  # after every 16 answers handed on
                        await asyncio.sleep(0)
                    fut = lane.pending.get(answer.call_id)
                    if fut is None or fut.done():
                        if answer.call_id == 0:
                            log.warning("%s could not decode a message of ours: %s", self.hop,
                                        answer.refusal.message)
                        continue  # the caller gave up waiting
                    if answer.WhichOneof("outcome") == self._m.answer_field:
                        fut.set_result(getattr(answer, self._m.answer_field))
                    else:
                        r = answer.refusal
                        fut.set_exception(error_from_status(r.status, r.message, r.reason, hop=self.hop))
            error = PeerUnavailableError(f"{self.hop} unavailable: it closed the stream")
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
            error = PeerUnavailableError(f"{self.hop} unavailable: stream closed by this node")
            raise
        finally:
            if lane in self._lanes:
                self._lanes.remove(lane)
            for fut in lane.pending.values():
                if not fut.done():
                    fut.set_exception(error or PeerUnavailableError(f"{self.hop} unavailable: stream closed"))
                    fut.exception()  # retrieved: a caller that already left must not log it

    async def send(self, payload: Any, timeout_s: float, *, stream: bool = True) -> Any:
        """One request to this peer (an envelope; a SubmitRequest on the window's stream),
        its answer within ``timeout_s``: over the streams, or as one unary call when
        ``stream`` is False or the peer has no stream method (then a request refused as
        UNIMPLEMENTED on the stream, never seen, goes unary)."""
        if stream and not self.unsupported:
            try:
                return await self.call(payload, timeout_s)
            except TongbanError:
                if not self.unsupported:
                    raise
        try:
            return self._m.unwrap(await self._unary(self._m.wrap(payload), timeout=timeout_s))
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, hop=self.hop) from None

    async def call(self, payload: Any, timeout_s: float) -> Any:
        """Send one request over the streams and wait at most ``timeout_s`` for its answer."""
        call_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        lane = self._lane()
        lane.pending[call_id] = fut
        sent_at = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                lane.queue.append(self._m.call(call_id=call_id, timeout_ms=max(1, int(timeout_s * 1000)),
                                               **{self._m.call_field: payload}))
                if not lane.writing:  # else the write under way takes it along next
                    lane.writing = True
                    writer = asyncio.ensure_future(self._write(lane))  # not cancelled with this call
                    _RUNNING.add(writer)
                    writer.add_done_callback(_RUNNING.discard)
                return await fut
        except TimeoutError:
            if self._m.silence_is_death and lane.last_rx < sent_at and lane in self._lanes:
                lane.call.cancel()  # nothing at all came back: the stream is presumed dead
            raise TimedOutError(f"{self.hop} timed out: no answer within {timeout_s:g} s") from None
        finally:
            del lane.pending[call_id]

    async def _write(self, lane: _Lane) -> None:
        """Write everything queued on ``lane``, as one message per write, until
        nothing is left (calls queued meanwhile by others ride on the next one)."""
        try:
            while lane.queue:
                batch, lane.queue = lane.queue[:_MAX_PER_MESSAGE], lane.queue[_MAX_PER_MESSAGE:]
                try:
                    await lane.call.write(self._m.request(calls=batch))
                except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
                    return  # the stream is ending: its reader fails the calls with the reason
        finally:
            lane.writing = False

    async def close(self) -> None:
        lanes, self._lanes = self._lanes, []
        for lane in lanes:
            lane.call.cancel()
        for lane in lanes:
            if lane.reader is not None:
                try:
                    await lane.reader
                except asyncio.CancelledError:
                    pass
