"""A node restarted mid-request closes what it left open, once, from its ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from exchange.ledger import Ledger, LedgerEntry, read_entries
from nodes.core import NodeCore

ME, PEER = "440000", "510000"
NOW = 1_750_000_000_000_000_000


def row(i: int, direction: str, digest: str) -> LedgerEntry:
    sender, receiver = (ME, PEER) if direction == "sent" else (PEER, ME)
    return LedgerEntry(at_ns=NOW + i, direction=direction, message_id=f"msg-{i}",
                       payload_type="application/vnd.tongban.ecert-request.v1+proto", flow="ecert.fetch",
                       sender=sender, receiver=receiver, peer="000000", envelope_sha256="ab" * 32,
                       size_bytes=600, expires_at_ns=NOW + 10**12, outcome="ok", reason="",
                       trace_id=f"trace-{i}", request_digest=digest)


def start(pki_dir: Path, data: Path) -> None:
    """Start a node's core on ``data`` and stop it once its ledger has what it wrote."""
    core = NodeCore(code=ME, pki_dir=pki_dir, data_dir=data, clock=lambda: NOW + 10**9)
    core.close()


def test_restart_ledgers_each_unanswered_request_as_interrupted_once(pki_dir: Path, tmp_path: Path) -> None:
    with Ledger(tmp_path / f"{ME}.sqlite", node_code=ME) as ledger:
        for e in (row(1, "sent", "d-answered"), row(2, "received", "d-answered"),
                  row(3, "sent", "d-open"), row(4, "sent", "d-open")):
            ledger.append(e)

    start(pki_dir, tmp_path)
    start(pki_dir, tmp_path)  # a second restart finds nothing left open

    added = [r for r in read_entries(tmp_path / f"{ME}.sqlite") if r.seq > 4]
    assert [(r.seq, r.entry.direction, r.entry.outcome, r.entry.message_id, r.entry.request_digest,
             r.entry.at_ns, r.entry.reason) for r in added] == [
        (5, "rejected", "interrupted", "msg-3", "d-open", NOW + 10**9,
         "node 440000 restarted before the answer to msg-3 arrived")]


def test_restart_leaves_the_answers_this_node_sent_alone(pki_dir: Path, tmp_path: Path) -> None:
    """A response the node sent carries the digest of the request it answered; that request
    arrived with an empty receiver (routed by the hub), so only the payload type says the
    sent row is an answer, not a request of this node's own still waiting for one."""
    with Ledger(tmp_path / f"{ME}.sqlite", node_code=ME) as ledger:
        ledger.append(replace(row(1, "received", "d-theirs"), receiver=""))
        ledger.append(replace(row(2, "sent", "d-theirs"), receiver=PEER,
                              payload_type="application/vnd.tongban.ecert-response.v1+proto"))

    start(pki_dir, tmp_path)

    assert [(r.seq, r.entry.direction, r.entry.payload_type)
            for r in read_entries(tmp_path / f"{ME}.sqlite")] == [
        (1, "received", "application/vnd.tongban.ecert-request.v1+proto"),
        (2, "sent", "application/vnd.tongban.ecert-response.v1+proto")]
