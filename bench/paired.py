"""Interleaved pairs: the relay and tongban measured turn about, each ratio from one pair.

The sweeps of (a) and (b) run minutes apart, and this kind of machine changes speed by
a third between minutes (bench/results/profile-notes.md): a ratio of two sweeps carries
that drift. Here both set-ups are up at once (the idle one waits on its sockets) and
the load generator of each runs in turn: relay at its best concurrency, tongban at its
best, relay one at a time, tongban one at a time, repeated. Each round gives one
throughput ratio and one one-at-a-time p50 ratio from points seconds apart; the median
over the rounds is the drift-robust check beside the issue's sweep-based targets.

When the candidate passes crowned a setting for (c), it is a third set-up in the same
rounds (at tongban's concurrency, then one at a time; tongban and the candidate swap
places every other round, ``order``):
its ratio to the relay and to the default mode come from points seconds apart too, and
the median of the latter decides whether it is (c) (bench/report.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.cluster import Cluster, NodeOptions, copy_world, province_groups
from bench.measure import median, ratio

__all__ = ["Candidate", "measure_pairs", "summarise_rounds"]


@dataclass(frozen=True)
class Candidate:
    """The (c) candidate to measure beside the default: its label, node options and whether
    both provinces share one process."""

    label: str
    options: NodeOptions
    one_process: bool


def _round(ra: dict[str, Any], rb: dict[str, Any], sa: dict[str, Any], sb: dict[str, Any],
           rc: dict[str, Any] | None = None, sc: dict[str, Any] | None = None) -> dict[str, Any]:
    """One round's figures and ratios from its points (relay, tongban, candidate)."""
    points = {"relay": ra, "tongban": rb, "relay_serial": sa, "tongban_serial": sb}
    r: dict[str, Any] = {"relay_per_s": ra["throughput_per_s"], "tongban_per_s": rb["throughput_per_s"],
                         "relay_serial_p50_ms": sa["latency"]["p50_ms"],
                         "tongban_serial_p50_ms": sb["latency"]["p50_ms"]}
    r["throughput_ratio"] = ratio(r["tongban_per_s"], r["relay_per_s"])
    r["serial_p50_ratio"] = ratio(r["tongban_serial_p50_ms"], r["relay_serial_p50_ms"])
    if rc is not None and sc is not None:
        points |= {"candidate": rc, "candidate_serial": sc}
        r |= {"candidate_per_s": rc["throughput_per_s"], "candidate_serial_p50_ms": sc["latency"]["p50_ms"]}
        r["candidate_throughput_ratio"] = ratio(r["candidate_per_s"], r["relay_per_s"])
        r["candidate_serial_p50_ratio"] = ratio(r["candidate_serial_p50_ms"], r["relay_serial_p50_ms"])
        r["candidate_vs_default"] = ratio(r["candidate_per_s"], r["tongban_per_s"])
    r["errors"] = {k: dict(v["errors"]) for k, v in points.items() if v["errors"]}
    return r


#: The medians kept over the rounds: (b) against the relay, and the candidate's when measured.
_MEDIANS = {"throughput_ratio_median": "throughput_ratio", "serial_p50_ratio_median": "serial_p50_ratio",
            "candidate_throughput_ratio_median": "candidate_throughput_ratio",
            "candidate_serial_p50_ratio_median": "candidate_serial_p50_ratio",
            "candidate_vs_default_median": "candidate_vs_default"}


def summarise_rounds(rounds: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median of each ratio over the rounds that have it (None where none has); the
    candidate's medians only when the rounds measured a candidate."""
    out: dict[str, float | None] = {}
    measured_candidate = any("candidate_per_s" in r for r in rounds)
    for name, key in _MEDIANS.items():
        if key.startswith("candidate") and not measured_candidate:
            continue
        out[name] = median([r.get(key) for r in rounds])
    return out


def measure_pairs(*, rounds: int, work: Path, pki: Path, world: Path, pair: tuple[str, str],
                  base_cfg: dict[str, Any], sizes: dict[str, Any], relay_c: int, tongban_c: int,
                  duration_s: float, serial_duration_s: float, warmup_s: float,
                  say: Callable[[str], None], candidate: Candidate | None = None) -> dict[str, Any]:
    origin, target = pair
    say(f"paired: relay (c={relay_c}) and tongban (c={tongban_c})"
        + (f" and the (c) candidate {candidate.label!r} (c={tongban_c})" if candidate else "")
        + f" turn about, then each one at a time; {rounds} round{'' if rounds == 1 else 's'}")
    out: list[dict[str, Any]] = []
    with ExitStack() as stack:
        a = stack.enter_context(Cluster(work / "paired-relay"))
        b = stack.enter_context(Cluster(work / "paired-tongban"))
        la = a.start_baseline(pki=pki, backend_code=target, sizes=sizes, base_cfg=base_cfg)
        b.start_tongban(pki=pki, data=copy_world(world, work / "paired-tongban" / "data", [origin, target]),
                        groups=[[origin], [target]])
        lb = b.loadgen({**base_cfg, "driver": "exchange"})
        lc = None
        if candidate is not None:
            c = stack.enter_context(Cluster(work / "paired-candidate"))
            c.start_tongban(pki=pki, data=copy_world(world, work / "paired-candidate" / "data", [origin, target]),
                            groups=province_groups([origin, target], one_process=candidate.one_process),
                            options=candidate.options)
            lc = c.loadgen({**base_cfg, "driver": "exchange", **candidate.options.client_config()},
                           env=candidate.options.grpc_env())

        def closed(lg: Any, concurrency: int, seconds: float) -> dict[str, Any]:
            return lg.run("closed", concurrency=concurrency, duration_s=seconds, warmup_s=warmup_s)

        for i in range(rounds):
            # tongban and the candidate swap places every other round, so neither always
            # follows the other (what one leaves behind, a trend within the round)
            order = [("tongban", lb), ("candidate", lc)] if lc else [("tongban", lb)]
            order = order[::-1] if i % 2 else order
            ra = closed(la, relay_c, duration_s)
            busy = {name: closed(lg, tongban_c, duration_s) for name, lg in order}
            sa = closed(la, 1, serial_duration_s)
            serial = {name: closed(lg, 1, serial_duration_s) for name, lg in order}
            r = _round(ra, busy["tongban"], sa, serial["tongban"], busy.get("candidate"), serial.get("candidate"))
            r["order"] = ["relay", *(name for name, _ in order)]
            out.append(r)
            say(f"  round {i + 1}: relay {r['relay_per_s']}/s, tongban {r['tongban_per_s']}/s -> "
                f"{r['throughput_ratio']}"
                + (f", candidate {r['candidate_per_s']}/s -> {r['candidate_throughput_ratio']} "
                   f"({r['candidate_vs_default']} x tongban)" if lc else "")
                + f"; one at a time {r['relay_serial_p50_ms']} vs {r['tongban_serial_p50_ms']} ms -> "
                f"{r['serial_p50_ratio']}"
                + (f", candidate {r['candidate_serial_p50_ms']} ms" if lc else ""))
        for lg in (la, lb, lc):
            if lg is not None:
                lg.quit()

    return {"rounds": out, "relay_concurrency": relay_c, "tongban_concurrency": tongban_c,
            **({"candidate": candidate.label} if candidate else {}), **summarise_rounds(out)}
