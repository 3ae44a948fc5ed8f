"""The scenario runner: PKI and world (cached), node processes, load, faults, report.

Processes: one hub, ``province_processes`` processes hosting the provinces (their
command lines name role and codes, e.g. ``python -m tongban node province 110000
120000 …``), and ``loadgen_processes`` load generators. Faults are applied on the
scenario's timeline through the nodes' control pipes. Ctrl-C stops the load,
stops every process and still writes a (partial) report.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from certs.pki import HUB_CODE
from exchange._machine import BusyMeter
from exchange._procs import Children
from exchange.cache import ensure_pki, ensure_world
from exchange.errors import TongbanError
from exchange.faults import FaultTimeline
from exchange.geo import province
from exchange.kstb import kstb_summary
from exchange.metrics import FlowStats, SendLag, stats_in
from exchange.plan import write_plan_requests
from exchange.progress import LiveProgress
from exchange.reconcile import Reconciliation, reconcile
from exchange.scenario import Scenario

__all__ = ["RunResult", "ensure_pki", "ensure_world", "run_scenario"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tongban")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class RunResult:
    """What a run measured; ``report()`` is the report.json document."""

    scenario: Scenario
    out_dir: Path
    started_at: str = ""
    duration_s: float = 0.0
    flows: dict[str, FlowStats] = field(default_factory=dict)
    origins: dict[str, FlowStats] = field(default_factory=dict)
    #: completion second -> each load generator's stats for it, encoded as in its result
    #: file; merged one second at a time in ``report`` (a live histogram takes 170 KiB)
    seconds: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)
    #: submissions that failed at the asking province's window, by outcome (whole run)
    at_window: dict[str, int] = field(default_factory=dict)
    apply: dict[str, dict[str, float]] = field(default_factory=dict)
    planned: int = 0
    fired: int = 0
    lag: SendLag = field(default_factory=SendLag)
    #: CPU seconds the load generators spent on the load, and the whole machine's average
    #: busy cores over it (None where unmeasured: not Linux, or interrupted before the load)
    loadgen_cpu_s: float = 0.0
    busy_cores: float | None = None
    interrupted: bool = False
    #: the direct links connected before the load (regional, direct): connected, failed, seconds
    direct_links: dict[str, Any] | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)
    recon: Reconciliation = field(default_factory=Reconciliation)

    @property
    def counted_s(self) -> float:
        return max(self.duration_s - self.scenario.warmup_s, 1e-9)

    def _cpu(self) -> dict[str, Any]:
        """report.json ``load``'s CPU keys: the machine's cores, how many were busy on average
        during the load, and how many of them the load generators took."""
        if self.busy_cores is None or self.duration_s <= 0:
            return {}
        return {"cores": os.cpu_count() or 1, "busy_cores": round(self.busy_cores, 2),
                "load_generator_cores": round(self.loadgen_cpu_s / self.duration_s, 2)}

    def merge_loadgen(self, doc: dict[str, Any]) -> None:
        self.duration_s = max(self.duration_s, float(doc["elapsed_s"]))
        self.fired += int(doc["fired"])
        self.loadgen_cpu_s += float(doc.get("cpu_s", 0.0))
        self.lag.merge_json(doc)
        self.interrupted |= bool(doc.get("interrupted"))
        for key, into in (("flows", self.flows), ("origins", self.origins)):
            for f in doc[key]:
                s = FlowStats.from_json(f)
                stats_in(into, s.flow).merge(s)
        for f in doc["seconds"]:
            self.seconds.setdefault(int(f["flow"]), []).append(f)
        for pair, n in doc["pairs"].items():
            self.pairs[pair] = self.pairs.get(pair, 0) + n
        for outcome, n in doc.get("at_window", {}).items():
            self.at_window[outcome] = self.at_window.get(outcome, 0) + n
        for item, a in doc.get("apply", {}).items():
            mine = self.apply.setdefault(item, {k: 0 for k in a})
            for k, v in a.items():
                mine[k] = mine.get(k, 0) + v

    def report(self) -> dict[str, Any]:
        sc = self.scenario
        nodes = list(sc.nodes)
        counts = [[self.pairs.get(f"{o}>{t}", 0) for t in nodes] for o in nodes]
        provinces = {}
        for code in nodes:
            p, s = province(code), self.origins.get(code, FlowStats(code))
            provinces[code] = {"name": p.name_zh, "short_name": p.short_zh, "pinyin": p.pinyin,
                               "sent": s.count, "ok": s.ok, "p50_ms": s.percentile_ms(50),
                               "p99_ms": s.percentile_ms(99), "served": self.recon.served.get(code, 0)}
        timeseries: dict[str, list[Any]] = {"t_s": list(range(max(self.seconds, default=-1) + 1)), "ok": [],
                                            "failed": [], "p99_ms": []}
        for t in timeseries["t_s"]:
            s = FlowStats(str(t))
            for f in self.seconds.get(t, ()):
                s.merge(FlowStats.from_json(f))
            timeseries["ok"].append(s.ok)
            timeseries["failed"].append(s.count - s.ok)
            timeseries["p99_ms"].append(s.percentile_ms(99) if s.ok else None)  # no ok: a gap, not 0
        return {
            "schema_version": SCHEMA_VERSION,
            "tongban_version": _version(),
            "scenario": sc.to_dict(),
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "interrupted": self.interrupted,
            "flows": {name: s.summary(self.counted_s) for name, s in sorted(self.flows.items())},
            "matrix": {"origins": nodes, "targets": nodes, "counts": counts},
            "provinces": provinces,
            "hops": self.recon.hops,
            "bytes": {flow: dict(c) for flow, c in sorted(self.recon.bytes.items())},
            "timeseries": timeseries,
            "faults": self.faults,
            "kstb": kstb_summary(self.apply),
            "reconciliation": {**self.recon.summary(), "planned": self.planned, "fired": self.fired,
                               "at_window": dict(sorted(self.at_window.items()))},
            "load": {**self.lag.summary(), **self._cpu(),
                     **({"direct_links": self.direct_links} if self.direct_links is not None else {})},
            "ledgers": self.recon.ledgers,
            "report": {"markdown": sc.report.markdown, "html": sc.report.html, "charts": sc.report.charts},
        }


def _pack(codes: tuple[str, ...], n: int) -> list[list[str]]:
    """Spread codes over ``n`` processes round-robin, so big provinces spread out."""
    groups: list[list[str]] = [[] for _ in range(min(n, len(codes)))]
    for i, code in enumerate(codes):
        groups[i % len(groups)].append(code)
    return groups


def _prepare(scenario: Scenario, out_dir: Path, cache_dir: Path, progress: LiveProgress) -> tuple[Path, Path]:
    progress.phase("preparing PKI and world (cached)")
    pki = ensure_pki(cache_dir)
    world = ensure_world(cache_dir, scale=scenario.scale, seed=scenario.seed)
    data = out_dir / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    shutil.copy(world / "world.json", data / "world.json")
    for code in scenario.nodes:
        shutil.copy(world / f"{code}.sqlite", data / f"{code}.sqlite")
    p = scenario.paths
    links = {"links": {code: {"delay_ms": l.delay_ms, "jitter_ms": l.jitter_ms, "loss": l.loss}
                       for code, l in scenario.links.items()},
             "paths": {"mode": p.mode, "delay_ms": p.delay_ms, "base_ms": p.base_ms,
                       "route_factor": p.route_factor, "hub_at": scenario.hub_at}}
    (out_dir / "links.json").write_text(json.dumps(links, indent=1), encoding="utf-8")
    return pki, data


#: How long the runner waits for a province process to connect its direct links: each
#: node gives up on a peer after 60 s in all (ProvinceNode.warm_links), after a directory
#: refresh of at most its request timeout.
_WARM_TIMEOUT_S = 120.0


def run_scenario(scenario: Scenario, *, out_dir: Path, cache_dir: Path,
                 progress: LiveProgress | None = None) -> RunResult:
    """Run one scenario end to end; returns what it measured (also on Ctrl-C)."""
    progress = progress or LiveProgress(total_s=scenario.duration_s, enabled=False)
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    pki, data = _prepare(scenario, out_dir, cache_dir, progress)
    # Written now, before the nodes start: the load generators stream them (a long run's
    # requests never sit in memory), and writing them does not eat into the start time.
    request_files = [out_dir / f"plan-{i}.requests.jsonl" for i in range(max(1, scenario.loadgen_processes))]
    progress.phase("planning the requests")
    planned = write_plan_requests(scenario, data, request_files)
    result = RunResult(scenario=scenario, out_dir=out_dir, planned=planned)
    children = Children(out_dir / "logs")
    loadgens: list[Any] = []
    meter = BusyMeter()
    common = ["--pki", str(pki), "--data", str(data), "--links", str(out_dir / "links.json"),
              "--request-timeout", repr(scenario.request_timeout_s)]  # the nodes' deadline is the scenario's
    try:
        progress.phase("starting the hub")
        hub = children.start(["node", "hub", *common, "--listen", "127.0.0.1:0",
                              "--topology", scenario.topology], "hub-000000")
        hub_endpoint = children.wait_ready(hub, [HUB_CODE])[HUB_CODE]
        groups = _pack(scenario.nodes, scenario.province_processes)
        progress.phase(f"starting {len(scenario.nodes)} provinces in {len(groups)} "
                       f"process{'es' * (len(groups) != 1)}")
        cohost = ["--cohost"] if scenario.cohost else []
        procs = [children.start(["node", "province", *g, *common, "--listen", "127.0.0.1:0",
                                 "--hub", hub_endpoint, *cohost], f"province-{i}") for i, g in enumerate(groups)]
        endpoints: dict[str, str] = {}
        owner = {HUB_CODE: hub}
        for p, g in zip(procs, groups, strict=True):
            endpoints.update(children.wait_ready(p, g))
            owner.update({code: p for code in g})
        # every province learns every endpoint before the load starts (warm refreshes first too)
        if scenario.topology == "star":
            for p in procs:
                children.send(p, {"op": "refresh"})
        else:
            result.direct_links = _warm_links(children, procs, groups, progress)
        args = {HUB_CODE: ["node", "hub", *common, "--listen", hub_endpoint, "--topology", scenario.topology]}
        names = {HUB_CODE: "hub-000000"}
        for i, g in enumerate(groups):
            for code in g:
                args[code] = ["node", "province", *g, *common, "--listen", "127.0.0.1:0", "--hub", hub_endpoint,
                              *cohost]
                names[code] = f"province-{i}"

        def crash(code: str) -> None:
            proc = owner[code]
            if proc.poll() is None:
                proc.kill()
                proc.wait()

        def restart(code: str) -> None:
            old = owner[code]
            if old.poll() is None:
                return
            codes = [c for c, p in owner.items() if p is old]
            new = children.start(args[code], names[code])
            moved = children.wait_ready(new, codes)
            owner.update({c: new for c in codes})
            children.send(new, {"op": "refresh"})
            if code != HUB_CODE:
                for lg in loadgens:
                    children.send(lg, {"op": "endpoints", "endpoints": moved})

        timeline = FaultTimeline(scenario, owner=owner, send=children.send, crash=crash, restart=restart)
        start_at = time.time() + 1.0
        result.started_at = datetime.fromtimestamp(start_at, timezone.utc).isoformat(timespec="seconds")
        for i, requests_file in enumerate(request_files):
            path = out_dir / f"plan-{i}.json"
            path.write_text(json.dumps({"endpoints": endpoints, "requests_file": requests_file.name, "pki": str(pki),
                                        "timeout_s": scenario.request_timeout_s, "warmup_s": scenario.warmup_s,
                                        "start_at": start_at}, ensure_ascii=False), encoding="utf-8")
            loadgens.append(children.start([str(path), str(out_dir / f"loadgen-{i}.json")], f"loadgen-{i}",
                                           module="exchange.loadgen"))
        progress.sources = len(loadgens)
        progress.phase(f"driving {result.planned} requests over {scenario.duration_s:g} s "
                       f"from {len(loadgens)} load generator(s)")
        _drive(children, loadgens, timeline, progress, start_at, meter)
    except KeyboardInterrupt:
        result.interrupted = True
        progress.phase("interrupted: stopping the load, keeping what was measured")
        for p in loadgens:  # SIGTERM: each writes what it measured, then exits
            if p.poll() is None:
                p.terminate()
        for p in loadgens:
            p.wait()
    finally:
        result.busy_cores = meter.stop()
        progress.phase("stopping nodes")
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None  # a 2nd Ctrl-C must not orphan nodes
        try:
            children.stop()
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
    if "timeline" in locals():
        result.faults = timeline.report()
    for i in range(len(request_files)):
        path = out_dir / f"loadgen-{i}.json"
        if path.exists():
            result.merge_loadgen(json.loads(path.read_text(encoding="utf-8")))
    progress.phase("verifying ledgers and reconciling")
    result.recon = reconcile(data, (HUB_CODE, *scenario.nodes))
    (out_dir / "report.json").write_text(json.dumps(result.report(), ensure_ascii=False, indent=1) + "\n",
                                         encoding="utf-8")
    _render(out_dir, progress)
    return result


def _warm_links(children: Children, procs: list[Any], groups: list[list[str]],
                progress: LiveProgress) -> dict[str, Any]:
    """Connect every direct link before the load (regional and direct topologies).

    The hub connects to each province when it registers, so a star run's load never
    waits for a TLS handshake; without this, a direct run's first seconds measured up
    to 992 of them at once (p99 2 s for 4 s at 400/s, then 60-70 ms), and the capacity
    sweep read that start-up as direct's capacity. The cost is reported, not hidden;
    a warm-up that fails is reported too, and the run goes on with the links it has."""
    progress.phase("connecting the provinces' direct links")
    started = time.monotonic()
    for p in procs:
        children.send(p, {"op": "warm"})
    links, failed, errors = 0, set(), []
    for p, codes in zip(procs, groups, strict=True):
        try:
            event = children.wait_event(p, "warm", what=f"provinces {', '.join(codes)} connecting their direct links",
                                        timeout_s=_WARM_TIMEOUT_S)
        except TongbanError as e:
            errors.append(str(e))
            continue
        links += int(event["links"])
        failed.update(event["failed"])
        if event.get("error"):
            errors.append(f"provinces {', '.join(codes)}: {event['error']}")
    out = {"connected": links, "failed": sorted(failed), "seconds": round(time.monotonic() - started, 2)}
    return out | ({"error": "; ".join(errors)} if errors else {})


def _render(out_dir: Path, progress: LiveProgress) -> None:
    try:
        from exchange.report import render_report
    except ImportError:  # pragma: no cover - renderer is part of the package
        return
    progress.phase("writing the report files (report.md, and report.html and charts unless the scenario "
                   "turns them off)")
    render_report(out_dir)


def _drive(children: Children, loadgens: list[Any], timeline: FaultTimeline, progress: LiveProgress,
           start_at: float, meter: BusyMeter) -> None:
    """Until every load generator has exited: apply faults, feed the live view, and
    measure the machine's busy cores from the start of the load."""
    open_ = list(loadgens)
    with progress:
        while open_:
            elapsed = time.time() - start_at
            if elapsed >= 0 and not meter.started:
                meter.start()
            timeline.advance(elapsed)
            progress.tick(max(elapsed, 0.0), timeline.active_labels(elapsed))
            for p in list(open_):
                try:
                    for event in children.read_events(p, 0.1 / len(open_)):
                        progress.event(event)
                except EOFError:
                    if p.wait() not in (0, 130):
                        raise TongbanError(f"load generator exited with {p.returncode} "
                                           f"(see {children.log_dir})") from None
                    open_.remove(p)
