"""A backlog let go at once travels in several stream messages of at most 256 answers
each, far below gRPC's 4 MiB message limit, instead of one message that ends the stream."""

from __future__ import annotations

import asyncio
from typing import Any

from nodes.stream import WINDOW_STREAM, serve_frames
from tongban.v1 import services_pb2


def test_answers_ready_together_go_out_at_most_256_to_a_message() -> None:
    async def go() -> list[list[int]]:
        release = asyncio.Event()

        async def frames() -> Any:
            yield services_pb2.SubmitStreamRequest(calls=[
                services_pb2.WindowCall(call_id=i, request=services_pb2.SubmitRequest(flow="identity.verify"))
                for i in range(1, 601)])
            release.set()  # every call started: they all finish in the same turn of the loop

        async def handle(request: services_pb2.SubmitRequest, peer: str, timeout: float | None) -> Any:
            await release.wait()
            return services_pb2.SubmitResponse(outcome="ok")

        return [[a.call_id for a in reply.answers]
                async for reply in serve_frames(frames(), method=WINDOW_STREAM, peer="window", handle=handle)]

    messages = asyncio.run(go())
    assert [len(m) for m in messages] == [256, 256, 88]
    assert sorted(i for m in messages for i in m) == list(range(1, 601))
