"""A diagnostic beside the targets: tongban's exchange without the hub on its path.

(b) and (c) go province A -> hub -> province B, against the baseline's
client -> relay -> backend. Where the hub's topology is ``direct`` (X-Road style,
``tongban node hub --topology direct``), A calls B's ``NodeService.HandleStream``
itself: the same sealed ecert.fetch, B's every check, its ledger and its signed answer,
A's checks of the answer, but no hub hop. That is not the exchange the issue's (c)
target is about (no relay on the path, so it is never a (c) candidate); it says how much
of (b)'s gap to the relay is the hub's hop and how much tongban's own protocol work.

So three set-ups are measured turn about, point by point (the three at one concurrency,
then the three one at a time), each round in the other order:

- ``relay``: the baseline, client -> relay -> backend (the same servers as (a));
- ``bare``: the same client calling the baseline's backend itself, unsigned (a bare
  grpc.aio unary call between the two parties, the like-for-like yardstick);
- ``direct``: tongban's load generator as A (it signs and checks, keeps no ledger, as in
  (b)) -> B's HandleStream (B checks, ledgers and signs its answer).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from certs.pki import HUB_CODE
from exchange.ledger import read_entries

from bench.cluster import GRPC_DEFAULT, Cluster, NodeOptions, copy_world
from bench.measure import Say, median, point, ratio

__all__ = ["format_direct", "ledgered_path", "measure_direct", "summarise_direct"]

_ROUNDS, _ROUNDS_QUICK = 2, 1
_ORDER = ("relay", "bare", "direct")


def measure_direct(*, quick: bool, work: Path, pki: Path, world: Path, pair: tuple[str, str],
                   base_cfg: dict[str, Any], sizes: dict[str, Any], concurrency: int, duration_s: float,
                   serial_duration_s: float, warmup_s: float, say: Say) -> dict[str, Any]:
    """The three set-ups up at once, measured turn about; the raw points of every round."""
    origin, target = pair
    say(f"direct exchange (diagnostic, no hub on the path): A -> B's HandleStream with the hub's topology "
        f"'direct', against the relay and a bare unsigned call to its backend, turn about at c={concurrency} "
        "and c=1")
    rounds: list[dict[str, Any]] = []
    with Cluster(work / "direct-relay") as cr, Cluster(work / "direct") as cd:
        cr.start_relay(pki=pki, backend_code=target, response_bytes=sizes["response_bytes"])
        raw_cfg = {**base_cfg, "driver": "relay", "request_bytes": sizes["request_bytes"]}
        loads = {"relay": cr.loadgen(raw_cfg, env=GRPC_DEFAULT),
                 "bare": cr.loadgen({**raw_cfg, "endpoint": cr.endpoints[target], "peer": target},
                                    env=GRPC_DEFAULT)}
        cd.start_tongban(pki=pki, data=copy_world(world, work / "direct" / "data", [origin, target]),
                         groups=[[origin], [target]], options=NodeOptions(topology="direct"))
        loads["direct"] = cd.loadgen({**base_cfg, "driver": "exchange", "direct": True})
        for i in range(_ROUNDS_QUICK if quick else _ROUNDS):
            order = _ORDER if i % 2 == 0 else _ORDER[::-1]
            r: dict[str, Any] = {"order": list(order)}
            for key in order:  # point by point: the three at `concurrency`, then the three one at a time
                r[key] = point(loads[key], "closed", concurrency=concurrency, duration_s=duration_s,
                               warmup_s=warmup_s)
            for key in order:
                r[key + "_serial"] = point(loads[key], "closed", concurrency=1, duration_s=serial_duration_s,
                                           warmup_s=warmup_s)
            say("    round %d: %s" % (i + 1, ", ".join(
                f"{k} {r[k]['throughput_per_s']:.0f}/s, c=1 p50 {r[k + '_serial']['latency']['p50_ms']} ms"
                for k in order)))
            rounds.append(r)
        for lg in loads.values():
            lg.quit()
    # The nodes have stopped and flushed: where the direct exchange's requests were ledgered.
    return {"concurrency": concurrency, "rounds": rounds, "path": ledgered_path(work / "direct" / "data", target)}


def ledgered_path(data: Path, target: str) -> dict[str, Any]:
    """What the ledgers say the direct set-up's ecert.fetch requests took: the TLS peers B
    received them from (A's code when no hub was on the path) and the hub's ecert.fetch rows
    (none)."""
    received = Counter(r.entry.peer for r in read_entries(data / f"{target}.sqlite", direction="received",
                                                          flow="ecert.fetch"))
    return {"b_received_from": dict(sorted(received.items())),
            "hub_rows": len(read_entries(data / f"{HUB_CODE}.sqlite", flow="ecert.fetch"))}


def summarise_direct(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """``direct_exchange`` in latest.json: each set-up's medians over the rounds, and the
    direct exchange's ratios to the relay and to the bare call (from the same rounds)."""
    if not raw or not raw.get("rounds"):
        return None
    rounds = raw["rounds"]
    out: dict[str, Any] = {
        "what": "A -> B's NodeService.HandleStream, the hub's topology 'direct': no hub on the path, so not a "
                "(c) candidate; 'bare' is the baseline's client calling its backend itself (unsigned)",
        "concurrency": raw["concurrency"], "rounds": len(rounds), "path": raw.get("path")}
    for key in _ORDER:
        out[key] = {
            "throughput_per_s": median([r[key]["throughput_per_s"] for r in rounds]),
            "serial_p50_ms": median([r[key + "_serial"]["latency"]["p50_ms"] for r in rounds]),
            "cpu_us_per_exchange": median([sum(r[key].get("cpu_us_per_call", {}).values()) or None
                                            for r in rounds]),
            "errors": sum(sum(r[k]["errors"].values()) for r in rounds for k in (key, key + "_serial"))}
    for base in ("relay", "bare"):
        out[f"ratio_vs_{base}"] = {
            "throughput": median([ratio(r["direct"]["throughput_per_s"], r[base]["throughput_per_s"])
                                   for r in rounds]),
            "serial_p50": median([ratio(r["direct_serial"]["latency"]["p50_ms"],
                                         r[base + "_serial"]["latency"]["p50_ms"]) for r in rounds])}
    return out


def format_direct(d: dict[str, Any] | None) -> list[str]:
    """The table's lines for ``direct_exchange``."""
    if not d:
        return []
    figs = ", ".join(f"{k} {d[k]['throughput_per_s']:.0f}/s, c=1 p50 {d[k]['serial_p50_ms']} ms"
                     f" ({d[k]['cpu_us_per_exchange']} µs CPU per exchange)" for k in _ORDER)
    rr, rb = d["ratio_vs_relay"], d["ratio_vs_bare"]
    return [f"direct exchange, no hub on the path (diagnostic, not a (c) candidate; c={d['concurrency']}, "
            f"medians of {d['rounds']} rounds turn about): {figs}",
            f"  direct vs relay: throughput {rr['throughput']} x, one at a time {rr['serial_p50']} x; "
            f"vs a bare unsigned call between the same two parties: throughput {rb['throughput']} x, "
            f"one at a time {rb['serial_p50']} x"] + ([
            f"  ledgers: B received the requests from {path['b_received_from']}; the hub ledgered "
            f"{path['hub_rows']} of them"] if (path := d.get("path")) else [])
