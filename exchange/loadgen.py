"""The load generator: a separate process standing in for the service windows.

It reads a plan (who asks what, when), fires each request at its planned time
whatever the state of earlier ones (open loop, so queueing shows in the latency
instead of slowing the arrivals) to the origin province's WindowService, prints one
progress line per second on stdout, and writes its measurements as JSON for the
runner to merge. Submissions go on one ``SubmitStream`` per province, those made
together in one message (``Submit`` for a node without it): one unary call each
cost the three nodes twice the CPU per exchange (bench/results/profile-notes.md).
Measurements:

- per flow, per origin and per completion second: outcome counts and an
  HdrHistogram of latencies (merged by the runner, never averaged);
- origin x target volumes;
- how late each request went out: a histogram of the lag behind its planned
  time, and how many went out ``exchange.metrics.LATE_US`` or more behind it;
- its own CPU time over the load (``cpu_s``): the cores it takes from the nodes.

Latency runs from the request's planned time, not from when it went out. On a
busy machine the load generator itself falls behind (60 s at 520 requests/s on the
33-node quickstart topology, 2 cores: p99 76 and 458 ms behind plan in two runs);
timing from the send would leave that wait out of every figure just when the
system is slowest (coordinated omission).

Requests planned before ``warmup_s`` are sent and reconciled but not counted in
the flow, origin and matrix figures.

    python -m exchange.loadgen PLAN.json RESULT.json

PLAN.json holds the endpoints, credentials and timing, and either the requests
(``"requests"``: a list, any order) or the name of a file beside it with one
request per line in time order (``"requests_file"``, as the runner writes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from certs.pki import load_client_credentials
from exchange.errors import TimedOutError, TongbanError
from exchange.metrics import FlowStats, SendLag, stats_in
from nodes._status import status_of
from nodes.stream import WINDOW_STREAM, StreamMux
from tongban.v1 import header_pb2, services_pb2

__all__ = ["drive", "main"]

#: While waiting for a request's planned time, look at least this often (s) for a stop.
_STOP_CHECK_S = 0.25


class _Tally:
    def __init__(self) -> None:
        self.flows: dict[str, FlowStats] = {}
        self.origins: dict[str, FlowStats] = {}
        #: completion second -> its stats, for the last two seconds only; earlier seconds
        #: are final and kept encoded in ``sealed`` (a histogram takes 170 KiB live, a few
        #: KiB encoded: a long run must not grow by a live histogram every second).
        self.seconds: dict[int, FlowStats] = {}
        self.sealed: dict[int, dict[str, Any]] = {}
        self.pairs: Counter[str] = Counter()
        self.fired = 0
        self.lag = SendLag()
        self.done = 0
        #: requests that never entered the exchange (the window refused them or could not be
        #: reached), by outcome, warm-up included: no ledger has a row of them
        self.at_window: Counter[str] = Counter()
        self.interrupted = False
        self.apply: dict[str, dict[str, float]] = {}

    def applied(self, item: str, trips: int, delay_days: float) -> None:
        a = self.apply.setdefault(item, {"count": 0, "zero": 0, "at_most_once": 0, "delay_days": 0.0})
        a["count"] += 1
        a["zero"] += trips == 0
        a["at_most_once"] += trips <= 1
        a["delay_days"] += delay_days

    def sent(self, lag_us: int) -> None:
        """A request went out ``lag_us`` behind its planned time."""
        self.fired += 1
        self.lag.record(lag_us)

    @property
    def sent_late(self) -> int:
        return self.lag.late

    def record(self, req: dict[str, Any], outcome: str, latency_us: int, result: str, second: int,
               counted: bool) -> None:
        self.done += 1
        if outcome.startswith("window_"):
            self.at_window[outcome] += 1
        self._second(second).record(outcome, latency_us)
        if counted:
            stats_in(self.flows, req["flow"]).record(outcome, latency_us, result)
            stats_in(self.origins, req["origin"]).record(outcome, latency_us)
            self.pairs[f"{req['origin']}>{req['target']}"] += 1

    def _second(self, second: int) -> FlowStats:
        s = self.seconds.get(second)
        if s is None:
            sealed = self.sealed.pop(second, None)  # only if the clock stepped back
            s = self.seconds[second] = FlowStats.from_json(sealed) if sealed else FlowStats(str(second))
            for t in [t for t in self.seconds if t < second - 1]:
                self.sealed[t] = self.seconds.pop(t).to_json()
        return s

    def second_json(self, second: int) -> dict[str, Any] | None:
        """The stats of requests completed in ``second``, as in the result document."""
        s = self.seconds.get(second)
        return s.to_json() if s is not None else self.sealed.get(second)

    def to_json(self, elapsed_s: float, cpu_s: float = 0.0) -> dict[str, Any]:
        return {
            "elapsed_s": elapsed_s, "cpu_s": round(cpu_s, 3), "fired": self.fired, "done": self.done,
            "interrupted": self.interrupted,
            **self.lag.to_json(),
            "flows": [s.to_json() for s in self.flows.values()],
            "origins": [s.to_json() for s in self.origins.values()],
            "seconds": [self.second_json(t) for t in sorted({*self.seconds, *self.sealed})],
            "pairs": dict(self.pairs),
            "at_window": dict(self.at_window),
            "apply": self.apply,
        }


def _progress(second: int, tally: _Tally) -> None:
    doc = {"event": "progress", "t": second, "fired": tally.fired, "done": tally.done,
           "stats": tally.second_json(second)}
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


async def drive(plan: dict[str, Any], *, progress: bool = False) -> dict[str, Any]:
    """Run ``plan`` and return the result document."""
    chain, key, root = load_client_credentials(Path(plan["pki"]))
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    windows: dict[str, tuple[StreamMux, grpc.aio.Channel]] = {}  # per origin: its window's stream
    retired: list[tuple[StreamMux, grpc.aio.Channel]] = []

    def connect(code: str, endpoint: str) -> None:
        if code in windows:
            retired.append(windows[code])  # closed at the end: calls may still be using it
        ch = grpc.aio.secure_channel(endpoint, creds, options=[
            ("grpc.ssl_target_name_override", f"node-{code}.tongban.test"),
            ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)])
        windows[code] = StreamMux(ch, WINDOW_STREAM, hop=f"window service of {code}"), ch

    for code, endpoint in plan["endpoints"].items():
        connect(code, endpoint)
    watcher = asyncio.ensure_future(_watch_endpoints(connect)) if progress else None
    tally = _Tally()
    timeout = float(plan.get("timeout_s", 10.0))
    warmup = float(plan.get("warmup_s", 0.0))
    start = float(plan.get("start_at", 0.0)) or time.time()
    # The schedule on the monotonic clock: request i is due at start_ns + at_s.
    start_ns = time.perf_counter_ns() + int((start - time.time()) * 1e9)

    async def one(req: dict[str, Any], due_ns: int) -> None:
        try:
            await submit(req, due_ns)
        except Exception as e:  # noqa: BLE001 - a malformed plan entry is counted, not dropped
            tally.record(req, f"loadgen_{type(e).__name__}", 0, "", int(time.time() - start), True)

    async def submit(req: dict[str, Any], due_ns: int) -> None:
        msg = services_pb2.SubmitRequest(
            flow=req["flow"], receiver=req.get("receiver", ""),
            subject=header_pb2.Subject(holder_id=req["holder"], cert_type=req.get("cert_type", "")),
            name=req.get("name", ""), photo_sha256=req.get("photo", ""),
            item=req.get("item", "") if req["flow"] == "tongban.apply" else "", channel=req.get("channel", ""),
            applicant_id=req.get("applicant", ""),
            purpose=req.get("purpose", "跨省通办 业务办理"),
            audit=header_pb2.AuditContext(organisation=f"{req['origin']} 政务服务中心", operator="窗口",
                                          item_name=req.get("item", ""), business_serial=req.get("serial", "")),
        )
        t0 = min(due_ns, time.perf_counter_ns())  # from the planned time: a late send is waiting too
        try:
            resp = await windows[req["origin"]][0].send(msg, timeout)
            outcome, result = resp.outcome, resp.result
            if req["flow"] == "tongban.apply" and req["at_s"] >= warmup:
                tally.applied(req["item"], resp.trips, resp.delay_days)
        except TongbanError as e:  # the window refused it, or the call did not get through
            outcome, result = f"window_{_status(e)}", ""
        except Exception as e:  # noqa: BLE001 - every fired request must be accounted for
            outcome, result = f"loadgen_{type(e).__name__}", ""
        latency_us = (time.perf_counter_ns() - t0) // 1000
        tally.record(req, outcome, latency_us, result, int(time.time() - start), req["at_s"] >= warmup)

    async def report_progress() -> None:
        second = 0
        while True:
            await asyncio.sleep(max(0.0, start + second + 1 - time.time()))
            _progress(second, tally)
            second += 1

    reporter = asyncio.ensure_future(report_progress()) if progress else None
    stop = asyncio.Event()
    if progress:  # running as its own process: SIGTERM means "stop now, keep what you measured"
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    pending: set[asyncio.Future[None]] = set()  # in flight only: a long run must not keep every task
    requests = plan["requests"]
    cpu_at_start = time.process_time()  # the connections are set up; what follows is the load
    if not isinstance(requests, Iterator):  # a plan built in memory (tests, scripts): any order
        requests = sorted(requests, key=lambda r: r["at_s"])
    for req in requests:  # else streamed from the runner's file, written in time order
        due_ns = start_ns + int(req["at_s"] * 1e9)
        while (delay := (due_ns - time.perf_counter_ns()) / 1e9) > 0 and not stop.is_set():
            # a plain timer (``wait_for(stop.wait(), delay)`` made a task a request: 45 µs more
            # CPU each), in steps short enough to notice a stop
            await asyncio.sleep(min(delay, _STOP_CHECK_S))
        if stop.is_set():
            break
        tally.sent((time.perf_counter_ns() - due_ns) // 1000)
        task = asyncio.ensure_future(one(req, due_ns))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        stopper = asyncio.ensure_future(stop.wait())
        remaining = set(pending)
        while remaining and not stop.is_set():
            _, remaining = await asyncio.wait(remaining | {stopper}, return_when=asyncio.FIRST_COMPLETED)
            remaining.discard(stopper)
        if remaining:  # interrupted: give in-flight calls a moment, then give up on them
            _, late = await asyncio.wait(remaining, timeout=2.0)
            for t in late:
                t.cancel()
        stopper.cancel()
    tally.interrupted = stop.is_set()
    elapsed = time.time() - start
    if reporter is not None:
        reporter.cancel()
        _progress(int(elapsed), tally)
    if watcher is not None:
        watcher.cancel()
    for mux, ch in [*windows.values(), *retired]:
        await mux.close()
        await ch.close()
    return tally.to_json(elapsed, cpu_s=time.process_time() - cpu_at_start)


def _status(error: TongbanError) -> str:
    """How a failed submission counts: a refusal as its status, no answer in time as
    ``deadline_exceeded``, any other failure to get through as ``unavailable``."""
    if isinstance(error, TimedOutError):
        return "deadline_exceeded"
    return status_of(error).name.lower()


async def _watch_endpoints(connect: Any) -> None:
    """Read ``{"op": "endpoints", "endpoints": {code: host:port}}`` lines from the
    runner (a province process restarted after a crash listens on new ports)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    if sys.stdin is None:  # started with stdin closed
        return
    try:
        if not (stat.S_ISFIFO(mode := os.fstat(sys.stdin.fileno()).st_mode) or stat.S_ISSOCK(mode)):
            return  # not the runner's pipe (a terminal, /dev/null: the loop cannot watch the latter)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (OSError, ValueError):
        return
    while line := await reader.readline():
        doc = json.loads(line)
        if doc.get("op") == "endpoints":
            for code, endpoint in doc["endpoints"].items():
                connect(code, endpoint)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m exchange.loadgen PLAN.json RESULT.json\n")
        return 2
    plan_path = Path(args[0])
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    with contextlib.ExitStack() as stack:
        if "requests_file" in plan:  # the runner's plans: one request per line, read as they come due
            lines = stack.enter_context((plan_path.parent / plan.pop("requests_file")).open(encoding="utf-8"))
            plan["requests"] = (json.loads(line) for line in lines)
        try:
            result = asyncio.run(drive(plan, progress=True))
        except KeyboardInterrupt:
            return 130
    Path(args[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
