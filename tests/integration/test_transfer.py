"""ecert.transfer: exactly once, never valid at both provinces, and finished after
a node is killed between the steps."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from certs.pki import load_client_credentials
from exchange._procs import Children
from nodes.store import ProvinceStore
from tests.integration.conftest import Country, copy_world
from tongban.v1 import header_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration

A, B = "110000", "440000"


def _a_holder(data: Path, code: str = A) -> Any:
    with ProvinceStore(data / f"{code}.sqlite", code=code) as s:
        return next(c for c in s.sample_certificates(random.Random(11), 100)
                    if c.state == "01" and c.holder_code_type == "111")


def _rows(data: Path, code: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data / f"{code}.sqlite")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _state(data: Path, cert: Any) -> dict[str, Any]:
    """What each side holds for the holder's certificate of this type."""
    old = _rows(data, A, "SELECT state FROM ecerts WHERE identifier = ?", cert.identifier)[0][0]
    new = _rows(data, B, "SELECT identifier, state, operate_type, associated_id FROM ecerts "
                         "WHERE associated_id = ?", cert.identifier)
    valid = (old == "01") + sum(1 for r in new if r[1] == "01")
    return {"old_state": old, "new": new, "valid": valid}


def _submit(channel: grpc.Channel, cert: Any) -> services_pb2.SubmitResponse:
    return services_pb2_grpc.WindowServiceStub(channel).Submit(services_pb2.SubmitRequest(
        flow="ecert.transfer", purpose="户籍迁入 电子证照转移",
        subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code)), timeout=15)


class _Cluster:
    """Hub, A and B as separate processes on loopback, each killable."""

    def __init__(self, pki: Path, world: Path, tmp: Path, *, crash: dict[str, str]) -> None:
        (tmp / "data").mkdir()
        self.data = copy_world(world, tmp / "data")
        (tmp / "logs").mkdir()
        self.kids = Children(tmp / "logs")
        self.pki = pki
        self.common = ["--pki", str(pki), "--data", str(self.data), "--listen", "127.0.0.1:0"]
        hub = self.kids.start(["node", "hub", *self.common], "hub")
        self.hub_at = self.kids.wait_ready(hub, ["000000"])["000000"]
        self.procs: dict[str, Any] = {}
        self.endpoints: dict[str, str] = {}
        for code in (A, B):
            self.start(code, crash.get(code))

    def start(self, code: str, crash_at: str | None = None) -> Any:
        """Start (or restart) a province; returns once it serves and is registered."""
        p = self.kids.start(["node", "province", code, *self.common, "--hub", self.hub_at], code,
                            env={"TONGBAN_CRASH_AT": crash_at} if crash_at else None)
        self.endpoints.update(self.kids.wait_ready(p, [code]))
        self.procs[code] = p
        return p

    def window(self) -> grpc.Channel:
        """A window client at B, the province the holder moves to."""
        chain, key, root = load_client_credentials(self.pki)
        creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
        return grpc.secure_channel(self.endpoints[B], creds,
                                   options=[("grpc.ssl_target_name_override", f"node-{B}.tongban.test")])


def test_transfer_moves_the_certificate_exactly_once(country: Country) -> None:
    cert = _a_holder(country.data)
    with country.window_channel(B) as ch:
        reply = _submit(ch, cert)
    assert (reply.outcome, reply.result) == ("ok", "transferred"), reply.detail
    s = _state(country.data, cert)
    assert s["old_state"] == "06" and s["valid"] == 1
    assert s["new"] == [(reply.identifier, "01", "08", cert.identifier)]
    assert _rows(country.data, A, "SELECT phase, new_identifier FROM transfers WHERE old_identifier = ?",
                 cert.identifier) == [("done", reply.identifier)]
    # moving it again finds nothing valid left at A
    with country.window_channel(B) as ch:
        again = _submit(ch, cert)
    assert (again.outcome, again.result) == ("ok", "not_found")
    assert _state(country.data, cert)["valid"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["transfer.after_out", "transfer.after_issue"])
def test_transfer_survives_the_coordinator_killed_between_steps(
        crash_at: str, pki_dir: Path, world_dir: Path, tmp_path: Path) -> None:
    c = _Cluster(pki_dir, world_dir, tmp_path, crash={B: crash_at})
    data, b, cert = c.data, c.procs[B], _a_holder(c.data)
    try:
        with c.window() as ch:
            with pytest.raises(grpc.RpcError) as e:
                _submit(ch, cert)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert b.wait(timeout=10) == 137  # died between the steps
        between = _state(data, cert)
        assert between["old_state"] == "06" and between["valid"] <= 1
        assert len(between["new"]) == (1 if crash_at == "transfer.after_issue" else 0)
        c.start(B)  # restart B: it finishes the journalled transfer before it reports ready
        after = _state(data, cert)
        assert after["old_state"] == "06" and after["valid"] == 1 and len(after["new"]) == 1
        assert after["new"][0][1:] == ("01", "08", cert.identifier)
        assert _rows(data, B, "SELECT phase FROM transfers WHERE role = 'in'") == [("done",)]
        assert _rows(data, A, "SELECT phase FROM transfers WHERE role = 'out'") == [("done",)]
    finally:
        c.kids.stop()


@pytest.mark.slow
def test_transfer_survives_the_source_killed_after_marking(pki_dir: Path, world_dir: Path, tmp_path: Path) -> None:
    c = _Cluster(pki_dir, world_dir, tmp_path, crash={A: "transfer.out.after_mark"})
    data, a, b, kids, cert = c.data, c.procs[A], c.procs[B], c.kids, _a_holder(c.data)
    try:
        with c.window() as ch:
            reply = _submit(ch, cert)
        assert reply.outcome == "unavailable"  # A died after marking 06, before answering
        assert a.wait(timeout=10) == 137
        assert _state(data, cert) == {"old_state": "06", "new": [], "valid": 0}  # A's pending 06 stands
        c.start(A)
        kids.send(b, {"op": "refresh"})
        kids.send(b, {"op": "recover"})  # what B's periodic recovery does
        deadline = time.monotonic() + 20
        while _rows(data, B, "SELECT phase FROM transfers WHERE role = 'in'") != [("done",)]:
            assert time.monotonic() < deadline, _rows(data, B, "SELECT phase FROM transfers")
            time.sleep(0.05)
        after = _state(data, cert)
        assert after["valid"] == 1 and [r[1:] for r in after["new"]] == [("01", "08", cert.identifier)]
    finally:
        kids.stop()
