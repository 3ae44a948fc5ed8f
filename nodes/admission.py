"""Admission of incoming requests: idempotent retries and load shedding.

- **Retries.** A request that arrives again byte for byte (same message id, same
  digest) from the same peer while its first delivery is in flight or answered
  gets the first delivery's response: it is not processed twice. A first
  delivery that failed before it was answered is forgotten (also by the replay
  window), so its retry is processed as if it were new. A different envelope
  with a known message id is still a replay and refused. The memory is bounded
  by the replay window (entries expire with their message). Across a crash the
  cache is gone: read-only flows are answered again (same answer), and
  state-changing flows (ecert.transfer) are idempotent by their own durable key.
- **Shedding.** A node with ``max_inflight`` requests in progress, or the hub with
  ``max_inflight_per_target`` requests waiting on one province, refuses the next
  with RESOURCE_EXHAUSTED at once instead of queueing it, so one slow province
  cannot use up the hub's capacity for everyone else.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from exchange.errors import OverloadedError
from exchange.opener import peek_header
from exchange.dsse import DsseEnvelope
from exchange.replay import ReplayWindow
from tongban.v1 import envelope_pb2

__all__ = ["Admission", "Ticket"]


@dataclass
class _Entry:
    digest: bytes
    peer: str
    expires_ns: int
    future: asyncio.Future[envelope_pb2.Envelope]


@dataclass
class Ticket:
    """One admitted request: finish it with ``done`` or ``failed``, then ``release``."""

    admission: Admission
    message_id: str
    target: str = ""
    released: bool = field(default=False)

    def done(self, response: envelope_pb2.Envelope) -> None:
        e = self.admission.entries.get(self.message_id)
        if e is not None and not e.future.done():
            e.future.set_result(response)

    def failed(self, error: BaseException) -> None:
        e = self.admission.entries.pop(self.message_id, None)
        if e is not None and not e.future.done():
            e.future.set_exception(error)
            e.future.exception()  # retrieved: waiting retries re-raise it, nobody else must
        self.admission.replay.forget(self.message_id)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission.inflight -= 1
            if self.target:
                self.admission.per_target[self.target] -= 1


class Admission:
    def __init__(self, replay: ReplayWindow, *, max_inflight: int = 512, max_inflight_per_target: int = 128,
                 max_entries: int = 50_000) -> None:
        self.replay = replay
        self.max_inflight = max_inflight
        self.max_per_target = max_inflight_per_target
        self.max_entries = max_entries
        self.inflight = 0
        self.per_target: Counter[str] = Counter()
        self.entries: OrderedDict[str, _Entry] = OrderedDict()
        self.retries_served = 0
        self.shed = 0
        self._admitted = 0

    @staticmethod
    def _digest(pb: envelope_pb2.Envelope) -> bytes:
        return hashlib.sha256(pb.SerializeToString()).digest()

    def retry_of(self, pb: envelope_pb2.Envelope, peer: str, now_ns: int,
                 digest: bytes | None = None) -> asyncio.Future[envelope_pb2.Envelope] | None:
        """The first delivery's future if ``pb`` is an exact retry from the same peer
        (``digest``: SHA-256 of its serialised bytes, when the caller has it already)."""
        header = peek_header(DsseEnvelope.from_pb(pb))
        if header is None:
            return None
        e = self.entries.get(header.message_id)
        if e is None or e.peer != peer or now_ns > e.expires_ns or e.digest != (digest or self._digest(pb)):
            return None
        self.retries_served += 1
        return e.future

    def check_capacity(self) -> None:
        if self.inflight >= self.max_inflight:
            self.shed += 1
            raise OverloadedError(f"node at capacity: {self.inflight} requests in progress, "
                                  f"expected fewer than {self.max_inflight}; retry later")

    def admit(self, pb: envelope_pb2.Envelope, *, message_id: str, peer: str, expires_ns: int,
              target: str = "", digest: bytes | None = None) -> Ticket:
        """Admit a verified request (after its signature and replay checks)."""
        if self.inflight >= self.max_inflight or (target and self.per_target[target] >= self.max_per_target):
            self.replay.forget(message_id)  # refused unprocessed: a later retry is welcome
            self.check_capacity()
            self.shed += 1
            raise OverloadedError(f"{self.per_target[target]} requests already wait on {target}, "
                                  f"expected fewer than {self.max_per_target}; retry later")
        self.inflight += 1
        if target:
            self.per_target[target] += 1
        self.entries[message_id] = _Entry(digest or self._digest(pb), peer, expires_ns,
                                          asyncio.get_running_loop().create_future())
        self._admitted += 1
        if self._admitted % 256 == 0:  # answers are kept only while their message could be retried
            self.prune(time.time_ns())
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
        return Ticket(self, message_id, target)

    def prune(self, now_ns: int) -> None:
        """Forget answered entries whose message has expired (oldest first)."""
        while self.entries:
            mid, e = next(iter(self.entries.items()))
            if e.expires_ns >= now_ns or not e.future.done():
                break
            del self.entries[mid]

