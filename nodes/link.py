"""The link shim: one-way delay, jitter, loss and partitions between a province
and the hub, applied by the nodes' own clients so no root (or netem) is needed.

Each province has one link to the hub. A call over it crosses the link twice
(request and response); each crossing waits ``delay ± jitter``. A lost message is
modelled the way TCP experiences it: the segment is retransmitted after a
timeout (at least 200 ms, or twice the link's round trip), so loss shows as
latency, not as an application error. A partitioned link delivers nothing: the
call waits until its deadline and then fails as unavailable.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace

from exchange.errors import PeerUnavailableError

__all__ = ["Link", "LinkShim", "MIN_RTO_MS"]

#: Linux's minimum TCP retransmission timeout.
MIN_RTO_MS = 200.0


@dataclass(frozen=True, slots=True)
class Link:
    """State of one province's link to the hub."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    partitioned: bool = False


class LinkShim:
    """Per-province link states of one process, changed at run time by faults."""

    def __init__(self, links: dict[str, Link] | None = None, *, rng: random.Random | None = None) -> None:
        self.links: dict[str, Link] = dict(links or {})
        self.rng = rng or random.Random()

    def set(self, code: str, **changes: float | bool) -> Link:
        link = replace(self.links.get(code, Link()), **changes)  # type: ignore[arg-type]
        self.links[code] = link
        return link

    def one_way_ms(self, code: str) -> float:
        """Time for one message to cross ``code``'s link (without partitions)."""
        link = self.links.get(code)
        if link is None:
            return 0.0
        ms = link.delay_ms
        if link.jitter_ms:
            ms += self.rng.uniform(-link.jitter_ms, link.jitter_ms)
        if link.loss:
            rto = max(MIN_RTO_MS, 4 * link.delay_ms)
            while self.rng.random() < link.loss:
                ms += rto
                rto *= 2
        return max(ms, 0.0)

    async def cross(self, code: str, *, timeout_s: float) -> None:
        """Wait for one crossing of ``code``'s link; raise if it is partitioned."""
        link = self.links.get(code)
        if link is None:
            return
        if link.partitioned:
            await asyncio.sleep(timeout_s)
            raise PeerUnavailableError(f"link between {code} and the hub is partitioned: nothing arrived "
                                       f"within {timeout_s:g} s")
        ms = self.one_way_ms(code)
        if ms > 0:
            await asyncio.sleep(ms / 1000.0)
