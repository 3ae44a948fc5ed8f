"""The scenario runner: PKI and world (cached), node processes, load, report.

Processes: one hub, ``province_processes`` processes hosting the 32 provinces
(their command lines name their role and codes, e.g.
``python -m tongban node province 110000 120000 …``), and a load generator.
Ctrl-C stops everything and still writes what was measured.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certs.pki import HUB_CODE, PROVINCE_CODES, init_pki, load_pki_manifest
from exchange.errors import ConfigError, LedgerChainError, TongbanError
from exchange.geo import province
from exchange.ledger import verify_ledger
from exchange.metrics import FlowStats
from exchange.scenario import Scenario

__all__ = ["RunResult", "ensure_pki", "ensure_world", "run_scenario"]

log = logging.getLogger(__name__)

_CACHE_VERSION = 1
_READY_TIMEOUT_S = 60.0


@dataclass
class RunResult:
    """What a run measured."""

    scenario: Scenario
    out_dir: Path
    duration_s: float
    flows: dict[str, FlowStats] = field(default_factory=dict)
    ledgers: dict[str, int] = field(default_factory=dict)
    planned: int = 0
    interrupted: bool = False

    def report(self) -> dict[str, Any]:
        done = sum(s.count for s in self.flows.values())
        return {
            "schema_version": 1,
            "scenario": self.scenario.name,
            "scenario_sha256": self.scenario.sha256,
            "seed": self.scenario.seed,
            "scale": self.scenario.scale,
            "duration_s": round(self.duration_s, 3),
            "interrupted": self.interrupted,
            "flows": {name: s.summary(self.duration_s) for name, s in sorted(self.flows.items())},
            "ledger_rows": self.ledgers,
            "reconciliation": {"planned": self.planned, "completed": done, "lost": self.planned - done},
        }


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def ensure_pki(cache: Path, *, sign_alg: str = "p256") -> Path:
    """A PKI for the hub and 32 provinces, reused while its inputs are unchanged."""
    path = cache / f"pki-{_hash(_CACHE_VERSION, sign_alg, PROVINCE_CODES)}"
    if not (path / "pki.json").exists():
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        init_pki(tmp, sign_alg=sign_alg)  # type: ignore[arg-type]
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    load_pki_manifest(path)
    return path


def ensure_world(cache: Path, *, scale: float, seed: int) -> Path:
    """A synthetic world, reused while (scale, seed, generator) are unchanged."""
    from nodes.world import generate_world

    path = cache / f"world-{_hash(_CACHE_VERSION, scale, seed)}"
    if not (path / "world.json").exists():
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        generate_world(tmp, scale=scale, seed=seed)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    return path


def _pack(codes: Sequence[str], n: int) -> list[list[str]]:
    """Spread codes over ``n`` processes round-robin, so big provinces spread out."""
    groups: list[list[str]] = [[] for _ in range(min(n, len(codes)))]
    for i, code in enumerate(codes):
        groups[i % len(groups)].append(code)
    return groups


class _Children:
    """The node processes of one run, stopped however the run ends."""

    def __init__(self, log_dir: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log_dir = log_dir

    def start(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        err = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed by the child's exit
        p = subprocess.Popen([sys.executable, "-m", "tongban", *args], stdout=subprocess.PIPE, stderr=err,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        err.close()
        self.procs.append(p)
        return p

    def wait_ready(self, proc: subprocess.Popen[bytes], codes: Sequence[str]) -> dict[str, str]:
        """Read the ready lines of ``codes`` from ``proc``; fail if it dies or is too slow."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        want, endpoints, buf = set(codes), {}, b""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while want:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TongbanError(f"nodes {sorted(want)} not ready after {_READY_TIMEOUT_S:.0f} s "
                                       f"(see {self.log_dir})")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise TongbanError(f"node process for {sorted(want)} exited with {proc.wait()} "
                                       f"before it was ready (see {self.log_dir})")
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    event = json.loads(line)
                    endpoints[event["code"]] = event["endpoint"]
                    want.discard(event["code"])
        finally:
            sel.close()
        return endpoints

    def stop(self, timeout_s: float = 15.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("process %d did not stop in time; killing it", p.pid)
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()


def _plan(scenario: Scenario, data_dir: Path, rng: random.Random) -> list[dict[str, Any]]:
    """Poisson arrivals per flow between population-weighted cross-province pairs."""
    from nodes.store import ProvinceStore

    codes = list(PROVINCE_CODES)
    weights = [province(c).population_2020 for c in codes]
    arrivals: list[tuple[float, str]] = []
    for f in scenario.flows:
        t = rng.expovariate(f.rate_per_s)
        while t < scenario.duration_s:
            arrivals.append((t, f.flow))
            t += rng.expovariate(f.rate_per_s)
    arrivals.sort()
    pairs = []
    for _ in arrivals:
        origin = rng.choices(codes, weights)[0]
        target = origin
        while target == origin:
            target = rng.choices(codes, weights)[0]
        pairs.append((origin, target))
    need: dict[str, int] = {}
    for _, target in pairs:
        need[target] = need.get(target, 0) + 1
    people: dict[str, list[Any]] = {}
    certs: dict[str, list[Any]] = {}
    for code, n in need.items():
        with ProvinceStore(data_dir / f"{code}.sqlite", code=code) as store:
            people[code] = store.sample_persons(rng, min(n, 200))
            certs[code] = store.sample_certificates(rng, min(n, 200))
    plan = []
    for (at, flow), (origin, target) in zip(arrivals, pairs, strict=True):
        req: dict[str, Any] = {"at_s": round(at, 6), "flow": flow, "origin": origin, "serial": f"{len(plan):08d}"}
        if flow == "identity.verify":
            p = rng.choice(people[target])
            wrong = rng.random() < scenario.identity_mismatch_ratio
            req.update(holder=p.id_number, name=(p.name + "某") if wrong else p.name, photo=p.photo_sha256,
                       item="居民身份证换领补领异地受理")
        else:
            c = rng.choice(certs[target])
            req.update(holder=c.holder_code, cert_type=c.type_code, item="跨省通办 电子证照调用")
        plan.append(req)
    return plan


def run_scenario(
    scenario: Scenario,
    *,
    out_dir: Path,
    cache_dir: Path,
    on_phase: Callable[[str], None] = lambda _: None,
) -> RunResult:
    """Run one scenario end to end; returns what it measured (also on Ctrl-C)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "logs").mkdir(exist_ok=True)
    on_phase("preparing PKI and world")
    pki = ensure_pki(cache_dir)
    world = ensure_world(cache_dir, scale=scenario.scale, seed=scenario.seed)
    data = out_dir / "data"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(world, data)
    rng = random.Random(f"{scenario.seed}:plan")
    plan = _plan(scenario, data, rng)
    result = RunResult(scenario=scenario, out_dir=out_dir, duration_s=0.0, planned=len(plan))
    children = _Children(out_dir / "logs")
    try:
        on_phase("starting hub")
        hub = children.start(["node", "hub", "--pki", str(pki), "--data", str(data),
                              "--listen", "127.0.0.1:0"], "hub-000000")
        hub_endpoint = children.wait_ready(hub, [HUB_CODE])[HUB_CODE]
        on_phase(f"starting 32 provinces in {scenario.province_processes} processes")
        groups = _pack(PROVINCE_CODES, scenario.province_processes)
        procs = [children.start(["node", "province", *g, "--pki", str(pki), "--data", str(data),
                                 "--listen", "127.0.0.1:0", "--hub", hub_endpoint], f"province-{i}")
                 for i, g in enumerate(groups)]
        endpoints: dict[str, str] = {}
        for p, g in zip(procs, groups, strict=True):
            endpoints.update(children.wait_ready(p, g))
        plan_doc = {
            "endpoints": endpoints, "requests": plan, "timeout_s": scenario.request_timeout_s,
            "pki": str(pki),
        }
        plan_path, result_path = out_dir / "plan.json", out_dir / "loadgen-0.json"
        plan_path.write_text(json.dumps(plan_doc, ensure_ascii=False), encoding="utf-8")
        on_phase(f"driving {len(plan)} requests over {scenario.duration_s:g} s")
        started = time.monotonic()
        lg = subprocess.run([sys.executable, "-m", "exchange.loadgen", str(plan_path), str(result_path)],
                            stdin=subprocess.DEVNULL, check=False)
        if lg.returncode != 0:
            raise TongbanError(f"load generator exited with {lg.returncode}")
        doc = json.loads(result_path.read_text(encoding="utf-8"))
        result.duration_s = float(doc["elapsed_s"]) or (time.monotonic() - started)
        for f in doc["flows"]:
            stats = FlowStats.from_json(f)
            result.flows.setdefault(stats.flow, FlowStats(stats.flow)).merge(stats)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        on_phase("stopping nodes")
        children.stop()
    on_phase("verifying ledgers")
    for code in (HUB_CODE, *PROVINCE_CODES):
        db = data / f"{code}.sqlite"
        try:
            result.ledgers[code] = verify_ledger(db).rows
        except LedgerChainError:
            raise
        except TongbanError as e:
            raise ConfigError(f"ledger of {code}: {e}") from e
    (out_dir / "report.json").write_text(json.dumps(result.report(), ensure_ascii=False, indent=2) + "\n",
                                         encoding="utf-8")
    return result


