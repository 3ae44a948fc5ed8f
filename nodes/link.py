"""The link shim: one-way delay, jitter, loss and partitions between a province
and the hub, applied by the nodes' own clients so no root (or netem) is needed.

Each province has one link to the hub. A call over it crosses the link twice
(request and response); each crossing waits ``delay ± jitter``. A lost message is
modelled the way TCP experiences it: the segment is retransmitted after a
timeout (at least 200 ms, or twice the link's round trip), so loss shows as
latency, not as an application error. A partitioned link delivers nothing while
it lasts: a message waits for it to heal (as TCP keeps retransmitting) and then
crosses; if it has not healed by the call's deadline, the call fails as unavailable.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from exchange.errors import PeerUnavailableError

__all__ = ["MIN_RTO_MS", "Link", "LinkShim", "Paths"]

#: Linux's minimum TCP retransmission timeout.
MIN_RTO_MS = 200.0


@dataclass(frozen=True, slots=True)
class Link:
    """State of one province's link to the hub."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    partitioned: bool = False


@dataclass(frozen=True, slots=True)
class Paths:
    """Delay model of direct province-to-province paths (regional/direct topologies).

    ``distance``: ``base_ms + route_factor * d_km / 200`` over the two capitals;
    ``fixed``: ``delay_ms``. A province whose own link is slower than its model
    delay to the hub (an override or a fault) slows every path it is on.
    """

    mode: str = "fixed"
    delay_ms: float = 0.0
    base_ms: float = 1.0
    route_factor: float = 1.5
    hub_at: str = "110000"

    def between(self, a: str, b: str) -> float:
        if self.mode != "distance":
            return self.delay_ms
        from exchange.geo import great_circle_km, province

        pa, pb = province(a), province(b)
        km = great_circle_km(pa.capital_lat, pa.capital_lon, pb.capital_lat, pb.capital_lon)
        return self.base_ms + self.route_factor * km / 200.0


class LinkShim:
    """Per-province link states of one process, changed at run time by faults."""

    def __init__(self, links: dict[str, Link] | None = None, *, paths: Paths | None = None,
                 rng: random.Random | None = None) -> None:
        self.links: dict[str, Link] = dict(links or {})
        self.paths = paths or Paths()
        self.rng = rng or random.Random()
        self._pair_ms: dict[tuple[str, str], float] = {}
        #: per partitioned province: set when its partition heals (what waiting messages wait on)
        self._healed: dict[str, asyncio.Event] = {}

    def set(self, code: str, **changes: float | bool) -> Link:
        link = replace(self.links.get(code, Link()), **changes)  # type: ignore[arg-type]
        self.links[code] = link
        if "partitioned" in changes:
            healed = self._healed.setdefault(code, asyncio.Event())
            if link.partitioned:
                healed.clear()
            else:
                healed.set()
        return link

    async def _until_healed(self, codes: tuple[str, ...], timeout_s: float, refusal: Callable[[str], str]) -> None:
        """Wait (within ``timeout_s`` in all) for the partitions of ``codes`` to heal;
        PeerUnavailableError(``refusal(code)``) for one that has not healed by then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        for code in codes:
            link = self.links.get(code)
            if link is None or not link.partitioned:
                continue
            healed = self._healed.setdefault(code, asyncio.Event())
            try:
                await asyncio.wait_for(healed.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise PeerUnavailableError(refusal(code)) from None

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

    def _pair(self, a: str, b: str) -> float:
        key = (a, b) if a < b else (b, a)
        ms = self._pair_ms.get(key)
        if ms is None:
            ms = self._pair_ms[key] = self.paths.between(a, b)
        return ms

    def pair_one_way_ms(self, a: str, b: str) -> float:
        """One crossing of the direct path between provinces ``a`` and ``b``."""
        ms, jitter, keep = self._pair(a, b), 0.0, 1.0
        for code in (a, b):
            link = self.links.get(code)
            if link is None:
                continue
            if link.delay_ms > self._pair(code, self.paths.hub_at) + 0.5:
                ms = max(ms, link.delay_ms)  # this province's access is slow
            jitter = max(jitter, link.jitter_ms)
            keep *= 1.0 - link.loss
        if jitter:
            ms += self.rng.uniform(-jitter, jitter)
        if keep < 1.0:
            rto = max(MIN_RTO_MS, 4 * ms)
            while self.rng.random() > keep:
                ms += rto
                rto *= 2
        return max(ms, 0.0)

    async def cross_pair(self, a: str, b: str, *, timeout_s: float) -> None:
        """Wait for one crossing of the direct path between ``a`` and ``b``."""
        await self._until_healed((a, b), timeout_s, lambda code: f"{code} is partitioned: nothing arrived from "
                                 f"the path {a}–{b} within {timeout_s:g} s")
        ms = self.pair_one_way_ms(a, b)
        if ms > 0:
            await asyncio.sleep(ms / 1000.0)

    async def cross(self, code: str, *, timeout_s: float) -> None:
        """Wait for one crossing of ``code``'s link; raise if it is partitioned."""
        link = self.links.get(code)
        if link is None:
            return
        if link.partitioned:
            await self._until_healed((code,), timeout_s, lambda c: f"link between {c} and the hub is partitioned: "
                                     f"nothing arrived within {timeout_s:g} s")
        ms = self.one_way_ms(code)
        if ms > 0:
            await asyncio.sleep(ms / 1000.0)
