"""A node and its ledger: one node per data dir, and no work it cannot record."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import grpc
import pytest

from exchange.errors import ConfigError, LedgerError, PeerUnavailableError, TongbanError
from exchange.ledger import read_entries
from nodes._status import status_of
from nodes.core import NodeCore
from nodes.hub import HubNode
from tongban.v1 import envelope_pb2


def hub_version(db: Path) -> str:
    with closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("SELECT value FROM hub_state WHERE key = 'version'").fetchone()[0])


def test_a_second_hub_on_a_data_dir_is_refused_before_it_writes_anything(
        pki_dir: Path, world_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = Path(shutil.copytree(world_dir, tmp_path / "data"))
    db = data / "000000.sqlite"
    first = HubNode(pki_dir=pki_dir, data_dir=data)
    try:
        first.core.ledger.flush()
        rows = read_entries(db)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="nodes.hub"), pytest.raises(ConfigError) as info:
            HubNode(pki_dir=pki_dir, data_dir=data)
        assert str(info.value) == (f"{db}: this process (pid {os.getpid()}) is already writing this ledger "
                                   "(only one Ledger may write a file); close it first")
        assert hub_version(db) == "1"  # the refused hub published nothing
        assert read_entries(db) == rows
        assert "restarted" not in caplog.text
    finally:
        first.core.close()
    second = HubNode(pki_dir=pki_dir, data_dir=data)  # a restart once the first is gone
    second.core.close()
    assert hub_version(db) == "2"


def test_a_node_whose_ledger_failed_refuses_work_as_unavailable(pki_dir: Path, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    core = NodeCore(code="440000", pki_dir=pki_dir, data_dir=tmp_path)
    db = tmp_path / "440000.sqlite"
    core.ensure_recording()  # a working ledger: nothing to refuse
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TABLE ledger")
    core.record_handshake_refusal("127.0.0.1:9", "tls_bad_cert", "a refusal the ledger cannot keep")
    with pytest.raises(LedgerError):
        core.ledger.flush()
    expected = (f"node 440000 is not accepting work: its ledger cannot record it: ledger {db}: writer failed "
                "and stopped: OperationalError: no such table: ledger (1 entry not committed)")
    calls: list[Callable[[], object]] = [
        core.ensure_recording,
        lambda: core.open(envelope_pb2.Envelope(), expect="request"),  # refused before it is read
        lambda: core.retry_of(envelope_pb2.Envelope(), "000000"),
        lambda: core.record("received", envelope_pb2.Envelope(), peer="000000"),
    ]
    for call in calls:
        with pytest.raises(PeerUnavailableError) as info:
            call()
        assert str(info.value) == expected
        assert status_of(info.value) == grpc.StatusCode.UNAVAILABLE
        assert info.value.code == "unavailable"
    # a refused handshake (the TLS gate's hook) is logged, not raised into the gate with a traceback
    with caplog.at_level(logging.WARNING, logger="nodes.core"):
        core.record_handshake_refusal("127.0.0.1:9", "tls_bad_cert", "another")
    assert caplog.messages[-1] == "node 440000: refused handshake not ledgered (the ledger failed): another"
    with pytest.raises(LedgerError, match="writer failed and stopped"):
        core.close()


def test_a_node_that_fails_to_set_up_lets_its_ledger_go_at_once(pki_dir: Path, tmp_path: Path) -> None:
    from nodes.province import ProvinceNode

    for make in (lambda: HubNode(pki_dir=pki_dir, data_dir=tmp_path),  # no world here: both fail after the ledger
                 lambda: ProvinceNode(code="440000", pki_dir=pki_dir, data_dir=tmp_path, hub="127.0.0.1:1")):
        errors = []
        for _ in range(2):  # the same error twice: not "this process is already writing this ledger"
            with pytest.raises(TongbanError) as info:
                make()
            errors.append(str(info.value))
        assert errors[0] == errors[1] and "already writing" not in errors[0], errors
