"""gRPC plumbing shared by every node: mTLS credentials, servers, channels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nodes._status import ErrorInterceptor

__all__ = [
    "MAX_GRPC_MESSAGE_BYTES",
    "build_server",
    "channel_credentials",
    "open_channel",
    "peer_code",
    "server_credentials",
    "tls_name",
]

#: gRPC's own limit sits above the directory's envelope limit, so an oversize
#: envelope reaches tongban's check (and the ledger) instead of dying in the transport.
MAX_GRPC_MESSAGE_BYTES = 8 * 1024 * 1024

_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
    # a node that went down and came back is reachable again within a second
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def tls_name(code: str) -> str:
    """The DNS name every node's TLS certificate carries; clients verify it."""
    return f"node-{code}.tongban.test"


def server_credentials(*, key_pem: bytes, chain_pem: bytes, root_pem: bytes) -> grpc.ServerCredentials:
    """mTLS: present our chain, demand a client certificate from the national root."""
    return grpc.ssl_server_credentials([(key_pem, chain_pem)], root_certificates=root_pem, require_client_auth=True)


def channel_credentials(*, key_pem: bytes, chain_pem: bytes, root_pem: bytes) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=root_pem, private_key=key_pem, certificate_chain=chain_pem)


def open_channel(target: str, creds: grpc.ChannelCredentials, *, peer: str) -> grpc.aio.Channel:
    """A channel to node ``peer`` at ``target``; the server must prove it is ``peer``."""
    options = [*_OPTIONS, ("grpc.ssl_target_name_override", tls_name(peer))]
    return grpc.aio.secure_channel(target, creds, options=options)


def peer_code(context: grpc.aio.ServicerContext) -> str:
    """The common name (node code) of the mTLS client certificate."""
    auth = context.auth_context()
    names = auth.get("x509_common_name") or []
    return names[0].decode() if names else ""


def build_server(
    *,
    creds: grpc.ServerCredentials,
    listen: str,
    services: Iterable[tuple[Any, Any, str]],
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A grpc.aio server with our services, health checking and reflection.

    ``services`` holds (add_XServicer_to_server, servicer, full service name).
    Returns the server (not started), the bound port and the health servicer.
    """
    server = grpc.aio.server(interceptors=[ErrorInterceptor()], options=_OPTIONS)
    names = []
    for add, servicer, name in services:
        add(servicer, server)
        names.append(name)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names += [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    port = server.add_secure_port(listen, creds)
    if port == 0:
        raise OSError(f"could not listen on {listen}")
    return server, port, health_servicer
