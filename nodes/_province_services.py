"""The gRPC services a provincial node serves: NodeService (the exchange: requests from the
hub, or from peers in the regional and direct topologies) and WindowService (its own
service windows' submissions). Each hands a call to its ProvinceNode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from exchange.errors import PayloadTypeError, PeerIdentityError, PeerUnavailableError
from nodes._grpc import peer_code
from nodes.flows import WINDOW_FLOWS
from nodes.stream import HANDLE_STREAM, WINDOW_STREAM, serve_frames
from tongban.v1 import services_pb2, services_pb2_grpc

if TYPE_CHECKING:
    from nodes.province import ProvinceNode

__all__ = ["WINDOW_CLIENT"]

#: Common name of the client certificate that service windows (and the load
#: generator standing in for them) present to WindowService.
WINDOW_CLIENT = "window"


class _NodeServicer(services_pb2_grpc.NodeServiceServicer):
    def __init__(self, node: ProvinceNode) -> None:
        self.node = node

    async def Handle(self, request: services_pb2.HandleRequest,
                     context: grpc.aio.ServicerContext) -> services_pb2.HandleResponse:
        return services_pb2.HandleResponse(envelope=await self.node.dispatch(request.envelope, peer_code(context)))

    async def HandleStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        async for reply in serve_frames(request_iterator, method=HANDLE_STREAM, peer=peer_code(context),
                                        handle=self.node.dispatch, on_undecodable=self.node.core.record_undecodable):
            yield reply


class _WindowServicer(services_pb2_grpc.WindowServiceServicer):
    def __init__(self, node: ProvinceNode) -> None:
        self.node = node

    async def Submit(self, request: services_pb2.SubmitRequest,
                     context: grpc.aio.ServicerContext) -> services_pb2.SubmitResponse:
        return await self.submit(request, peer_code(context))

    async def SubmitStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        async for reply in serve_frames(request_iterator, method=WINDOW_STREAM, peer=peer_code(context),
                                        handle=self.submit, on_undecodable=self.node.core.record_undecodable):
            yield reply

    async def submit(self, request: services_pb2.SubmitRequest, peer: str,
                     timeout_s: float | None = None) -> services_pb2.SubmitResponse:
        """One submission from TLS peer ``peer`` (the caller's timeout is not needed: every
        flow ends within the node's own request timeout)."""
        if peer != WINDOW_CLIENT:
            raise PeerIdentityError(f"WindowService serves the client {WINDOW_CLIENT!r}, found TLS peer {peer!r}")
        if request.flow not in WINDOW_FLOWS:
            raise PayloadTypeError(f"flow: expected one of the flows a window submits ({', '.join(WINDOW_FLOWS)}), "
                                   f"found {request.flow[:80]!r}")
        if self.node.down:
            raise PeerUnavailableError(f"node {self.node.code} is down")
        return await self.node.submit(request)
