"""The baseline: a minimal grpc.aio unary relay (client -> relay -> backend).

No signing, no checks, no ledger: the relay forwards the request bytes to the
backend and the backend's reply bytes to the client. It uses the same mTLS
credentials as tongban (the relay presents the hub's TLS certificate, the backend
a province's), and the benchmark sizes the messages like tongban's ecert.fetch
ExchangeRequest / ExchangeResponse. Each server runs in its own process and
prints tongban's ready line::

    python -m bench.relay backend --pki DIR --code 440000 --response-bytes 1500
    python -m bench.relay relay --pki DIR --backend 127.0.0.1:PORT --backend-code 440000

With ``--plumbed`` both servers use tongban's own gRPC plumbing instead
(``nodes._grpc.build_server``: the error interceptor, health and reflection;
``open_channel``'s options; protobuf ``HubService.Exchange`` ->
``NodeService.Handle`` messages) and still do no signing, checks or ledger: a
diagnostic that splits tongban's cost into "its gRPC plumbing" and "its own work".
With ``--plumbed`` they also serve tongban's stream methods (``HubService.ExchangeStream``
-> ``NodeService.HandleStream``) through tongban's own stream code,
``nodes.stream.serve_frames`` and ``StreamMux``, still unsigned and without the TLS gate;
a load generator with ``"muxed": true`` calls them: what tongban's streams cost per hop,
without its protocol work.
With ``--sync-threads N`` both run on grpcio's synchronous server with N threads
(and a synchronous channel): the issue's "small-pool synchronous server" candidate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import grpc

from certs.pki import HUB_CODE, load_node_credentials

__all__ = ["METHOD", "PLUMBED_METHOD", "STREAM_METHOD", "fake_envelope", "main"]

#: The one method of the baseline service; messages are raw bytes (no protobuf).
METHOD = "/bench.v1.RelayService/Call"
#: The same relay over long-lived bidirectional streams (one message in, one out, in lockstep).
STREAM_METHOD = "/bench.v1.RelayService/Stream"
#: The plumbed relay serves tongban's own method.
PLUMBED_METHOD = "/tongban.v1.HubService/Exchange"


def fake_envelope(total_bytes: int, payload_type: str) -> Any:
    """An unsigned Envelope whose ``{Exchange,Handle}{Request,Response}`` wrapper is ``total_bytes`` long."""
    from tongban.v1 import envelope_pb2, services_pb2

    env = envelope_pb2.Envelope(payload_type=payload_type,
                                signatures=[envelope_pb2.Signature(keyid="0" * 64, sig=bytes(71))])
    fixed = services_pb2.ExchangeRequest(envelope=env).ByteSize()
    env.payload = bytes(max(0, total_bytes - fixed - 3))
    while services_pb2.ExchangeRequest(envelope=env).ByteSize() > total_bytes and env.payload:
        env.payload = env.payload[:-1]
    return env

_OPTIONS = [("grpc.so_reuseport", 0)]


def _server_creds(pki: Path, code: str) -> grpc.ServerCredentials:
    c = load_node_credentials(pki, code)
    return grpc.ssl_server_credentials([(c.tls_key_pem, c.tls_chain_pem)], root_certificates=c.root_pem,
                                       require_client_auth=True)


def _channel_args(pki: Path, me: str, target: str, peer: str) -> tuple[str, grpc.ChannelCredentials, list[Any]]:
    """(target, credentials, options) of a channel from ``me`` to ``peer``, aio or synchronous."""
    c = load_node_credentials(pki, me)
    creds = grpc.ssl_channel_credentials(root_certificates=c.root_pem, private_key=c.tls_key_pem,
                                         certificate_chain=c.tls_chain_pem)
    return target, creds, [*_OPTIONS, ("grpc.ssl_target_name_override", f"node-{peer}.tongban.test")]


def _channel(pki: Path, me: str, target: str, peer: str) -> grpc.aio.Channel:
    target, creds, options = _channel_args(pki, me, target, peer)
    return grpc.aio.secure_channel(target, creds, options=options)


def _say_ready(listen: str, port: int, code: str) -> None:
    sys.stdout.write(json.dumps({"event": "ready", "code": code,
                                 "endpoint": f"{listen.rsplit(':', 1)[0]}:{port}"}) + "\n")
    sys.stdout.flush()


async def _serve(handler: grpc.GenericRpcHandler, creds: grpc.ServerCredentials, listen: str, code: str) -> None:
    server = grpc.aio.server(options=_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port(listen, creds)
    await _run(server, port, listen, code)


async def _run(server: grpc.aio.Server, port: int, listen: str, code: str) -> None:
    await server.start()
    _say_ready(listen, port, code)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def _handler(fn: object, stream_fn: object) -> grpc.GenericRpcHandler:
    service, method = METHOD.strip("/").split("/")
    return grpc.method_handlers_generic_handler(service, {
        method: grpc.unary_unary_rpc_method_handler(fn),
        STREAM_METHOD.rsplit("/", 1)[1]: grpc.stream_stream_rpc_method_handler(stream_fn)})


async def backend(a: argparse.Namespace) -> None:
    reply = bytes(a.response_bytes)

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return reply

    async def stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        async for _ in requests:
            yield reply

    await _serve(_handler(call, stream), _server_creds(a.pki, a.code), a.listen, a.code)


async def relay(a: argparse.Namespace) -> None:
    channel = _channel(a.pki, HUB_CODE, a.backend, a.backend_code)
    forward = channel.unary_unary(METHOD)

    open_stream = channel.stream_stream(STREAM_METHOD)

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await forward(request, timeout=10.0)  # type: ignore[no-any-return]

    async def stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        upstream = open_stream()  # one backend stream per client stream, for the stream's life
        async for request in requests:
            await upstream.write(request)
            yield await upstream.read()
        await upstream.done_writing()

    try:
        await _serve(_handler(call, stream), _server_creds(a.pki, HUB_CODE), a.listen, HUB_CODE)
    finally:
        await channel.close()


def _build(a: argparse.Namespace, code: str, services: list[tuple[Any, Any, str]]) -> tuple[grpc.aio.Server, int]:
    """tongban's build_server, or (``--no-interceptor``) the same without its error interceptor."""
    from nodes import _grpc

    if not a.no_interceptor:
        server, port, _ = _grpc.build_server(creds=_server_creds(a.pki, code), listen=a.listen, services=services)
        return server, port
    real = grpc.aio.server
    try:  # the same server, options, health and reflection, minus the interceptor
        grpc.aio.server = lambda *args, interceptors=None, **kw: real(*args, **kw)  # type: ignore[assignment]
        server, port, _ = _grpc.build_server(creds=_server_creds(a.pki, code), listen=a.listen, services=services)
    finally:
        grpc.aio.server = real
    return server, port


async def plumbed_backend(a: argparse.Namespace) -> None:
    from tongban.v1 import services_pb2, services_pb2_grpc

    reply = services_pb2.HandleResponse(
        envelope=fake_envelope(a.response_bytes, "application/vnd.tongban.ecert-response.v1+proto"))

    class Node(services_pb2_grpc.NodeServiceServicer):
        async def Handle(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
            return reply

        async def HandleStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            from nodes.stream import HANDLE_STREAM, serve_frames

            async def handle(env: Any, peer: str, timeout_s: float | None) -> Any:
                return reply.envelope

            async for frame in serve_frames(request_iterator, method=HANDLE_STREAM, peer=HUB_CODE, handle=handle):
                yield frame

    server, port = _build(a, a.code, [
        (services_pb2_grpc.add_NodeServiceServicer_to_server, Node(), "tongban.v1.NodeService")])
    await _run(server, port, a.listen, a.code)


async def plumbed_relay(a: argparse.Namespace) -> None:
    from nodes._grpc import channel_credentials, open_channel
    from tongban.v1 import services_pb2, services_pb2_grpc

    c = load_node_credentials(a.pki, HUB_CODE)
    channel = open_channel(a.backend, channel_credentials(key_pem=c.tls_key_pem, chain_pem=c.tls_chain_pem,
                                                          root_pem=c.root_pem), peer=a.backend_code)
    stub = services_pb2_grpc.NodeServiceStub(channel)

    from nodes.stream import EXCHANGE_STREAM, HANDLE_STREAM, StreamMux, serve_frames

    mux = StreamMux(channel, HANDLE_STREAM, hop=f"backend {a.backend_code}")

    class Hub(services_pb2_grpc.HubServiceServicer):
        async def Exchange(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
            reply = await stub.Handle(services_pb2.HandleRequest(envelope=request.envelope), timeout=10.0)
            return services_pb2.ExchangeResponse(envelope=reply.envelope)

        async def ExchangeStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            async def forward(env: Any, peer: str, timeout_s: float | None) -> Any:
                return await mux.send(env, 10.0)

            async for frame in serve_frames(request_iterator, method=EXCHANGE_STREAM, peer="client", handle=forward):
                yield frame

    server, port = _build(a, HUB_CODE, [
        (services_pb2_grpc.add_HubServiceServicer_to_server, Hub(), "tongban.v1.HubService")])
    try:
        await _run(server, port, a.listen, HUB_CODE)
    finally:
        await channel.close()


def _serve_sync(handler: grpc.GenericRpcHandler, creds: grpc.ServerCredentials, listen: str, code: str,
                threads: int) -> None:
    """grpcio's synchronous server on a pool of ``threads`` (the issue's "small-pool sync server")."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(max_workers=threads), options=_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port(listen, creds)
    server.start()
    _say_ready(listen, port, code)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(1.0).wait()


def sync_backend(a: argparse.Namespace) -> None:
    reply = bytes(a.response_bytes)

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        return reply

    def stream(requests: Any, context: grpc.ServicerContext) -> Any:
        for _ in requests:
            yield reply

    _serve_sync(_handler(call, stream), _server_creds(a.pki, a.code), a.listen, a.code, a.sync_threads)


def sync_relay(a: argparse.Namespace) -> None:
    target, creds, options = _channel_args(a.pki, HUB_CODE, a.backend, a.backend_code)
    with grpc.secure_channel(target, creds, options=options) as channel:
        forward = channel.unary_unary(METHOD)

        def call(request: bytes, context: grpc.ServicerContext) -> bytes:
            return forward(request, timeout=10.0)  # type: ignore[no-any-return]

        def stream(requests: Any, context: grpc.ServicerContext) -> Any:  # unary hops underneath
            for request in requests:
                yield forward(request, timeout=10.0)

        _serve_sync(_handler(call, stream), _server_creds(a.pki, HUB_CODE), a.listen, HUB_CODE, a.sync_threads)


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
        sp.add_argument("--plumbed", action="store_true", help="use tongban's gRPC plumbing and messages")
        sp.add_argument("--no-interceptor", action="store_true", help="with --plumbed: leave out the interceptor")
        sp.add_argument("--sync-threads", type=int, default=0,
                        help="grpcio's synchronous server on this many threads instead of grpc.aio")
    a = p.parse_args(argv)
    if a.sync_threads > 0:
        if a.uvloop or a.plumbed:
            p.error("--sync-threads runs grpcio's synchronous server: expected no --uvloop or --plumbed with it")
        (sync_backend if a.role == "backend" else sync_relay)(a)
        return 0
    if a.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if a.role == "backend":
        asyncio.run(plumbed_backend(a) if a.plumbed else backend(a))
    else:
        asyncio.run(plumbed_relay(a) if a.plumbed else relay(a))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
