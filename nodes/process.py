"""Running nodes as processes: one hub, or many provinces sharing one event loop.

Each node prints one JSON line ``{"event": "ready", "code": ..., "endpoint": ...}``
on stdout once it serves (a province: once it is registered with the hub), so a
parent can wait for readiness without polling. SIGTERM and SIGINT stop the nodes
gracefully: in-flight calls finish, ledgers are flushed and closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from certs.pki import HUB_CODE

__all__ = ["run_hub", "run_provinces", "serve_hub", "serve_provinces"]

log = logging.getLogger(__name__)


def _ready(code: str, endpoint: str) -> None:
    sys.stdout.write(json.dumps({"event": "ready", "code": code, "endpoint": endpoint}) + "\n")
    sys.stdout.flush()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_hub(*, pki_dir: Path, data_dir: Path, listen: str) -> None:
    from nodes.hub import HubNode

    hub = HubNode(pki_dir=pki_dir, data_dir=data_dir)
    port = await hub.start(listen)
    _ready(HUB_CODE, f"{listen.rsplit(':', 1)[0]}:{port}")
    try:
        await _wait_for_signal()
    finally:
        await hub.stop()


async def serve_provinces(*, codes: Sequence[str], pki_dir: Path, data_dir: Path, listen: str, hub: str) -> None:
    from nodes.province import ProvinceNode

    host, _, port_text = listen.rpartition(":")
    if len(codes) > 1 and port_text not in ("0", ""):
        raise SystemExit(f"--listen {listen}: several provinces in one process need port 0 (one port each)")
    nodes = [ProvinceNode(code=c, pki_dir=pki_dir, data_dir=data_dir, hub=hub) for c in codes]
    try:
        for node in nodes:
            await node.start(f"{host}:{port_text or 0}")
            _ready(node.code, node.endpoint)
        await _wait_for_signal()
    finally:
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)


def run_hub(**kwargs: object) -> None:
    asyncio.run(serve_hub(**kwargs))  # type: ignore[arg-type]


def run_provinces(**kwargs: object) -> None:
    asyncio.run(serve_provinces(**kwargs))  # type: ignore[arg-type]
