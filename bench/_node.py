"""Run a tongban node process with benchmark-only options, without editing node code.

    python -m bench._node [--uvloop] [--grpc-event-engine] [--gate-over-tcp] [--ledger-flush-ms N] [--stream-lanes N] [--no-ledger] \
        -- node hub --pki ...

``--uvloop`` and ``--ledger-flush-ms`` are candidate settings for the fastest
mode; ``--no-ledger`` is a what-if that drops every ledger write, shown only to
price the ledger (it is not eligible for (c): every check and the ledger stay on).
``--grpc-event-engine`` runs grpcio's default polling, its EventEngine, instead of the older
polling tongban's processes run (:mod:`tongban.runtime`): ``GRPC_EXPERIMENTS`` emptied,
before anything imports grpc, since gRPC reads it when it starts.
``--gate-over-tcp`` puts the TLS gate's hop to its gRPC server back on loopback TCP
(the default on Linux is an abstract Unix socket), to compare the two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bench.cluster import GRPC_DEFAULT  # imports no grpc
from tongban import runtime

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    split = args.index("--") if "--" in args else len(args)
    p = argparse.ArgumentParser(prog="python -m bench._node")
    p.add_argument("--uvloop", action="store_true")
    p.add_argument("--grpc-event-engine", action="store_true",
                   help="grpcio's default polling (GRPC_EXPERIMENTS emptied), not tongban's")
    p.add_argument("--gate-over-tcp", action="store_true", help="the TLS gate's backend hop on loopback TCP")
    p.add_argument("--ledger-flush-ms", type=int)
    p.add_argument("--no-ledger", action="store_true")
    p.add_argument("--stream-lanes", type=int, help="streams per peer (nodes.stream.StreamMux.max_lanes)")
    a = p.parse_args(args[:split])
    if a.grpc_event_engine:
        if "grpc" in sys.modules:
            raise SystemExit("--grpc-event-engine: expected grpc not yet imported, found it imported")
        os.environ.update(GRPC_DEFAULT)
    runtime.apply()  # run by hand: the options below import grpc before tongban's CLI would set it
    if a.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if a.gate_over_tcp:
        import nodes._grpc

        nodes._grpc.GATE_OVER_UNIX_SOCKET = False
    if a.ledger_flush_ms is not None:
        from exchange.ledger import Ledger

        Ledger.__init__.__kwdefaults__["flush_interval_ms"] = a.ledger_flush_ms  # type: ignore[index]
    if a.stream_lanes is not None:
        from nodes.stream import StreamMux

        StreamMux.__init__.__kwdefaults__["max_lanes"] = a.stream_lanes  # type: ignore[index]
    if a.no_ledger:
        from nodes.core import NodeCore

        NodeCore.record = lambda self, *args, **kwargs: None  # type: ignore[method-assign]
    from tongban.cli import main as tongban_main

    return tongban_main(args[split + 1:])


if __name__ == "__main__":
    raise SystemExit(main())
