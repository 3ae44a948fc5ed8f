"""Interleaved pairs: the relay and tongban measured turn about, each ratio from one pair.

The sweeps of (a) and (b) run minutes apart, and this kind of machine changes speed by
a third between minutes (bench/results/profile-notes.md): a ratio of two sweeps carries
that drift. Here both set-ups are up at once (the idle one waits on its sockets) and
the load generator of each runs in turn: relay at its best concurrency, tongban at its
best, relay one at a time, tongban one at a time, repeated. Each round gives one
throughput ratio and one one-at-a-time p50 ratio from points seconds apart; the median
over the rounds is the drift-robust check beside the issue's sweep-based targets.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable

from bench.cluster import Cluster, copy_world

__all__ = ["measure_pairs"]


def measure_pairs(*, rounds: int, work: Path, pki: Path, world: Path, pair: tuple[str, str],
                  base_cfg: dict[str, Any], sizes: dict[str, Any], relay_c: int, tongban_c: int,
                  duration_s: float, serial_duration_s: float, warmup_s: float,
                  say: Callable[[str], None]) -> dict[str, Any]:
    origin, target = pair
    say(f"paired: relay (c={relay_c}) and tongban (c={tongban_c}) turn about, then both one at a time; "
        f"{rounds} round{'' if rounds == 1 else 's'}")
    out: list[dict[str, Any]] = []
    with Cluster(work / "paired-relay") as a, Cluster(work / "paired-tongban") as b:
        a.start_relay(pki=pki, backend_code=target, response_bytes=sizes["response_bytes"])
        b.start_tongban(pki=pki, data=copy_world(world, work / "paired-tongban" / "data", [origin, target]),
                        groups=[[origin], [target]])
        la = a.loadgen({**base_cfg, "driver": "relay", "request_bytes": sizes["request_bytes"]})
        lb = b.loadgen({**base_cfg, "driver": "exchange"})
        for i in range(rounds):
            ra = la.run("closed", concurrency=relay_c, duration_s=duration_s, warmup_s=warmup_s)
            rb = lb.run("closed", concurrency=tongban_c, duration_s=duration_s, warmup_s=warmup_s)
            sa = la.run("closed", concurrency=1, duration_s=serial_duration_s, warmup_s=warmup_s)
            sb = lb.run("closed", concurrency=1, duration_s=serial_duration_s, warmup_s=warmup_s)
            r = {"relay_per_s": ra["throughput_per_s"], "tongban_per_s": rb["throughput_per_s"],
                 "relay_serial_p50_ms": sa["latency"]["p50_ms"], "tongban_serial_p50_ms": sb["latency"]["p50_ms"],
                 "errors": {k: dict(v["errors"]) for k, v in (("relay", ra), ("tongban", rb),
                                                              ("relay_serial", sa), ("tongban_serial", sb))
                            if v["errors"]}}
            r["throughput_ratio"] = round(r["tongban_per_s"] / r["relay_per_s"], 3) if r["relay_per_s"] else None
            r["serial_p50_ratio"] = (round(r["tongban_serial_p50_ms"] / r["relay_serial_p50_ms"], 3)
                                     if r["relay_serial_p50_ms"] else None)
            out.append(r)
            say(f"  round {i + 1}: relay {r['relay_per_s']}/s, tongban {r['tongban_per_s']}/s -> "
                f"{r['throughput_ratio']}; one at a time {r['relay_serial_p50_ms']} vs "
                f"{r['tongban_serial_p50_ms']} ms -> {r['serial_p50_ratio']}")
        la.quit()
        lb.quit()

    def median(key: str) -> float | None:
        values = [r[key] for r in out if r[key] is not None]
        return round(statistics.median(values), 3) if values else None

    return {"rounds": out, "relay_concurrency": relay_c, "tongban_concurrency": tongban_c,
            "throughput_ratio_median": median("throughput_ratio"),
            "serial_p50_ratio_median": median("serial_p50_ratio")}
