"""The load generator: a separate process standing in for the service windows.

It reads a plan (who asks what, when), fires each request at its planned time
whatever the state of earlier ones (open loop, so queueing shows in the latency
instead of slowing the arrivals), and writes per-flow outcome counts and latency
histograms as JSON for the runner to merge.

    python -m exchange.loadgen PLAN.json RESULT.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from certs.pki import load_client_credentials
from exchange.metrics import FlowStats
from tongban.v1 import header_pb2, services_pb2, services_pb2_grpc

__all__ = ["drive", "main"]


async def drive(plan: dict[str, Any]) -> dict[str, Any]:
    """Run ``plan`` and return the result document."""
    chain, key, root = load_client_credentials(Path(plan["pki"]))
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    channels: dict[str, grpc.aio.Channel] = {}
    stubs: dict[str, services_pb2_grpc.WindowServiceStub] = {}
    for code, endpoint in plan["endpoints"].items():
        ch = grpc.aio.secure_channel(endpoint, creds,
                                     options=[("grpc.ssl_target_name_override", f"node-{code}.tongban.test")])
        channels[code], stubs[code] = ch, services_pb2_grpc.WindowServiceStub(ch)
    stats: dict[str, FlowStats] = {}
    timeout = float(plan.get("timeout_s", 10.0))

    async def one(req: dict[str, Any]) -> None:
        s = stats.setdefault(req["flow"], FlowStats(req["flow"]))
        msg = services_pb2.SubmitRequest(
            flow=req["flow"], receiver=req.get("receiver", ""),
            subject=header_pb2.Subject(holder_id=req["holder"], cert_type=req.get("cert_type", "")),
            name=req.get("name", ""), photo_sha256=req.get("photo", ""),
            purpose=req.get("purpose", "跨省通办 业务办理"),
            audit=header_pb2.AuditContext(organisation=f"{req['origin']} 政务服务中心", operator="窗口",
                                          item_name=req.get("item", ""), business_serial=req.get("serial", "")),
        )
        t0 = time.perf_counter_ns()
        try:
            resp = await stubs[req["origin"]].Submit(msg, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            s.record(f"window_{e.code().name.lower()}", 0)
            return
        s.record(resp.outcome, (time.perf_counter_ns() - t0) // 1000, resp.result)

    requests = sorted(plan["requests"], key=lambda r: r["at_s"])
    tasks = []
    start = time.monotonic()
    for req in requests:
        delay = start + req["at_s"] - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(req)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    for ch in channels.values():
        await ch.close()
    return {"elapsed_s": elapsed, "flows": [s.to_json() for s in stats.values()]}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m exchange.loadgen PLAN.json RESULT.json\n")
        return 2
    plan = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    result = asyncio.run(drive(plan))
    Path(args[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
