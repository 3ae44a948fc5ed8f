"""Running nodes as processes: one hub, or many provinces sharing one event loop.

Each node prints one JSON line ``{"event": "ready", "code": ..., "endpoint": ...}``
on stdout once it serves (a province: once it is registered with the hub), so a
parent can wait for readiness without polling. With ``--metrics-port PORT`` (off by
default) the process first serves Prometheus metrics for all its nodes on 127.0.0.1
(see :mod:`nodes.observability`) and says where in one line
``{"event": "metrics", "url": "http://127.0.0.1:PORT/metrics"}``. SIGTERM and
SIGINT stop the nodes gracefully: in-flight calls finish, ledgers are flushed and
closed.

A parent may steer the nodes through stdin, one JSON command per line (this is
how the scenario runner injects faults; nothing else can reach it):

    {"op": "down", "codes": ["440000"]}     stop serving (callers see UNAVAILABLE)
    {"op": "up", "codes": ["440000"]}       serve again on the same port
    {"op": "link", "code": "540000", "delay_ms": 200, "jitter_ms": 5, "loss": 0.02, "partitioned": false}
    {"op": "revoke", "code": "440000"}      hub only: revoke the node's signing keys
    {"op": "refresh"}                       provinces: fetch the hub's directory now
    {"op": "warm"}                          provinces: refresh, connect every direct link now, then
                                            print {"event": "warm", "links": N, "failed": [...], "seconds": S}
                                            (and "error": "..." when a node could not try its links)
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from certs.pki import HUB_CODE
from exchange.errors import ConfigError
from nodes.link import Link, LinkShim, Paths

if TYPE_CHECKING:
    from nodes.observability import MetricsServer, PrometheusObserver

__all__ = ["load_links", "run_hub", "run_provinces", "serve_hub", "serve_provinces"]

log = logging.getLogger(__name__)


class _Steerable(Protocol):
    links: LinkShim

    async def go_down(self) -> None: ...
    async def come_up(self) -> None: ...


def load_links(path: Path | None) -> LinkShim:
    """Link states from a JSON file ``{"links": {code: {delay_ms, jitter_ms, loss}},
    "paths": {mode, delay_ms, base_ms, route_factor, hub_at}}``."""
    if path is None:
        return LinkShim()
    doc = json.loads(path.read_text(encoding="utf-8"))
    return LinkShim({code: Link(**spec) for code, spec in doc.get("links", {}).items()},
                    paths=Paths(**doc.get("paths", {})))


def settle_heap() -> None:
    """Once a node serves: collect, then freeze what start-up left (modules, classes,
    the directory, keys) out of the garbage collector's sight.

    A full collection walks every tracked object; in a serving node most of them
    are start-up's and never die. Under load that walk paused the event loop for
    20-100 ms every few seconds (bench/, gc callbacks in hub and provinces), long
    enough for 128 requests to pile up on one province and be shed at 62 % of
    saturation. Frozen, they are skipped (``gc.freeze``, Python >= 3.7)."""
    gc.collect()
    gc.freeze()


def _ready(code: str, endpoint: str) -> None:
    _event({"event": "ready", "code": code, "endpoint": endpoint})


def _event(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def _start_metrics(port: int | None) -> tuple[PrometheusObserver | None, MetricsServer | None]:
    """The process's observer and exporter; (None, None) when ``port`` is None (off).

    Port 0 picks a free port (the CLI maps its ``--metrics-port 0`` default to None).
    """
    if port is None:
        return None, None
    from nodes.observability import PrometheusObserver, start_metrics_server

    observer = PrometheusObserver()
    server = start_metrics_server(observer, port=port)
    _event({"event": "metrics", "url": server.url})
    return observer, server


async def _apply(cmd: dict[str, Any], nodes: dict[str, _Steerable], shim: LinkShim) -> None:
    op = cmd.get("op")
    if op in ("down", "up"):
        for code in cmd.get("codes", []):
            node = nodes.get(code)
            if node is not None:
                await (node.go_down() if op == "down" else node.come_up())
    elif op == "link":
        changes = {k: cmd[k] for k in ("delay_ms", "jitter_ms", "loss", "partitioned") if k in cmd}
        shim.set(cmd["code"], **changes)
    elif op == "refresh":
        for node in nodes.values():
            refresh = getattr(node, "refresh_directory", None)
            if refresh is not None:
                await refresh()
    elif op == "warm":
        await _warm(nodes)
    elif op == "recover":
        for node in nodes.values():
            rec = getattr(node, "recover_transfers", None)
            if rec is not None:
                await rec()
    elif op == "revoke":
        hub = nodes.get(HUB_CODE)
        if hub is not None:
            hub.revoke_node(cmd["code"], reason=cmd.get("reason", "key compromise"))  # type: ignore[attr-defined]
    else:
        log.warning("unknown control command %r", cmd)


async def _warm(nodes: dict[str, _Steerable]) -> None:
    """Refresh the directory, connect every direct link (ProvinceNode.warm_links), then
    say so in one line ``{"event": "warm", "links": N, "failed": [...], "seconds": S}``,
    with ``"error"`` added when something went wrong: the runner waits for this line."""
    started, links, failed, errors = time.perf_counter(), 0, set(), []
    warmers = [n for n in nodes.values() if hasattr(n, "warm_links")]
    try:
        for refreshed in await asyncio.gather(*(n.refresh_directory() for n in warmers),  # type: ignore[attr-defined]
                                              return_exceptions=True):
            if isinstance(refreshed, Exception):  # the links of the directory it holds still connect
                log.warning("directory refresh before connecting the links failed: %s", refreshed)
        for got in await asyncio.gather(*(n.warm_links() for n in warmers),  # type: ignore[attr-defined]
                                        return_exceptions=True):
            if isinstance(got, Exception):
                errors.append(f"{type(got).__name__}: {got}")
            else:
                links += got[0]
                failed.update(got[1])
    finally:
        _event({"event": "warm", "links": links, "failed": sorted(failed),
                "seconds": round(time.perf_counter() - started, 3), **({"error": "; ".join(errors)} if errors else {})})


def _stdin_is_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError):
        return False


async def _serve_until_stopped(nodes: dict[str, _Steerable], shim: LinkShim) -> None:
    """Apply stdin commands until SIGTERM/SIGINT, or until the parent's pipe closes."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reader_task = None
    if _stdin_is_pipe():
        # A parent steers us through the pipe; when it goes away, so do we.
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def read_commands() -> None:
            while line := await reader.readline():
                try:
                    await _apply(json.loads(line), nodes, shim)
                except Exception:  # noqa: BLE001 - a bad command must not stop the node
                    log.exception("control command failed: %r", line[:200])
            log.warning("control pipe closed by the parent: stopping")
            stop.set()

        reader_task = loop.create_task(read_commands())
    await stop.wait()
    if reader_task is not None:
        reader_task.cancel()


async def serve_hub(*, pki_dir: Path, data_dir: Path, listen: str, links: Path | None = None,
                    topology: str = "star", metrics_port: int | None = None, transport: str = "stream",
                    tls_gate: bool = True, request_timeout_s: float = 10.0) -> None:
    from nodes.hub import HubNode

    shim = load_links(links)
    observer, metrics = _start_metrics(metrics_port)
    try:
        hub = HubNode(pki_dir=pki_dir, data_dir=data_dir, links=shim, topology=topology, transport=transport,
                      tls_gate=tls_gate, forward_timeout_s=request_timeout_s)
        hub.core.observer = observer
        try:
            port = await hub.start(listen)
            settle_heap()  # before the ready line: no traffic is waiting on the full collection
            _ready(HUB_CODE, f"{listen.rsplit(':', 1)[0]}:{port}")
            await _serve_until_stopped({HUB_CODE: hub}, shim)
        finally:
            await hub.stop()
    finally:
        if metrics is not None:
            metrics.close()


async def serve_provinces(*, codes: Sequence[str], pki_dir: Path, data_dir: Path, listen: str, hub: str,
                          links: Path | None = None, metrics_port: int | None = None,
                          transport: str = "stream", tls_gate: bool = True, cohost: bool = False,
                          request_timeout_s: float = 10.0) -> None:
    """Serve the provinces ``codes`` in this process; with ``cohost`` the first of them
    (in code order) carries the others' exchanges on its connections (ProvinceNode)."""
    from nodes.province import ProvinceNode

    host, _, port_text = listen.rpartition(":")
    if len(codes) > 1 and port_text not in ("0", ""):
        raise ConfigError(f"--listen: several provinces in one process need port 0 (each gets a free port), "
                          f"found {listen!r}")  # as tongban node words it, for callers that skip its checks
    shim = load_links(links)
    observer, metrics = _start_metrics(metrics_port)
    try:
        nodes: list[ProvinceNode] = []
        for c in sorted(codes) if cohost else codes:
            nodes.append(ProvinceNode(code=c, pki_dir=pki_dir, data_dir=data_dir, hub=hub, links=shim,
                                      transport=transport, tls_gate=tls_gate, host=nodes[0] if nodes and cohost else None,
                                      request_timeout_s=request_timeout_s))
        for node in nodes:
            node.core.observer = observer
        try:
            for node in nodes:
                await node.start(f"{host}:{port_text or 0}")
            settle_heap()  # before the ready lines: no traffic is waiting on the full collection
            for node in nodes:
                _ready(node.code, node.endpoint)
            await _serve_until_stopped({n.code: n for n in nodes}, shim)
        finally:
            # a host stops the provinces it carries itself, once its server has stopped
            await asyncio.gather(*(n.stop() for n in nodes if n.host is None), return_exceptions=True)
    finally:
        if metrics is not None:
            metrics.close()


def run_hub(**kwargs: Any) -> None:
    asyncio.run(serve_hub(**kwargs))


def run_provinces(**kwargs: Any) -> None:
    asyncio.run(serve_provinces(**kwargs))
