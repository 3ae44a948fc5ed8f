"""``python -m bench.gate [--seconds N] [--uvloop]``: what the TLS gate costs.

One grpc.aio echo server (unary and bidi-stream methods, 1.5 KB requests, 3 KB
replies), measured in one run two ways:

- ``direct``: grpcio's own mTLS (``ssl_server_credentials``, require_client_auth);
- ``gate``:   the same server listening without TLS behind :class:`nodes.tls_gate.TlsGate`
  in the server's own event loop, on the backend hop nodes use (an abstract Unix socket
  on Linux, else loopback TCP);
- ``gate-tcp``: the same, the gate's backend hop on loopback TCP (measured only where
  the nodes' hop is the Unix socket).

Both handlers look up the client's certificate on every message (``auth_context()``
directly, ``gate.peer_cert_pem(context.peer())`` behind the gate), as a node would.
The server (and gate) run in one child process, the client in another; the client
runs closed loops at each concurrency, unary calls and lockstep bidi streams (one
long-lived stream per caller), over one channel, and reads the server's CPU time
(utime + stime from /proc/PID/stat) at the edges of each measuring window.
``--uvloop`` runs the server process on uvloop (the client stays on asyncio).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SERVICE = "bench.v1.Echo"
UNARY, STREAM = f"/{SERVICE}/Unary", f"/{SERVICE}/Stream"
REQUEST_BYTES, REPLY_BYTES = 1500, 3000
HUB, CLIENT = "000000", "440000"
WARMUP_S = 0.3
_OPTIONS = [("grpc.so_reuseport", 0)]


def _cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


# --- the server process -------------------------------------------------------------


async def _serve(a: argparse.Namespace) -> None:
    import grpc

    from certs.pki import load_node_credentials
    from nodes.tls_gate import TlsGate, abstract_unix_sockets

    c = load_node_credentials(a.pki, HUB)
    reply = bytes(REPLY_BYTES)
    unknown = 0
    gate: TlsGate | None = None

    def identify(context: grpc.aio.ServicerContext) -> None:
        nonlocal unknown
        if gate is not None:
            pem = gate.peer_cert_pem(context.peer())
        else:
            pem = (context.auth_context().get("x509_pem_cert") or [None])[0]
        unknown += pem is None

    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        identify(context)
        return reply

    async def stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        async for _ in requests:
            identify(context)
            yield reply

    server = grpc.aio.server(options=_OPTIONS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.stream_stream_rpc_method_handler(stream)}),))
    if a.mode == "direct":
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
            [(c.tls_key_pem, c.tls_chain_pem)], root_certificates=c.root_pem, require_client_auth=True))
        await server.start()
    elif a.mode == "gate" and abstract_unix_sockets():
        name = f"tongban-bench-gate-{os.getpid()}"
        server.add_insecure_port(f"unix-abstract:{name}")
        await server.start()
        gate = TlsGate(c.tls_chain_pem, c.tls_key_pem, c.root_pem, name)
    else:
        backend = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        gate = TlsGate(c.tls_chain_pem, c.tls_key_pem, c.root_pem, ("127.0.0.1", backend))
    if gate is not None:
        port = await gate.start("127.0.0.1", 0)
    _emit(event="ready", port=port, pid=os.getpid())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    stats = {"accepted": gate.stats.accepted, "refused": dict(gate.stats.refused)} if gate else {}
    _emit(event="stats", unidentified_calls=unknown, **stats)
    if gate is not None:
        await gate.stop()
    await server.stop(None)


# --- the client process -------------------------------------------------------------


async def _measure(channel: Any, kind: str, concurrency: int, seconds: float, server_pid: int) -> dict[str, Any]:
    """One closed-loop run: ``concurrency`` callers back to back for WARMUP_S + ``seconds``."""
    request = bytes(REQUEST_BYTES)
    unary, open_stream = channel.unary_unary(UNARY), channel.stream_stream(STREAM)
    latencies: list[float] = []
    t_measure = time.perf_counter() + WARMUP_S
    t_end = t_measure + seconds

    async def caller() -> None:
        call = open_stream() if kind == "stream" else None
        while (t0 := time.perf_counter()) < t_end:
            if call is None:
                await unary(request, timeout=10)
            else:
                await call.write(request)
                await call.read()
            if t0 >= t_measure:
                latencies.append(time.perf_counter() - t0)
        if call is not None:
            await call.done_writing()
            await call.code()

    async def cpu_window() -> tuple[int, int, float]:
        await asyncio.sleep(max(0.0, t_measure - time.perf_counter()))  # the window's edge, not readiness
        srv, cli, t0 = _cpu_ticks(server_pid), _cpu_ticks(os.getpid()), time.perf_counter()
        await asyncio.sleep(max(0.0, t_end - time.perf_counter()))
        return _cpu_ticks(server_pid) - srv, _cpu_ticks(os.getpid()) - cli, time.perf_counter() - t0

    window = asyncio.ensure_future(cpu_window())
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    server_ticks, client_ticks, elapsed = await window
    tick, n = os.sysconf("SC_CLK_TCK"), max(1, len(latencies))
    latencies.sort()
    return {"kind": kind, "c": concurrency, "calls": len(latencies), "calls_per_s": len(latencies) / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1e3 if latencies else 0.0,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3 if latencies else 0.0,
            "server_us_per_call": server_ticks / tick / n * 1e6, "client_us_per_call": client_ticks / tick / n * 1e6}


async def _client(a: argparse.Namespace) -> None:
    import grpc

    from certs.pki import load_node_credentials

    c = load_node_credentials(a.pki, CLIENT)
    creds = grpc.ssl_channel_credentials(c.root_pem, c.tls_key_pem, c.tls_chain_pem)
    async with grpc.aio.secure_channel(a.target, creds, options=[
            *_OPTIONS, ("grpc.ssl_target_name_override", f"node-{HUB}.tongban.test")]) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)  # readiness: a real connection
        for kind in ("unary", "stream"):
            for concurrency in a.concurrency:
                _emit(event="result", **await _measure(channel, kind, concurrency, a.seconds, a.server_pid))


# --- the parent ---------------------------------------------------------------------


def _child(args: list[str]) -> subprocess.Popen[bytes]:
    from tongban import runtime

    env = {**os.environ, **runtime.grpc_environment(),  # the gate on the nodes' gRPC polling
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "bench.gate", *args], stdout=subprocess.PIPE, env=env)


def _events(proc: subprocess.Popen[bytes]) -> Any:
    assert proc.stdout is not None
    for line in proc.stdout:
        yield json.loads(line)
    if proc.wait() != 0:
        raise SystemExit(f"bench.gate child {proc.args!r} exited with {proc.returncode}")


def _run_mode(mode: str, a: argparse.Namespace, pki: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    server = _child(["_server", "--mode", mode, "--pki", str(pki), *(["--uvloop"] if a.uvloop else [])])
    try:
        events = _events(server)
        ready = next(events)  # the child prints it once its listener is bound
        client = _child(["_client", "--pki", str(pki), "--target", f"127.0.0.1:{ready['port']}",
                         "--server-pid", str(ready["pid"]), "--seconds", str(a.seconds),
                         "--concurrency", ",".join(map(str, a.concurrency))])
        results = [{"mode": mode, **e} for e in _events(client)]
        server.send_signal(signal.SIGTERM)
        stats = next(events)
        list(events)
        return results, stats
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'kind':<7}{'c':>4}  {'mode':<9}{'calls/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'srv µs/call':>13}{'cli µs/call':>13}")
    out = [head, "-" * len(head)]
    by = {(r["kind"], r["c"], r["mode"]): r for r in rows}
    for kind, c in dict.fromkeys((r["kind"], r["c"]) for r in rows):
        modes = [m for m in ("direct", "gate", "gate-tcp") if (kind, c, m) in by]
        for mode in modes:
            r = by[kind, c, mode]
            out.append(f"{kind:<7}{c:>4}  {mode:<9}{r['calls_per_s']:>9.0f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
                       f"{r['server_us_per_call']:>13.0f}{r['client_us_per_call']:>13.0f}")
        d = by[kind, c, "direct"]
        for mode in modes[1:]:
            g = by[kind, c, mode]
            out.append(f"{'':<13}{mode}/direct: calls/s x{g['calls_per_s'] / d['calls_per_s']:.2f}, "
                       f"p50 x{g['p50_ms'] / d['p50_ms']:.2f}, server CPU/call x"
                       f"{g['server_us_per_call'] / d['server_us_per_call']:.2f} "
                       f"({g['server_us_per_call'] - d['server_us_per_call']:+.0f} µs/call)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="role")
    s = sub.add_parser("_server")
    s.add_argument("--mode", choices=("direct", "gate", "gate-tcp"), required=True)
    c = sub.add_parser("_client")
    c.add_argument("--target", required=True)
    c.add_argument("--server-pid", type=int, required=True)
    for sp in (s, c):
        sp.add_argument("--pki", type=Path, required=True)
    for sp in (p, c):
        sp.add_argument("--seconds", type=float, default=2.5, help="measuring window of each run (max 2.7)")
        sp.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 64])
    for sp in (p, s):
        sp.add_argument("--uvloop", action="store_true", help="run the server process on uvloop")
    a = p.parse_args(argv)
    if a.role is not None and getattr(a, "uvloop", False):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if a.role == "_server":
        asyncio.run(_serve(a))
        return 0
    if a.role == "_client":
        asyncio.run(_client(a))
        return 0
    a.seconds = min(a.seconds, 3.0 - WARMUP_S)  # each measurement at most 3 s
    from certs.pki import init_pki
    from nodes.tls_gate import abstract_unix_sockets

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tongban-bench-gate-") as tmp:
        pki = init_pki(Path(tmp) / "pki", codes=(HUB, CLIENT)).root
        notes = []
        for mode in ("direct", "gate", "gate-tcp") if abstract_unix_sockets() else ("direct", "gate"):
            results, stats = _run_mode(mode, a, pki)
            rows += results
            notes.append(f"{mode}: server stats {json.dumps({k: v for k, v in stats.items() if k != 'event'})}")
    loop = "uvloop" if a.uvloop else "asyncio"
    print(f"bench.gate: server on {loop}, client on asyncio, {os.cpu_count()} CPUs, "
          f"{a.seconds:g} s per measurement, {REQUEST_BYTES} B requests / {REPLY_BYTES} B replies")
    print(_table(rows))
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
