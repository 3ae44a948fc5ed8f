"""ecert.transfer at the province the holder moves to (B), the coordinator.

1. B journals the transfer (started) and asks A to mark the certificate 06
   办理转出 (transfer.out); A answers with the certificate, signed by its issuing
   authority, and journals it; the same transfer id always gets the same answer.
2. B journals the received certificate (out_done), then issues its 08 转入
   certificate with 关联证照标识 = the old identifier, in one transaction with the
   journal (issued).
3. B tells A (transfer.commit) and journals done.

A node killed between any two steps resumes at its next start (or when the
runner says ``recover``): B re-drives every journalled transfer that is not done;
A's answers are idempotent. ``TONGBAN_CRASH_AT=transfer.after_out`` or
``transfer.after_issue`` makes B's process die at that point as SIGKILL would
(no cleanup), which is how the tests kill it between the steps.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import date
from typing import TYPE_CHECKING

from exchange.dsse import DsseEnvelope
from exchange.errors import HeaderError
from exchange.payloads import parse_payload
from nodes.transfer_store import PendingTransfer
from nodes.transfer_store import crash_point as _crash_point
from tongban.v1 import ecert_pb2, header_pb2, services_pb2, transfer_pb2

if TYPE_CHECKING:
    from nodes.province import ProvinceNode

__all__ = ["recover", "transfer"]


def _cert_fields(reply: services_pb2.SubmitResponse) -> dict[str, str]:
    resp = transfer_pb2.TransferOutResponse.FromString(reply.response.payload)
    env = DsseEnvelope.from_pb(resp.certificate)
    cert = parse_payload(env.payload_type, env.payload)
    assert isinstance(cert, ecert_pb2.ECertificate)
    return {"identifier": cert.identifier, "type_code": cert.type_code, "type_name": cert.type_name,
            "holder_code": cert.holder_code, "holder_code_type": cert.holder_code_type,
            "holder_name": cert.holder_name, "valid_to": cert.valid_to, "area_code": cert.area_code,
            "fields_json": json.dumps(dict(cert.fields), ensure_ascii=False)}


async def _drive(node: ProvinceNode, p: PendingTransfer) -> services_pb2.SubmitResponse:
    """Take one journalled transfer as far as it can go now."""
    ts = node.transfers
    subject = header_pb2.Subject(holder_id=p.holder, cert_type=p.cert_type)
    base = {"receiver": p.peer, "subject": subject, "purpose": "电子证照跨省转移 (转出/转入)"}
    phase, new_id = p.phase, p.new_identifier
    if phase == "started":
        r = await node.submit(services_pb2.SubmitRequest(flow="transfer.out", **base),
                              extra={"transfer_id": p.transfer_id})
        if r.outcome != "ok":
            return r  # stays "started": retried on recovery
        if r.result == "not_found":
            ts.finish_in(p.transfer_id, phase="aborted", now_ns=time.time_ns())
            return services_pb2.SubmitResponse(outcome="ok", result="not_found", trace_id=r.trace_id)
        ts.out_done(p.transfer_id, _cert_fields(r), now_ns=time.time_ns())
        _crash_point("transfer.after_out")
        phase = "out_done"
    if phase == "out_done":
        new_id = ts.issue_in(p.transfer_id, now_ns=time.time_ns(), today=date.today().isoformat())
        _crash_point("transfer.after_issue")
    r = await node.submit(services_pb2.SubmitRequest(flow="transfer.commit", **base),
                          extra={"transfer_id": p.transfer_id, "new_identifier": new_id})
    if r.outcome == "ok" and r.result == "recorded":
        ts.finish_in(p.transfer_id, phase="done", now_ns=time.time_ns())
    out = services_pb2.SubmitResponse(outcome=r.outcome, detail=r.detail, result="transferred",
                                      identifier=new_id, trace_id=r.trace_id)
    return out


async def transfer(node: ProvinceNode, req: services_pb2.SubmitRequest) -> services_pb2.SubmitResponse:
    """A window at B moves the holder's certificate of one type from its home province."""
    started = time.perf_counter_ns()
    holder, cert_type = req.subject.holder_id, req.subject.cert_type
    if not cert_type:
        raise HeaderError("ecert.transfer: expected subject.cert_type, found an empty string")
    source = req.receiver or node.core.current_directory().route_subject(holder, cert_type)
    if source == node.code:
        raise HeaderError(f"ecert.transfer: the certificate is already issued by {node.code}")
    tid = str(uuid.uuid4())
    node.transfers.begin_in(tid, holder=holder, cert_type=cert_type, from_node=source, now_ns=time.time_ns())
    out = await _drive(node, PendingTransfer(tid, source, holder, cert_type, "started", {}, ""))
    out.latency_us = (time.perf_counter_ns() - started) // 1000
    return out


async def recover(node: ProvinceNode) -> int:
    """Re-drive every unfinished transfer; returns how many are still unfinished."""
    left = 0
    for p in node.transfers.pending_in():
        r = await _drive(node, p)
        left += r.outcome != "ok"
    return left
