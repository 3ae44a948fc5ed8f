"""The benchmark's load generator: one process, the same for every variant.

    python -m bench.loadgen CONFIG.json

CONFIG names a driver and what it needs:

- ``relay``: raw bytes of ``request_bytes`` to the baseline relay, as province
  ``origins[0]`` over mTLS (its TLS certificate); with ``peer``, to the server with that
  node's TLS certificate at ``endpoint`` (the relay's backend, called without the relay);
- ``exchange``: acts as the origin provinces do towards the hub: seals each
  ecert.fetch request with the origin's signing key, sends it to the hub over
  mTLS as that origin (``transport`` "stream", tongban's default: multiplexed on
  HubService.ExchangeStream as a province does; "unary": one HubService.Exchange
  call each), then opens the target's answer exactly as a province
  does (signature and key chain via the verified directory, freshness, replay,
  binding to the request, the certificate's own issuer signature). No ledger:
  the client stands for the relay baseline's client. With ``"direct": true`` it calls
  each target's NodeService.HandleStream at ``endpoints[target]`` itself, as a province
  does where the hub's topology is "direct" (no hub on the path);
- ``window``: a submission to the origin province's WindowService (window -> A -> hub
  -> B), as ``tongban run``'s load generator makes it: multiplexed on
  WindowService.SubmitStream (``window_transport`` "stream", the default), or one
  WindowService.Submit call each ("unary").

It connects, warms up, prints ``{"event": "ready"}`` and then runs one command per
stdin line, answering each with one ``{"event": "result", ...}`` line:

    {"op": "closed", "concurrency": 16, "duration_s": 3, "warmup_s": 0.5}
    {"op": "open", "rate_per_s": 650, "duration_s": 4, "warmup_s": 0.5, "seed": 1}
    {"op": "probe", "n": 40}
    {"op": "quit"}

Latencies are microseconds in an HdrHistogram (``hdr`` is its base64 encoding,
mergeable); open-loop latencies run from each request's planned time, so a
late start counts against the system (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

import grpc
from cryptography import x509
from hdrh.histogram import HdrHistogram

from certs.pki import load_client_credentials, load_node_credentials
from exchange import payloads
from exchange._machine import busy_ticks, ticks_per_s
from exchange.directory import verify_directory
from exchange.dsse import DsseEnvelope, seal
from exchange.header import make_header
from exchange.opener import check_binding, open_envelope
from exchange.replay import ReplayWindow
from exchange.trust import TrustStore
from nodes.flows import check_answer
from nodes.process import settle_heap
from nodes.stream import EXCHANGE_STREAM, HANDLE_STREAM, WINDOW_STREAM, StreamMux, check_transport
from tongban.v1 import ecert_pb2, header_pb2, services_pb2, services_pb2_grpc

__all__ = ["main", "summarise"]

_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 120_000_000, 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


def summarise(hist: HdrHistogram) -> dict[str, Any]:
    """Percentiles in milliseconds from one (possibly merged) histogram."""
    n = hist.get_total_count()
    pct = {f"p{p}_ms": round(hist.get_value_at_percentile(p) / 1000, 3) if n else None for p in (50, 90, 99)}
    return {"count": n, **pct, "max_ms": round(hist.get_max_value() / 1000, 3) if n else None,
            "hdr": hist.encode().decode("ascii")}


class Driver(Protocol):
    async def call(self, timeout_s: float) -> None: ...
    def sizes(self) -> tuple[int, int]: ...
    async def close(self) -> None: ...


def _creds(pki: Path, code: str) -> grpc.ChannelCredentials:
    c = load_node_credentials(pki, code)
    return grpc.ssl_channel_credentials(root_certificates=c.root_pem, private_key=c.tls_key_pem,
                                        certificate_chain=c.tls_chain_pem)


def _channel(endpoint: str, creds: grpc.ChannelCredentials, peer: str) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(endpoint, creds, options=[
        ("grpc.ssl_target_name_override", f"node-{peer}.tongban.test")])


class RelayDriver:
    def __init__(self, cfg: dict[str, Any]) -> None:
        from bench.relay import METHOD, PLUMBED_METHOD, STREAM_METHOD, fake_envelope

        # ``peer``: whose TLS certificate answers (the relay presents the hub's; its backend a province's)
        self.channel = _channel(cfg["endpoint"], _creds(Path(cfg["pki"]), cfg["origins"][0]), cfg.get("peer", "000000"))
        self.streaming = bool(cfg.get("streaming"))
        # tongban's own stream code (bench/relay.py's plumbed servers serve it), unsigned
        self.mux = StreamMux(self.channel, EXCHANGE_STREAM, hop="relay") if cfg.get("muxed") else None
        self.open_stream = self.channel.stream_stream(STREAM_METHOD)
        self.idle: list[Any] = []  # long-lived streams not in use; grows to the concurrency
        if cfg.get("plumbed"):  # tongban's method and message, unsigned: the relay parses and re-wraps it
            self.stub = self.channel.unary_unary(PLUMBED_METHOD)
            self.envelope = fake_envelope(int(cfg["request_bytes"]), payloads.ECERT_REQUEST)
            self.request = services_pb2.ExchangeRequest(envelope=self.envelope).SerializeToString()
        else:
            self.stub = self.channel.unary_unary(METHOD)
            self.request = random.Random(0).randbytes(int(cfg["request_bytes"]))
        self.last = (len(self.request), 0)

    async def call(self, timeout_s: float) -> None:
        if self.mux is not None:  # plumbed: self.envelope is set
            size = (await self.mux.send(self.envelope, timeout_s)).ByteSize()
        elif self.streaming:
            stream = self.idle.pop() if self.idle else self.open_stream()
            await stream.write(self.request)
            size = len(await asyncio.wait_for(stream.read(), timeout_s))
            self.idle.append(stream)
        else:
            size = len(await self.stub(self.request, timeout=timeout_s))
        self.last = (len(self.request), size)

    def sizes(self) -> tuple[int, int]:
        return self.last

    async def close(self) -> None:
        if self.mux is not None:
            await self.mux.close()
        for stream in self.idle:
            await stream.done_writing()
        await self.channel.close()


class ExchangeDriver:
    """Seals as the origin, calls the hub, verifies the answer like a province."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        pki = Path(cfg["pki"])
        self.jobs = itertools.cycle([tuple(j) for j in cfg["jobs"]])
        self.signers, self.stubs, self.channels, self.replay, self.muxes = {}, {}, [], {}, {}
        self.transport = cfg.get("transport", "stream")
        root = None
        # Co-hosted origins (``carriers``: origin -> its host) share their host's connection,
        # as the provinces of a ``--cohost`` process do.
        carriers: dict[str, str] = cfg.get("carriers") or {}
        for code in sorted({j[0] for j in cfg["jobs"]}):
            creds = load_node_credentials(pki, code)
            root = root or x509.load_pem_x509_certificate(creds.root_pem)
            carrier = carriers.get(code, code)
            if carrier not in self.stubs:
                ch = _channel(cfg["endpoint"], _creds(pki, carrier), "000000")
                self.channels.append(ch)
                self.stubs[carrier] = services_pb2_grpc.HubServiceStub(ch)
                lanes = cfg.get("stream_lanes")  # like province A's: the nodes' setting (None: the default)
                self.muxes[carrier] = (StreamMux(ch, EXCHANGE_STREAM, hop="hub") if lanes is None
                                       else StreamMux(ch, EXCHANGE_STREAM, hop="hub", max_lanes=int(lanes)))
            self.muxes[code] = self.muxes[carrier]
            self.signers[code] = creds.sign_signer
            self.replay[code] = ReplayWindow()
        # ``direct``: straight to the target's NodeService.HandleStream, as a province does
        # where the hub's topology is "direct" (no hub on the path).
        self.direct: dict[tuple[str, str], StreamMux] = {}
        if cfg.get("direct"):
            for origin, target in sorted({(j[0], j[1]) for j in cfg["jobs"]}):
                ch = _channel(cfg["endpoints"][target], _creds(pki, origin), target)
                self.channels.append(ch)
                self.direct[origin, target] = StreamMux(ch, HANDLE_STREAM, hop=f"node {target}")
        self.trust = TrustStore(root)
        self.directory: Any = None
        self.last = (0, 0)
        self.last_mark: list[Any] = []  # bench/timeline.py: [trace id, origin, start, sealed, answered, checked]

    async def fetch_directory(self) -> None:
        stub = next(iter(self.stubs.values()))
        reply = await stub.GetDirectory(services_pb2.GetDirectoryRequest(), timeout=10)
        self.directory = verify_directory(DsseEnvelope.from_pb(reply.directory), self.trust, now_ns=time.time_ns())

    async def call(self, timeout_s: float) -> None:
        origin, target, holder, cert_type = next(self.jobs)
        t_start = time.time_ns()
        header = make_header(sender=origin, receiver="", now_ns=t_start, lifetime_ms=30_000,
                             purpose="跨省通办 电子证照调用 (bench)", holder_id=holder, cert_type=cert_type,
                             audit=header_pb2.AuditContext(organisation=f"{origin} 政务服务中心", operator="窗口",
                                                           item_name="跨省通办 电子证照调用"))
        env = seal(payloads.ECERT_REQUEST, ecert_pb2.EcertFetchRequest(header=header).SerializeToString(),
                   self.signers[origin])
        request = services_pb2.ExchangeRequest(envelope=env.to_pb())
        t_sealed = time.time_ns()
        mux = self.direct[origin, target] if self.direct else self.muxes[origin]
        answer = await mux.send(request.envelope, timeout_s, stream=self.transport == "stream")
        reply = services_pb2.ExchangeResponse(envelope=answer)
        now = time.time_ns()
        resp_env = DsseEnvelope.from_pb(reply.envelope)
        opened = open_envelope(resp_env, directory=self.directory, trust=self.trust, me=origin, now_ns=now,
                               expect="response", replay=self.replay[origin], size_bytes=reply.envelope.ByteSize())
        receiver = opened.header.sender
        check_binding(opened, request=env, requester=origin, responder=receiver)
        check_answer(opened, request_subject=header.subject, directory=self.directory, trust=self.trust, now_ns=now)
        self.last_mark = [header.trace_id, origin, t_start, t_sealed, now, time.time_ns()]
        self.last = (request.ByteSize(), reply.ByteSize())

    def sizes(self) -> tuple[int, int]:
        return self.last

    async def close(self) -> None:
        for mux in [*{id(m): m for m in self.muxes.values()}.values(), *self.direct.values()]:
            await mux.close()
        for ch in self.channels:
            await ch.close()


class WindowDriver:
    def __init__(self, cfg: dict[str, Any]) -> None:
        chain, key, root = load_client_credentials(Path(cfg["pki"]))
        creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
        self.jobs = itertools.cycle([tuple(j) for j in cfg["jobs"]])
        self.channels, self.muxes = [], {}
        self.stream = check_transport(cfg.get("window_transport", "stream"), setting="window_transport") == "stream"
        for code, endpoint in cfg["endpoints"].items():
            ch = _channel(endpoint, creds, code)
            self.channels.append(ch)
            self.muxes[code] = StreamMux(ch, WINDOW_STREAM, hop=f"window service of {code}")
        self.last = (0, 0)

    async def call(self, timeout_s: float) -> None:
        origin, _target, holder, cert_type = next(self.jobs)
        msg = services_pb2.SubmitRequest(
            flow="ecert.fetch", subject=header_pb2.Subject(holder_id=holder, cert_type=cert_type),
            purpose="跨省通办 电子证照调用 (bench)",
            audit=header_pb2.AuditContext(organisation=f"{origin} 政务服务中心", operator="窗口",
                                          item_name="跨省通办 电子证照调用"))
        resp = await self.muxes[origin].send(msg, timeout_s, stream=self.stream)
        if resp.outcome != "ok":
            raise RuntimeError(f"window outcome {resp.outcome}: {resp.detail[:200]}")
        self.last = (msg.ByteSize(), resp.ByteSize())

    def sizes(self) -> tuple[int, int]:
        return self.last

    async def close(self) -> None:
        for mux in self.muxes.values():
            await mux.close()
        for ch in self.channels:
            await ch.close()


def _cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _switches(pid: int) -> int:
    """Context switches (voluntary + involuntary) of every live thread of ``pid`` so far."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
                for line in f:
                    if line.startswith((b"voluntary_ctxt_switches", b"nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
    return total


class _CpuMeter:
    """CPU seconds each process, and everything else on the machine, spent in the window;
    and how often each process's threads were switched out (each wake-up costs kernel
    time and cold caches: where messages do not batch, that cost grows per exchange)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {"loadgen": os.getpid(), **pids}
        self.start: dict[str, int] = {}
        self.used_s: dict[str, float] = {}
        self.switches: dict[str, int] = {}
        self.others_s = 0.0

    async def watch(self, t_measure_ns: int, t_end_ns: int) -> None:
        await asyncio.sleep(max(0.0, (t_measure_ns - time.perf_counter_ns()) / 1e9))
        self.start = {k: _cpu_ticks(p) for k, p in self.pids.items()}
        switched = {k: _switches(p) for k, p in self.pids.items()}
        system = busy_ticks() or 0  # the whole machine, all CPUs
        await asyncio.sleep(max(0.0, (t_end_ns - time.perf_counter_ns()) / 1e9))
        tick = ticks_per_s()
        self.used_s = {k: (_cpu_ticks(p) - self.start[k]) / tick for k, p in self.pids.items()}
        self.switches = {k: max(0, _switches(p) - switched[k]) for k, p in self.pids.items()}
        self.others_s = max(0.0, ((busy_ticks() or 0) - system) / tick - sum(self.used_s.values()))

    def per_call_us(self, calls: int, duration_s: float) -> dict[str, Any]:
        if not self.used_s or not calls:
            return {}
        per = {k: round(v * 1e6 / calls) for k, v in self.used_s.items()}
        return {"cpu_us_per_call": per, "cpu_busy": {k: round(v / duration_s, 2) for k, v in self.used_s.items()},
                "switches_per_call": {k: round(v / calls, 2) for k, v in self.switches.items()},
                "others_busy": round(self.others_s / duration_s, 2)}


def _error_name(e: BaseException) -> str:
    if isinstance(e, grpc.aio.AioRpcError):
        return f"rpc_{e.code().name.lower()}"
    return type(e).__name__


class _Run:
    """Counts and latencies of one measurement."""

    def __init__(self) -> None:
        self.hist = new_histogram()
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.sample_error = ""

    def fail(self, e: BaseException) -> None:
        self.errors[_error_name(e)] += 1
        self.sample_error = self.sample_error or f"{_error_name(e)}: {str(e)[:300]}"

    def result(self, op: str, **extra: Any) -> dict[str, Any]:
        return {"event": "result", "op": op, "ok": self.ok, "errors": dict(self.errors),
                "sample_error": self.sample_error, **extra, "latency": summarise(self.hist)}


async def closed(driver: Driver, *, concurrency: int, duration_s: float, warmup_s: float,
                 timeout_s: float, pids: dict[str, int] | None = None, marks: bool = False) -> dict[str, Any]:
    """``concurrency`` callers, each sending its next request as soon as the last returns.
    With ``marks``, the result carries each measured call's ``last_mark`` (drivers that
    note one: ExchangeDriver) for bench/timeline.py."""
    run = _Run()
    noted: list[Any] = []
    t_measure = time.perf_counter_ns() + int(warmup_s * 1e9)
    t_end = t_measure + int(duration_s * 1e9)
    cpu = _CpuMeter(pids or {})
    meter = asyncio.ensure_future(cpu.watch(t_measure, t_end))

    async def caller() -> None:
        while (t0 := time.perf_counter_ns()) < t_end:
            try:
                await driver.call(timeout_s)
                failed = None
            except Exception as e:  # noqa: BLE001 - every failure is counted, by kind
                failed = e
            t1 = time.perf_counter_ns()
            if t0 >= t_measure and t1 <= t_end:
                if failed is None:
                    run.ok += 1
                    run.hist.record_value(max(1, (t1 - t0) // 1000))
                    if marks and getattr(driver, "last_mark", None):
                        noted.append(driver.last_mark)  # set by this call: no await since it returned
                else:
                    run.fail(failed)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    await meter
    return run.result("closed", concurrency=concurrency, duration_s=duration_s,
                      throughput_per_s=round(run.ok / duration_s, 1), **cpu.per_call_us(run.ok, duration_s),
                      **({"marks": noted} if marks else {}))


async def open_loop(driver: Driver, *, rate_per_s: float, duration_s: float, warmup_s: float,
                    timeout_s: float, seed: int, pids: dict[str, int] | None = None) -> dict[str, Any]:
    """Poisson arrivals at ``rate_per_s``, whatever the state of earlier requests."""
    run = _Run()
    rng = random.Random(seed)
    t_start = time.perf_counter_ns()
    t_measure = t_start + int(warmup_s * 1e9)
    t_end = t_measure + int(duration_s * 1e9)
    cpu = _CpuMeter(pids or {})
    meter = asyncio.ensure_future(cpu.watch(t_measure, t_end))
    tasks: list[asyncio.Task[None]] = []
    late_starts = 0

    async def one(planned: int) -> None:
        try:
            await driver.call(timeout_s)
            failed = None
        except Exception as e:  # noqa: BLE001
            failed = e
        if planned >= t_measure:
            if failed is None:
                run.ok += 1
                run.hist.record_value(max(1, (time.perf_counter_ns() - planned) // 1000))
            else:
                run.fail(failed)

    planned = t_start
    sent = 0
    while planned < t_end:
        now = time.perf_counter_ns()
        if planned > now:
            await asyncio.sleep((planned - now) / 1e9)
        elif now - planned > 1_000_000:
            late_starts += 1
        tasks.append(asyncio.ensure_future(one(planned)))
        sent += planned >= t_measure
        planned += int(rng.expovariate(rate_per_s) * 1e9)
    await asyncio.gather(*tasks)
    await meter
    drained_s = (time.perf_counter_ns() - t_end) / 1e9
    return run.result("open", rate_per_s=rate_per_s, duration_s=duration_s, offered=sent,
                      offered_per_s=round(sent / duration_s, 1),
                      achieved_per_s=round(run.ok / (duration_s + drained_s), 1), late_starts=late_starts,
                      drain_s=round(drained_s, 3), **cpu.per_call_us(run.ok, duration_s))


async def probe(driver: Driver, n: int, timeout_s: float) -> dict[str, Any]:
    """Mean wire sizes (serialized request and response messages) over ``n`` calls."""
    req = resp = 0
    for _ in range(n):
        await driver.call(timeout_s)
        q, r = driver.sizes()
        req, resp = req + q, resp + r
    return {"event": "result", "op": "probe", "n": n, "request_bytes": round(req / n), "response_bytes": round(resp / n)}


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


async def serve(cfg: dict[str, Any]) -> None:
    kind = cfg["driver"]
    driver: Any = {"relay": RelayDriver, "exchange": ExchangeDriver, "window": WindowDriver}[kind](cfg)
    timeout_s = float(cfg.get("timeout_s", 5.0))
    if isinstance(driver, ExchangeDriver):
        await driver.fetch_directory()
    # Warm up: TLS handshakes, every node's caches (chain checks, sealed certificates).
    warm = await closed(driver, concurrency=4, duration_s=float(cfg.get("warmup_s", 1.0)), warmup_s=0,
                        timeout_s=timeout_s)
    # The nodes freeze their start-up heap (nodes.process.settle_heap); the load generator,
    # shared by every set-up, does too, so its own full collections do not show up as
    # 20-100 ms latency spikes of whichever set-up it happens to measure.
    settle_heap()
    _emit({"event": "ready", "warmup": {k: warm[k] for k in ("ok", "errors", "sample_error")}})
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        cmd = json.loads(line)
        op = cmd.pop("op")
        if op == "quit":
            break
        if op == "closed":
            _emit(await closed(driver, timeout_s=timeout_s, **cmd))
        elif op == "open":
            _emit(await open_loop(driver, timeout_s=timeout_s, **cmd))
        elif op == "probe":
            _emit(await probe(driver, int(cmd.get("n", 40)), timeout_s))
        else:
            _emit({"event": "error", "detail": f"unknown op {op!r}"})
    await driver.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m bench.loadgen CONFIG.json\n")
        return 2
    asyncio.run(serve(json.loads(Path(args[0]).read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
