"""A province whose ledger can no longer be written stops taking part in exchanges:
its window and its peers are refused UNAVAILABLE, naming the ledger's failure."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from exchange.errors import LedgerError
from tests.integration.conftest import Country, copy_world
from tests.integration.test_exchange import _a_certificate, fetch_ok, submit
from tongban.v1 import header_pb2

pytestmark = pytest.mark.integration


@pytest.fixture
def country(pki_dir: Path, world_dir: Path, tmp_path: Path) -> Iterator[Country]:
    country = Country(pki_dir, copy_world(world_dir, tmp_path), provinces=("110000", "440000"))
    try:
        yield country
    finally:
        try:
            country.call(country.provinces["440000"].stop(0.5))
        except LedgerError:  # its close reports the failure once more; stop() is done
            pass
        country.close()


def test_a_province_whose_ledger_failed_refuses_new_work_as_unavailable(country: Country) -> None:
    fetch_ok(country, "110000", "440000")  # a working exchange first, committed
    country.flush_ledgers()
    db = country.data / "440000.sqlite"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TABLE ledger")
    core = country.provinces["440000"].core
    core.record_handshake_refusal("127.0.0.1:9", "tls_bad_cert", "a row the ledger cannot keep")
    with pytest.raises(LedgerError):
        core.ledger.flush()
    failure = (f"node 440000 is not accepting work: its ledger cannot record it: ledger {db}: writer failed "
               "and stopped: OperationalError: no such table: ledger (1 entry not committed)")

    # its own window: refused outright
    cert = _a_certificate(country, "110000")
    with pytest.raises(grpc.RpcError) as info:
        submit(country, "440000", flow="ecert.fetch",
               subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code))
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNAVAILABLE, failure)

    # and its health checks say so: the server and each of its services NOT_SERVING (set on
    # the node's loop when the writer failed; asked until then, for at most 5 s)
    with country.window_channel("440000") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", "tongban.v1.NodeService", "tongban.v1.WindowService"):
            deadline = time.monotonic() + 5
            while (status := health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status) \
                    == health_pb2.HealthCheckResponse.SERVING and time.monotonic() < deadline:
                pass
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING, service

    # a request for it from another province: refused, and counted as not got through
    mine = _a_certificate(country, "440000")
    reply = submit(country, "110000", flow="ecert.fetch",
                   subject=header_pb2.Subject(holder_id=mine.holder_code, cert_type=mine.type_code))
    assert reply.outcome == "unavailable"
    assert reply.detail.endswith(failure)
    assert not reply.HasField("response")
