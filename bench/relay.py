"""The baseline: a minimal grpc.aio unary relay (client -> relay -> backend).

No signing, no checks, no ledger: the relay forwards the request bytes to the
backend and the backend's reply bytes to the client. It uses the same mTLS
credentials as tongban (the relay presents the hub's TLS certificate, the backend
a province's), and the benchmark sizes the messages like tongban's ecert.fetch
ExchangeRequest / ExchangeResponse. Each server runs in its own process and
prints tongban's ready line::

    python -m bench.relay backend --pki DIR --code 440000 --response-bytes 1500
    python -m bench.relay relay --pki DIR --backend 127.0.0.1:PORT --backend-code 440000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

import grpc

from certs.pki import HUB_CODE, load_node_credentials

__all__ = ["METHOD", "main"]

#: The one method of the baseline service; messages are raw bytes (no protobuf).
METHOD = "/bench.v1.RelayService/Call"

_OPTIONS = [("grpc.so_reuseport", 0)]


def _server_creds(pki: Path, code: str) -> grpc.ServerCredentials:
    c = load_node_credentials(pki, code)
    return grpc.ssl_server_credentials([(c.tls_key_pem, c.tls_chain_pem)], root_certificates=c.root_pem,
                                       require_client_auth=True)


def _channel(pki: Path, me: str, target: str, peer: str) -> grpc.aio.Channel:
    c = load_node_credentials(pki, me)
    creds = grpc.ssl_channel_credentials(root_certificates=c.root_pem, private_key=c.tls_key_pem,
                                         certificate_chain=c.tls_chain_pem)
    return grpc.aio.secure_channel(target, creds, options=[
        *_OPTIONS, ("grpc.ssl_target_name_override", f"node-{peer}.tongban.test")])


async def _serve(handler: grpc.GenericRpcHandler, creds: grpc.ServerCredentials, listen: str, code: str) -> None:
    server = grpc.aio.server(options=_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port(listen, creds)
    await server.start()
    sys.stdout.write(json.dumps({"event": "ready", "code": code,
                                 "endpoint": f"{listen.rsplit(':', 1)[0]}:{port}"}) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def _handler(fn: object) -> grpc.GenericRpcHandler:
    service, method = METHOD.strip("/").split("/")
    return grpc.method_handlers_generic_handler(service, {method: grpc.unary_unary_rpc_method_handler(fn)})


async def backend(a: argparse.Namespace) -> None:
    reply = bytes(a.response_bytes)

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return reply

    await _serve(_handler(call), _server_creds(a.pki, a.code), a.listen, a.code)


async def relay(a: argparse.Namespace) -> None:
    channel = _channel(a.pki, HUB_CODE, a.backend, a.backend_code)
    forward = channel.unary_unary(METHOD)

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await forward(request, timeout=10.0)  # type: ignore[no-any-return]

    try:
        await _serve(_handler(call), _server_creds(a.pki, HUB_CODE), a.listen, HUB_CODE)
    finally:
        await channel.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="role", required=True)
    b = sub.add_parser("backend")
    b.add_argument("--code", required=True)
    b.add_argument("--response-bytes", type=int, required=True)
    r = sub.add_parser("relay")
    r.add_argument("--backend", required=True)
    r.add_argument("--backend-code", required=True)
    for sp in (b, r):
        sp.add_argument("--pki", required=True, type=Path)
        sp.add_argument("--listen", default="127.0.0.1:0")
        sp.add_argument("--uvloop", action="store_true")
    a = p.parse_args(argv)
    if a.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(backend(a) if a.role == "backend" else relay(a))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
