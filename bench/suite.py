"""The benchmark run: baseline relay, tongban (b) and (c), options, scaling, memory, world.

Pairing (see bench/README.md): the baseline's client calls the relay as province A
(A's TLS certificate), the relay (hub's certificate) forwards to the backend (B's
certificate). tongban's client calls the hub exactly as province A does: it seals
each ecert.fetch with A's signing key, calls HubService.Exchange over mTLS as A; the
hub verifies, checks access, routes and forwards to B's NodeService.Handle; B
verifies, answers signed (certificate signed by B's issuing authority); the hub
verifies the answer; the client verifies it as A would. Hub, A and B are separate
processes, as relay and backend are. The same load generator code drives both, one
process per set-up; (a) and (b) are up at once and measured turn about, point by point
(bench/measure.py), so their ratios carry little of the machine's drift between minutes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from certs.pki import HUB_CODE, PROVINCE_CODES
from exchange._machine import busy_ticks, ticks_per_s
from exchange.cache import ensure_pki, ensure_world
from exchange.reconcile import reconcile

from bench.cluster import GRPC_DEFAULT, Cluster, NodeOptions, copy_world, province_groups, sample_jobs
from bench.direct import measure_direct
from bench.measure import Load, Plan, Say, measure, point, strip
from bench.paired import Candidate, measure_pairs
from bench.timeline import format_timeline, signature_costs, timeline_from_ledgers

__all__ = ["ORIGIN", "TARGET", "run_suite", "time_world_generation"]

#: The 3-node pair: province A (origin, Guangdong) asks province B (answerer, Sichuan).
ORIGIN, TARGET = "440000", "510000"
_BENCH_WORLD_SCALE = 1e-5
#: Rounds of the interleaved relay/tongban pairs (bench/paired.py).
_PAIRED_ROUNDS, _PAIRED_ROUNDS_QUICK = 3, 1
#: How (b')'s window client submits: as ``tongban run``'s load generator does (bench/loadgen.py).
_WINDOW_TRANSPORT = "stream"
#: Threads of the synchronous-server relay diagnostic ("a 4-thread sync server beat aio by about 70 % on echo").
_SYNC_THREADS = 4


def run_suite(plan: Plan, *, work: Path, cache: Path, say: Say) -> dict[str, Any]:
    """Every measurement of one run, as a JSON-ready dict."""
    out: dict[str, Any] = {"pair": {"origin": ORIGIN, "target": TARGET}}
    pki = ensure_pki(cache)
    world = ensure_world(cache, scale=_BENCH_WORLD_SCALE, seed=2021)
    jobs = sample_jobs(world, [(ORIGIN, TARGET)], 400, seed=1)
    base_cfg = {"pki": str(pki), "jobs": jobs, "origins": [ORIGIN], "timeout_s": 5.0,
                "warmup_s": 1.0 if not plan.quick else 0.5}
    pair_groups = [[ORIGIN], [TARGET]]

    say("sizing: tongban ecert.fetch messages on the wire")
    with Cluster(work / "probe") as c:
        c.start_tongban(pki=pki, data=copy_world(world, work / "probe" / "data", [ORIGIN, TARGET]),
                        groups=pair_groups)
        lg = c.loadgen({**base_cfg, "driver": "exchange"})
        sizes = strip(lg.run("probe", n=60))
        lg.quit()
    out["message_bytes"] = {"request": sizes["request_bytes"], "response": sizes["response_bytes"],
                            "what": "serialized ExchangeRequest / ExchangeResponse, mean over 60 calls"}
    say(f"  request {sizes['request_bytes']} B, response {sizes['response_bytes']} B")

    say("(a) baseline: grpc.aio unary relay, client -> relay -> backend, same mTLS and message sizes; and "
        "(b) tongban ecert.fetch through the hub, default mode: client as province A -> hub -> province B; "
        "both set-ups up at once and measured turn about, point by point")
    with Cluster(work / "relay") as ca, Cluster(work / "tongban") as c:
        la = ca.start_baseline(pki=pki, backend_code=TARGET, sizes=sizes, base_cfg=base_cfg)
        t = c.start_tongban(pki=pki, data=copy_world(world, work / "tongban" / "data", [ORIGIN, TARGET]),
                            groups=pair_groups)
        lg = c.loadgen({**base_cfg, "driver": "exchange"})
        both = measure([Load("relay", la), Load("tongban", lg, own=True, marks=True)], plan, say)
        la.quit()
        ca.children.stop()  # the relay's part is done: only tongban's processes below
        lg.quit()
        out["relay"] = both["relay"]
        out["tongban"] = {**both["tongban"], "nodes_ready_s": round(t, 2)}
        half = out["relay"]["saturation_per_s"] / 2
        say("(b') window-originated: WindowService.SubmitStream at A -> A -> hub -> B (extra information)")
        lg = c.loadgen({**base_cfg, "driver": "window", "window_transport": _WINDOW_TRANSPORT})
        if plan.quick:
            best_c = out["tongban"]["best_concurrency"]
            r = point(lg, "closed", concurrency=best_c, duration_s=plan.duration_s, warmup_s=plan.warmup_s)
            out["window"] = {"best": r, "saturation_per_s": r["throughput_per_s"], "best_concurrency": best_c}
            say(f"  window: c={best_c} {r['throughput_per_s']}/s")
        else:
            out["window"] = measure([Load("window", lg)], plan, say, half)["window"]
        lg.quit()
        out["rss_3_nodes_mb"] = c.rss_peak_mb()
    out["window"]["window_transport"] = _WINDOW_TRANSPORT
    out["window"]["reconciliation"] = _reconcile_window(work / "tongban" / "data", say)
    # The nodes have stopped, their ledgers are flushed: (b)'s one-at-a-time calls, hop by hop.
    out["tongban"]["serial_timeline"] = timeline_from_ledgers(
        out["tongban"]["serial"].pop("marks", []), work / "tongban" / "data", hub=HUB_CODE, b=TARGET)
    out["tongban"]["serial_timeline"]["signature_costs"] = signature_costs()
    for line in format_timeline(out["tongban"]["serial_timeline"], "(b)"):
        say("  " + line)
    out["half_baseline_rate_per_s"] = round(half, 1)
    out["relay_diagnostics"] = _relay_diagnostics(plan, work, pki, base_cfg, sizes, out["relay"]["best_concurrency"],
                                                  say)

    best_c = out["tongban"]["best_concurrency"]
    out["options"] = _options(plan, work, pki, world, base_cfg, best_c, say) if plan.options else {}
    out["fastest"] = _fastest(plan, work, pki, world, base_cfg, sizes, half, out["options"], say)
    # Turn about: relay, (b) and the crowned (c) candidate, seconds apart in every round.
    candidate = None
    if out["fastest"]:
        label = out["fastest"]["setting"]
        candidate = Candidate(label, _option(label), out["options"][label]["one_province_process"])
    out["paired"] = measure_pairs(
        rounds=_PAIRED_ROUNDS_QUICK if plan.quick else _PAIRED_ROUNDS, work=work, pki=pki, world=world,
        pair=(ORIGIN, TARGET), base_cfg=base_cfg, sizes=sizes,
        relay_c=out["relay"]["best_concurrency"], tongban_c=best_c, candidate=candidate,
        duration_s=plan.duration_s, serial_duration_s=plan.serial_duration_s, warmup_s=plan.warmup_s, say=say)
    out["direct_exchange"] = measure_direct(
        quick=plan.quick, work=work, pki=pki, world=world, pair=(ORIGIN, TARGET), base_cfg=base_cfg, sizes=sizes,
        concurrency=best_c, duration_s=plan.duration_s, serial_duration_s=plan.serial_duration_s,
        warmup_s=plan.warmup_s, say=say)
    out["scaling"] = _scaling(plan, work, pki, world, base_cfg, best_c, say)
    if plan.profile_s > 0:
        from bench.profile import profile_tongban

        out["profile"] = profile_tongban(plan, work / "profile", pki, world, base_cfg, best_c, say)
    return out


def _reconcile_window(data: Path, say: Say) -> dict[str, Any]:
    """After the nodes stopped: the window path's requests, counted from A's own ledger (the
    bench client acting as A keeps none, so only window requests are in it), each with its
    terminal row; every ledger's hash chain verified. Under the overloaded open-loop point
    ``lost`` must still be 0: shed requests are answered and ledgered, never dropped."""
    rec = reconcile(data, [HUB_CODE, ORIGIN, TARGET])
    verified = all(v["verified"] for v in rec.ledgers.values())
    rows = sum(v["rows"] or 0 for v in rec.ledgers.values())
    say(f"  window path reconciled: sent {rec.sent}, delivered {rec.delivered}, rejected {rec.rejected}, "
        f"failed {rec.failed}, lost {rec.lost}; {rows} ledger rows in {len(rec.ledgers)} ledgers, "
        + ("every hash chain verified" if verified else "a hash chain FAILED to verify"))
    return {**rec.summary(), "ledger_rows": rows, "chains_verified": verified}


def _relay_diagnostics(plan: Plan, work: Path, pki: Path, base_cfg: dict[str, Any], sizes: dict[str, Any],
                       concurrency: int, say: Say) -> dict[str, Any]:
    """Five more relays, no signing either: tongban's gRPC plumbing; long-lived streams;
    tongban's own stream code (StreamMux and serve_frames, as nodes send by default, without
    the TLS gate, on tongban's gRPC polling as (b) is); grpcio's synchronous server on a small
    thread pool (the issue's candidate); and the baseline relay on the gRPC polling tongban's
    processes run (what that setting does for a bare relay). Each row records the
    ``GRPC_EXPERIMENTS`` its relay process ran with, read from the process."""
    say(f"    diagnostics at c={concurrency} and c=1: the relay with tongban's gRPC plumbing; over bidi streams; "
        f"over tongban's streams; on a {_SYNC_THREADS}-thread sync server; on tongban's gRPC polling")
    out: dict[str, Any] = {}
    for key, label, plumbed, streaming, threads, grpc_env in (
            ("plumbed", "relay, tongban's gRPC plumbing", True, False, 0, GRPC_DEFAULT),
            ("streaming", "relay over long-lived bidi streams", False, True, 0, GRPC_DEFAULT),
            ("muxed", "relay over tongban's streams, no gate", True, False, 0, None),
            ("sync", f"relay, sync server, {_SYNC_THREADS} threads", False, False, _SYNC_THREADS, GRPC_DEFAULT),
            ("tongban_polling", "relay, tongban's gRPC polling", False, False, 0, None)):
        with Cluster(work / f"relay-{key}") as c:
            c.start_relay(pki=pki, backend_code=TARGET, response_bytes=sizes["response_bytes"], plumbed=plumbed,
                          sync_threads=threads, grpc_env=grpc_env)
            lg = c.loadgen({**base_cfg, "driver": "relay", "request_bytes": sizes["request_bytes"],
                            "plumbed": plumbed, "streaming": streaming, "muxed": key == "muxed"}, env=grpc_env)
            sat = point(lg, "closed", concurrency=concurrency, duration_s=plan.duration_s, warmup_s=plan.warmup_s)
            serial = point(lg, "closed", concurrency=1, duration_s=plan.serial_duration_s, warmup_s=plan.warmup_s)
            lg.quit()
            polling = c.grpc_experiments("relay")
        out[key] = {"label": label, "grpc_experiments": polling, "closed": sat, "serial": serial}
        say(f"    {label:<36} {sat['throughput_per_s']:>7.1f}/s, "
            f"{sum(sat.get('cpu_us_per_call', {}).values())} µs CPU per exchange; c=1 p50 {serial['latency']['p50_ms']} ms")
    return out


#: Candidate settings for (c), run with bench/_node.py; "what-if" rows price a cost
#: and are never eligible for (c).
_OPTIONS: tuple[tuple[str, NodeOptions, bool, bool], ...] = (
    ("uvloop in every node", NodeOptions(uvloop=True), False, True),
    ("both provinces in one process", NodeOptions(), True, True),
    ("ledger flush every 200 ms (default 50)", NodeOptions(ledger_flush_ms=200), False, True),
    ("two streams per peer (default 1)", NodeOptions(stream_lanes=2), False, True),
    ("four streams per peer (default 1)", NodeOptions(stream_lanes=4), False, True),
    ("grpcio's default polling, EventEngine (tongban's: the older)", NodeOptions(grpc_event_engine=True), False,
     True),
    ("grpcio's TLS, no TLS gate (handshake refusals unrecorded)", NodeOptions(tls_gate=False), False, True),
    ("uvloop + no TLS gate + both provinces in one process", NodeOptions(uvloop=True, tls_gate=False), True, True),
    ("what-if: one unary call per envelope (not eligible)", NodeOptions(transport="unary"), False, False),
    ("what-if: no ledger at all (not eligible)", NodeOptions(no_ledger=True), False, False),
)

#: A candidate becomes (c) only when it beats the re-measured default by this much
#: at (b)'s best concurrency (less is within the noise of these machines).
_FASTEST_MARGIN = 1.05
#: Interleaved passes over the candidates (see _options).
_OPTION_PASSES = 2


def _options(plan: Plan, work: Path, pki: Path, world: Path, base_cfg: dict[str, Any], best_c: int,
             say: Say) -> dict[str, Any]:
    """Each candidate (and the default) measured in ``_OPTION_PASSES`` interleaved passes:
    one point each swung by 10-25 % between runs on these machines, enough to make a
    one-off lucky point (c). A row is the first pass's point with the passes' mean
    throughput and CPU, and every pass's figures under ``passes``."""
    say(f"(c) candidate settings for a fast mode, closed loop at c={best_c}, {_OPTION_PASSES} passes "
        "(default mode re-measured first)")
    import importlib.util

    candidates = [row for row in (("default mode (re-measured)", NodeOptions(), False, True), *_OPTIONS)
                  if not (row[1].uvloop and importlib.util.find_spec("uvloop") is None)]
    if len(candidates) <= len(_OPTIONS):
        say("  uvloop candidates skipped: uvloop is not installed (make bench installs it)")
    points: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in candidates}
    for n in range(_OPTION_PASSES):
        for i, (label, opts, one_process, _eligible) in enumerate(candidates):
            d = work / f"option-{n}-{i}"
            groups = province_groups([ORIGIN, TARGET], one_process=one_process)
            with Cluster(d) as c:
                c.start_tongban(pki=pki, data=copy_world(world, d / "data", [ORIGIN, TARGET]), groups=groups,
                                options=opts)
                lg = c.loadgen({**base_cfg, "driver": "exchange", **opts.client_config()}, env=opts.grpc_env())
                r = point(lg, "closed", concurrency=best_c, duration_s=plan.duration_s, warmup_s=plan.warmup_s)
                lg.quit()
            points[label].append(r)
            say(f"  pass {n + 1} {label:<44} {r['throughput_per_s']:>7.1f}/s  p50 {r['latency']['p50_ms']} ms")
    rows: dict[str, Any] = {}
    for label, opts, one_process, eligible in candidates:
        ps = points[label]
        cpus = [p.get("cpu_us_per_call", {}) for p in ps]
        rows[label] = {"eligible": eligible, "node_args": opts.args() + opts.node_args(),
                       "one_province_process": one_process, **ps[0],
                       "throughput_per_s": round(sum(p["throughput_per_s"] for p in ps) / len(ps), 1),
                       "cpu_us_per_call": {k: round(sum(c[k] for c in cpus if k in c) / sum(k in c for c in cpus))
                                           for k in dict.fromkeys(k for c in cpus for k in c)},
                       "others_busy": max(p.get("others_busy", 0.0) for p in ps),
                       "passes": [{"throughput_per_s": p["throughput_per_s"], "p50_ms": p["latency"]["p50_ms"],
                                   "cpu_us_per_call": p.get("cpu_us_per_call", {}),
                                   "others_busy": p.get("others_busy")} for p in ps]}
    return rows


def _fastest(plan: Plan, work: Path, pki: Path, world: Path, base_cfg: dict[str, Any], sizes: dict[str, Any],
             half: float, options: dict[str, Any], say: Say) -> dict[str, Any] | None:
    """(c): the eligible candidate that beat the default by ``_FASTEST_MARGIN``, measured
    like (b) (sweep, open loop, one at a time) and, like (b), turn about with the relay,
    started again beside it (``relay_alongside``: (c)'s ratios are to this relay, not to
    (a) measured minutes earlier); None when no candidate beat the default."""
    if not options:
        return None
    default = next(iter(options.values()))["throughput_per_s"]
    label, best = max(((k, v) for k, v in list(options.items())[1:] if v["eligible"]),
                      key=lambda kv: kv[1]["throughput_per_s"], default=(None, None))
    if best is None or best["throughput_per_s"] < _FASTEST_MARGIN * default:
        say(f"(c) no candidate beat the default by {_FASTEST_MARGIN - 1:.0%}: (c) = (b)")
        return None
    opts = _option(label)
    say(f"(c) fastest mode = {label}: measured like (b), turn about with the relay started again beside it; "
        "then turn about with (b) in the paired rounds")
    d = work / "fastest"
    groups = province_groups([ORIGIN, TARGET], one_process=best["one_province_process"])
    with Cluster(work / "fastest-relay") as ca, Cluster(d) as c:
        la = ca.start_baseline(pki=pki, backend_code=TARGET, sizes=sizes, base_cfg=base_cfg)
        c.start_tongban(pki=pki, data=copy_world(world, d / "data", [ORIGIN, TARGET]), groups=groups, options=opts)
        lg = c.loadgen({**base_cfg, "driver": "exchange", **opts.client_config()}, env=opts.grpc_env())
        both = measure([Load("relay", la), Load("fastest", lg)], plan, say, half)
        la.quit()
        lg.quit()
    return {**both["fastest"], "setting": label, "node_args": best["node_args"], "relay_alongside": both["relay"]}


def _option(label: str) -> NodeOptions:
    """The node options of the candidate setting called ``label``."""
    return next(o for name, o, _, _ in _OPTIONS if name == label)


def _scaling(plan: Plan, work: Path, pki: Path, world: Path, base_cfg: dict[str, Any], best_c: int,
             say: Say) -> dict[str, Any]:
    """Hub + 2 provinces (loaded as (b) is, ``base_cfg``) against hub + 32 at the same offered
    load, in two layouts: the shipped scenarios' (4 processes, each province on its own
    connections) and co-hosted (one process, ``--cohost``: one connection each way). All three
    set-ups are up side by side and measured turn about (the machine's speed drifts between
    minutes): each ratio is the median of the rounds' ratios; the figures shown are the median
    round's."""
    codes = list(PROVINCE_CODES)
    groups = [codes[i::4] for i in range(4)]  # the shipped scenarios' default: 4 province processes
    rounds = _PAIRED_ROUNDS_QUICK if plan.quick else _PAIRED_ROUNDS
    say(f"scaling: hub + 32 provinces (in {len(groups)} processes, and co-hosted in 1) vs hub + 2 provinces, "
        f"closed loop at c={best_c}, every province asking and answering; turn about, "
        f"{rounds} round{'' if rounds == 1 else 's'}")
    pairs = [(codes[i], codes[(i + 7) % len(codes)]) for i in range(len(codes))]
    jobs = sample_jobs(world, pairs, 25, seed=2)
    cfg33 = {"pki": str(pki), "jobs": jobs, "timeout_s": 5.0, "warmup_s": 1.0, "driver": "exchange"}
    d33, dco, d3 = work / "scale-33", work / "scale-33-cohosted", work / "scale-3"
    out: list[dict[str, Any]] = []
    with Cluster(d33) as c33, Cluster(dco) as cco, Cluster(d3) as c3:
        t = c33.start_tongban(pki=pki, data=copy_world(world, d33 / "data", codes), groups=groups)
        lg33 = c33.loadgen(cfg33)
        tco = cco.start_tongban(pki=pki, data=copy_world(world, dco / "data", codes), groups=[codes],
                                options=NodeOptions(cohost=True))
        lgco = cco.loadgen({**cfg33, "carriers": {c: min(codes) for c in codes}})
        c3.start_tongban(pki=pki, data=copy_world(world, d3 / "data", [ORIGIN, TARGET]), groups=[[ORIGIN], [TARGET]])
        lg3 = c3.loadgen({**base_cfg, "driver": "exchange"})
        for i in range(rounds):
            r3, r33, rco = (strip(lg.run("closed", concurrency=best_c, duration_s=plan.duration_s,
                                         warmup_s=plan.warmup_s)) for lg in (lg3, lg33, lgco))
            row = {"three": r3, "thirty_three": r33, "cohosted": rco, "ratio": _per(r33, r3),
                   "cohosted_ratio": _per(rco, r3)}
            out.append(row)
            say(f"  round {i + 1}: 3 nodes {r3['throughput_per_s']}/s; 33 nodes {r33['throughput_per_s']}/s "
                f"-> {row['ratio']:.3f}; co-hosted {rco['throughput_per_s']}/s -> {row['cohosted_ratio']:.3f}")
        for lg in (lg33, lgco, lg3):
            lg.quit()
        rss, rss_co = c33.rss_peak_mb(), cco.rss_peak_mb()
    median = sorted(out, key=lambda r: r["ratio"])[len(out) // 2]
    co = sorted(out, key=lambda r: r["cohosted_ratio"])[len(out) // 2]
    say(f"  ratio {median['ratio']:.2f} (median of {[r['ratio'] for r in out]}), co-hosted {co['cohosted_ratio']:.2f} "
        f"(median of {[r['cohosted_ratio'] for r in out]}); peak RSS of the node processes {sum(rss.values()):.0f} MiB, "
        f"co-hosted {sum(rss_co.values()):.0f} MiB; all ready in {t:.1f} s, co-hosted {tco:.1f} s")
    return {"province_processes": len(groups), "concurrency": best_c, "nodes_ready_s": round(t, 2),
            "three_nodes_per_s": median["three"]["throughput_per_s"], "thirty_three_nodes": median["thirty_three"],
            "three_nodes_cpu_us_per_call": median["three"].get("cpu_us_per_call", {}),
            "three_nodes_switches_per_call": median["three"].get("switches_per_call", {}),
            "three_nodes_others_busy": median["three"].get("others_busy"),
            "ratio": median["ratio"], "round_ratios": [r["ratio"] for r in out],
            "rounds": [{"three_nodes_per_s": r["three"]["throughput_per_s"],
                        "thirty_three_nodes_per_s": r["thirty_three"]["throughput_per_s"], "ratio": r["ratio"],
                        "cohosted_per_s": r["cohosted"]["throughput_per_s"], "cohosted_ratio": r["cohosted_ratio"]}
                       for r in out],
            "rss_peak_mb": rss, "rss_peak_total_mb": round(sum(rss.values()), 1),
            "cohosted": {"province_processes": 1, "nodes_ready_s": round(tco, 2), "ratio": co["cohosted_ratio"],
                         "round_ratios": [r["cohosted_ratio"] for r in out],
                         "three_nodes_per_s": co["three"]["throughput_per_s"], "thirty_three_nodes": co["cohosted"],
                         "rss_peak_mb": rss_co, "rss_peak_total_mb": round(sum(rss_co.values()), 1)}}


def _per(a: dict[str, Any], b: dict[str, Any]) -> float:
    """a's throughput as a ratio of b's (0.0 when b measured none)."""
    return round(a["throughput_per_s"] / b["throughput_per_s"], 3) if b["throughput_per_s"] else 0.0


def time_world_generation(scale: float, say: Say) -> dict[str, Any]:
    """nodes.world.generate_world at ``scale`` into a scratch directory, then delete it."""
    import time

    from nodes.world import generate_world

    need = 5 * 1024**3 if scale >= 1e-3 else 1024**3
    scratch_parent = Path(tempfile.gettempdir())
    free = shutil.disk_usage(scratch_parent).free
    if free < need:
        msg = f"skipped: {free / 1024**3:.1f} GiB free in {scratch_parent}, need {need / 1024**3:.0f} GiB"
        say(f"world generation at scale {scale:g}: {msg}")
        return {"scale": scale, "skipped": msg}
    say(f"world generation at scale {scale:g} (seed 2021) into a scratch directory")
    scratch = Path(tempfile.mkdtemp(prefix="tongban-bench-world-"))
    try:
        t0 = time.perf_counter()
        busy0, cpu0 = _system_busy_s(), _own_cpu_s()
        generate_world(scratch / "w", scale=scale, seed=2021)
        took = time.perf_counter() - t0
        cpu_s = _own_cpu_s() - cpu0
        others = max(0.0, _system_busy_s() - busy0 - cpu_s) / took
        size = sum(f.stat().st_size for f in (scratch / "w").iterdir())
        import json

        counts = json.loads((scratch / "w" / "world.json").read_text(encoding="utf-8"))["counts"]
        persons = sum(c["persons"] for c in counts.values())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    say(f"  {persons:,} persons in {took:.1f} s, {cpu_s:.1f} CPU s ({size / 1024**2:.0f} MiB on disk, deleted; "
        f"others kept {others:.2f} cores busy meanwhile)")
    return {"scale": scale, "seconds": round(took, 2), "persons": persons, "disk_mb": round(size / 1024**2),
            "cpu_s": round(cpu_s, 1), "others_busy": round(others, 2)}


def _own_cpu_s() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _system_busy_s() -> float:
    """Seconds all CPUs have spent busy since boot (0 where /proc/stat cannot tell)."""
    return (busy_ticks() or 0) / ticks_per_s()
