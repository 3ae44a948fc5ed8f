"""Processes of one benchmark set-up: tongban nodes or the baseline relay, and the load generator.

The benchmark's parent process never opens a gRPC channel or server itself
(fork before gRPC): every server and the load generator are child processes,
ready when they print their ready line.

tongban's processes (its nodes, and the load generator acting as province A) run gRPC
as tongban runs it (:mod:`tongban.runtime`: grpcio's older polling, set by
``exchange._procs`` in every child's environment); the baseline relay's processes and
its load generator run grpcio's default (:data:`GRPC_DEFAULT`), as a minimal relay would.
:meth:`Cluster.grpc_experiments` reads what a running process actually has.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from certs.pki import HUB_CODE
from exchange._procs import Children
from exchange.errors import TongbanError
from tongban.runtime import GRPC_EXPERIMENTS

__all__ = ["GRPC_DEFAULT", "Cluster", "Loadgen", "NodeOptions", "copy_world", "sample_jobs"]

#: A child's environment entries for grpcio's own default polling (its EventEngine); a
#: child started without them runs gRPC as tongban's processes do.
GRPC_DEFAULT: Mapping[str, str] = MappingProxyType({GRPC_EXPERIMENTS: ""})

_names = itertools.count()


@dataclass(frozen=True, kw_only=True)
class NodeOptions:
    """How the tongban node processes run (bench/_node.py); defaults = tongban's default mode."""

    uvloop: bool = False
    ledger_flush_ms: int | None = None
    no_ledger: bool = False
    transport: str = "stream"
    tls_gate: bool = True
    stream_lanes: int | None = None
    grpc_event_engine: bool = False
    gate_over_tcp: bool = False
    #: the provinces of each process share their first province's connections (``--cohost``)
    cohost: bool = False
    #: the hub's topology: "direct" lets province A call B's NodeService itself (X-Road style)
    topology: str = "star"

    def args(self) -> list[str]:
        out = ["--uvloop"] if self.uvloop else []
        out += ["--grpc-event-engine"] if self.grpc_event_engine else []
        out += ["--gate-over-tcp"] if self.gate_over_tcp else []
        if self.ledger_flush_ms is not None:
            out += ["--ledger-flush-ms", str(self.ledger_flush_ms)]
        if self.stream_lanes is not None:
            out += ["--stream-lanes", str(self.stream_lanes)]
        return out + (["--no-ledger"] if self.no_ledger else [])

    def client_config(self) -> dict[str, Any]:
        """The load generator's settings that match the nodes' (it acts as province A)."""
        return {"transport": self.transport, "stream_lanes": self.stream_lanes}

    def grpc_env(self) -> dict[str, str]:
        """Environment entries for the nodes' gRPC polling, and the load generator's to match."""
        return dict(GRPC_DEFAULT) if self.grpc_event_engine else {}

    def node_args(self) -> list[str]:
        """Options of the tongban node command itself."""
        return ["--transport", self.transport, "--tls-gate" if self.tls_gate else "--no-tls-gate"]

    def hub_args(self) -> list[str]:
        """Options of the tongban hub command only."""
        return [] if self.topology == "star" else ["--topology", self.topology]

    def province_args(self) -> list[str]:
        """Options of the tongban province command only."""
        return ["--cohost"] if self.cohost else []


def province_groups(codes: list[str], *, one_process: bool) -> list[list[str]]:
    """How province ``codes`` share node processes: all in one, or one process each."""
    return [list(codes)] if one_process else [[code] for code in codes]


def copy_world(world: Path, data: Path, codes: list[str]) -> Path:
    """A fresh data directory (the nodes ledger into their sqlite files)."""
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    shutil.copy(world / "world.json", data / "world.json")
    for code in codes:
        shutil.copy(world / f"{code}.sqlite", data / f"{code}.sqlite")
    return data


def sample_jobs(world: Path, pairs: list[tuple[str, str]], per_target: int, seed: int) -> list[list[str]]:
    """[origin, target, holder, cert_type] for ecert.fetch, holders drawn from each target's store."""
    from nodes.store import ProvinceStore

    rng = random.Random(seed)
    certs: dict[str, list[Any]] = {}
    for target in sorted({t for _, t in pairs}):
        with ProvinceStore(world / f"{target}.sqlite", code=target) as store:
            certs[target] = store.sample_certificates(rng, per_target)
    jobs = []
    for i in range(max(len(pairs) * per_target, per_target)):
        origin, target = pairs[i % len(pairs)]
        c = certs[target][(i // len(pairs)) % len(certs[target])]
        jobs.append([origin, target, c.holder_code, c.type_code])
    rng.shuffle(jobs)
    return jobs


@dataclass
class Loadgen:
    """A running bench.loadgen process, steered one command at a time."""

    children: Children
    proc: subprocess.Popen[bytes]
    pids: dict[str, int] = field(default_factory=dict)  # node processes whose CPU each run measures
    ready: dict[str, Any] = field(default_factory=dict)

    def run(self, op: str, *, patience_s: float = 60.0, **params: Any) -> dict[str, Any]:
        """Run one command and wait for its result."""
        return self.result(self.send(op, **params), op, patience_s)

    def send(self, op: str, **params: Any) -> float:
        """Start one command; returns how long it should take (pass to ``result``)."""
        if op in ("closed", "open"):
            params.setdefault("pids", self.pids)
        self.children.send(self.proc, {"op": op, **params})
        return float(params.get("duration_s", 0)) + float(params.get("warmup_s", 0))

    def result(self, expected_s: float, op: str, patience_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + patience_s + expected_s
        while time.monotonic() < deadline:
            try:
                events = self.children.read_events(self.proc, max(0.1, deadline - time.monotonic()))
            except EOFError:
                raise TongbanError(f"load generator exited with {self.proc.wait()} during {op} "
                                   f"(see {self.children.log_dir})") from None
            for event in events:
                if event.get("event") == "result":
                    return event
                if event.get("event") == "error":
                    raise TongbanError(f"load generator: {event.get('detail')}")
        raise TongbanError(f"load generator gave no result for {op} within {patience_s:.0f} s")

    def quit(self) -> None:
        self.children.send(self.proc, {"op": "quit"})
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Cluster:
    """One set-up's processes; ``with Cluster(...) as c:`` stops them all however it ends."""

    def __init__(self, work: Path, *, ready_timeout_s: float = 120.0) -> None:
        self.work = work
        (work / "logs").mkdir(parents=True, exist_ok=True)
        self.children = Children(work / "logs", ready_timeout_s=ready_timeout_s)
        self.node_pids: dict[str, int] = {}  # process label -> pid
        self.hub = ""
        self.endpoints: dict[str, str] = {}

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.children.stop()

    def _start(self, args: list[str], label: str, module: str,
               env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        p = self.children.start(args, f"{label}-{next(_names)}", module=module, env=dict(env or {}))
        self.node_pids[label] = p.pid
        return p

    def grpc_experiments(self, label: str) -> str | None:
        """``GRPC_EXPERIMENTS`` in the environment the process ``label`` runs with (None when
        unset, or where ``/proc`` cannot tell)."""
        try:
            raw = Path(f"/proc/{self.node_pids[label]}/environ").read_bytes()
        except OSError:
            return None
        prefix = GRPC_EXPERIMENTS.encode() + b"="
        return next((item[len(prefix):].decode() for item in raw.split(b"\0") if item.startswith(prefix)), None)

    # -- tongban -----------------------------------------------------------
    def start_tongban(self, *, pki: Path, data: Path, groups: list[list[str]],
                      options: NodeOptions = NodeOptions()) -> float:
        """Hub plus provinces (one process per group); returns seconds until all were ready."""
        t0 = time.perf_counter()
        common = ["--pki", str(pki), "--data", str(data), "--listen", "127.0.0.1:0"]
        common += options.node_args()
        hub = self._start([*options.args(), "--", "node", "hub", *common, *options.hub_args()], "hub", "bench._node",
                          env=options.grpc_env())
        self.hub = self.children.wait_ready(hub, [HUB_CODE])[HUB_CODE]
        procs = [self._start([*options.args(), "--", "node", "province", *g, *common, "--hub", self.hub,
                              *options.province_args()],
                             f"provinces-{i}", "bench._node", env=options.grpc_env()) for i, g in enumerate(groups)]
        for p, g in zip(procs, groups, strict=True):
            self.endpoints.update(self.children.wait_ready(p, g))
        return time.perf_counter() - t0

    # -- baseline ----------------------------------------------------------
    def start_relay(self, *, pki: Path, backend_code: str, response_bytes: int, uvloop: bool = False,
                    plumbed: bool = False, interceptor: bool = True, sync_threads: int = 0,
                    grpc_env: Mapping[str, str] | None = GRPC_DEFAULT) -> None:
        """A relay and its backend, on grpcio's default polling (``grpc_env=None``: on tongban's)."""
        extra = (["--uvloop"] if uvloop else []) + (["--plumbed"] if plumbed else [])
        extra += ["--sync-threads", str(sync_threads)] if sync_threads else []
        extra += [] if interceptor or not plumbed else ["--no-interceptor"]
        backend = self._start(["backend", "--pki", str(pki), "--code", backend_code,
                               "--response-bytes", str(response_bytes), *extra], "backend", "bench.relay",
                              env=grpc_env)
        endpoint = self.children.wait_ready(backend, [backend_code])[backend_code]
        self.endpoints[backend_code] = endpoint  # a load generator may call the backend itself
        relay = self._start(["relay", "--pki", str(pki), "--backend", endpoint, "--backend-code", backend_code,
                             *extra], "relay", "bench.relay", env=grpc_env)
        self.hub = self.children.wait_ready(relay, [HUB_CODE])[HUB_CODE]

    def start_baseline(self, *, pki: Path, backend_code: str, sizes: dict[str, Any],
                       base_cfg: dict[str, Any]) -> Loadgen:
        """(a): the plain relay at tongban's message ``sizes``, and its load generator."""
        self.start_relay(pki=pki, backend_code=backend_code, response_bytes=sizes["response_bytes"])
        return self.loadgen({**base_cfg, "driver": "relay", "request_bytes": sizes["request_bytes"]},
                            env=GRPC_DEFAULT)

    # -- load --------------------------------------------------------------
    def loadgen(self, config: dict[str, Any], env: Mapping[str, str] | None = None) -> Loadgen:
        """A load generator for this set-up; ``env`` adds to its environment (gRPC's polling:
        tongban's unless it says otherwise)."""
        path = self.work / f"loadgen-{next(_names)}.json"
        path.write_text(json.dumps({"endpoint": self.hub, "endpoints": self.endpoints, **config}), encoding="utf-8")
        proc = self.children.start([str(path)], path.stem, module="bench.loadgen", env=dict(env or {}))
        lg = Loadgen(self.children, proc, dict(self.node_pids))
        deadline = time.monotonic() + 120
        while not lg.ready:
            try:
                events = self.children.read_events(proc, max(0.1, deadline - time.monotonic()))
            except EOFError:
                raise TongbanError(f"load generator exited with {proc.wait()} before it was ready "
                                   f"(see {self.children.log_dir / (path.stem + '.log')})") from None
            if not events and time.monotonic() > deadline:
                raise TongbanError("load generator not ready after 120 s")
            lg.ready = next((e for e in events if e.get("event") == "ready"), {})
        warm = lg.ready.get("warmup", {})
        if warm.get("errors"):
            raise TongbanError(f"load generator warm-up failed: {warm.get('sample_error')}")
        return lg

    def rss_peak_mb(self, labels: list[str] | None = None) -> dict[str, float]:
        """VmHWM (peak resident set) of each node process, in MiB."""
        out = {}
        for label, pid in self.node_pids.items():
            if labels is not None and label not in labels:
                continue
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        out[label] = round(int(line.split()[1]) / 1024, 1)
            except OSError:
                pass
        return out
