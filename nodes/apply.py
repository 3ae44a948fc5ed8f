"""tongban.apply: a 跨省通办 application made at a province's window.

The asking province (B) runs each step as an ordinary signed exchange:
identity verification of the applicant (or a business's legal representative)
at the home province, each certificate the item needs from the province that
issued it, and for 多地联办 the home province's signed confirmation that it
acted. The application's trips (跑动次数) follow from the item's mode, the
channel the applicant used, and whether every step succeeded online:

=====================  =========================  ==================================
mode                   every step succeeded       a step failed
=====================  =========================  ==================================
全程网办, online        0 trips                    1 trip: falls back to 代收代办
全程网办, at a window   1 trip                     2 trips: comes back with papers
异地代收代办 / 异地办理   1 trip                     2 trips
多地联办                1 trip (home confirms)     2 trips
=====================  =========================  ==================================

代收代办 (paper forwarded between provinces) adds modelled days of delay,
reported apart from network latency.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from exchange.errors import HeaderError
from exchange.kstb import ITEMS, Item
from tongban.v1 import header_pb2, services_pb2

if TYPE_CHECKING:
    from nodes.province import ProvinceNode

__all__ = ["apply", "trips_for", "window_item"]

_GOOD = {"identity.verify": {"match"}, "ecert.fetch": {"ok"}, "joint.act": {"confirmed"}}
_ITEMS = {i.name: i for i in ITEMS}


def window_item(name: str) -> Item:
    """The catalogue item a window's application names; a window's mistake is INVALID_ARGUMENT."""
    found = _ITEMS.get(name)
    if found is None:
        raise HeaderError(f"tongban.apply item: expected the name of one of the {len(ITEMS)} items of the "
                          f"跨省通办 catalogue (e.g. {ITEMS[0].name!r}), found {repr(name[:60]) if name else 'none'}")
    return found


def trips_for(mode: str, channel: str, all_ok: bool) -> tuple[int, bool]:
    """(trips, handled by 代收代办) for an application."""
    if mode == "全程网办" and channel == "online":
        return (0, False) if all_ok else (1, True)
    forwarded = mode in ("异地代收代办", "多地联办")
    return (1 if all_ok else 2), forwarded or not all_ok


def _delay_days(serial: str) -> float:
    """Modelled 代收代办 forwarding time: 2 to 7 days, fixed per application."""
    h = int.from_bytes(hashlib.sha256(serial.encode()).digest()[:2], "big")
    return round(2 + 5 * h / 65535, 1)


async def apply(node: ProvinceNode, req: services_pb2.SubmitRequest) -> services_pb2.SubmitResponse:
    """Run every step of one application and account for its trips."""
    item = window_item(req.item)
    channel = req.channel or "window"
    if channel not in ("online", "window"):
        raise HeaderError(f"tongban.apply channel: expected 'online' or 'window', found {channel[:40]!r}")
    if channel == "online" and not item.online:
        channel = "window"  # the item is not offered online
    directory = node.core.current_directory()
    types = {c.cert_type_name: c.cert_type for c in directory.pb.catalogue}
    started = time.perf_counter_ns()
    holder = req.subject.holder_id
    steps: list[tuple[str, services_pb2.SubmitRequest]] = [
        ("identity.verify", services_pb2.SubmitRequest(flow="identity.verify", name=req.name,
                                                       photo_sha256=req.photo_sha256,
                                                       subject=header_pb2.Subject(holder_id=req.applicant_id or holder)))]
    for name in item.certificates:
        steps.append(("ecert.fetch", services_pb2.SubmitRequest(
            flow="ecert.fetch", subject=header_pb2.Subject(holder_id=holder, cert_type=types.get(name, "")))))
    if item.mode == "多地联办":
        steps.append(("joint.act", services_pb2.SubmitRequest(flow="joint.act", item=item.name,
                                                             subject=header_pb2.Subject(holder_id=holder))))
    out = services_pb2.SubmitResponse()
    all_ok, outcome = True, "ok"
    for flow, step in steps:
        step.purpose = f"跨省通办 {item.name}"[:200]
        step.audit.CopyFrom(req.audit)
        step.audit.item_name = item.name
        step.trace_id = req.trace_id
        if flow == "ecert.fetch" and not step.subject.cert_type:
            out.steps.append(f"{flow}=not_in_catalogue")
            all_ok = False
            continue
        r = await node.submit(step)
        out.steps.append(f"{flow}={r.outcome}/{r.result}")
        if r.outcome != "ok":
            all_ok = False
            if outcome == "ok" and r.outcome != "ok":
                outcome = r.outcome  # a refused or failed exchange is a failure of the application too
        elif r.result not in _GOOD[flow]:
            all_ok = False
        out.trace_id = out.trace_id or r.trace_id
    trips, forwarded = trips_for(item.mode, channel, all_ok)
    out.outcome = outcome
    out.result = "online" if trips == 0 else ("daishou" if forwarded else "window")
    out.trips = trips
    out.delay_days = _delay_days(req.audit.business_serial or req.trace_id) if forwarded else 0.0
    out.latency_us = (time.perf_counter_ns() - started) // 1000
    return out
