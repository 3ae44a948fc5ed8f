"""reconcile: what a run's report says about requests, bytes and hops, read from ledgers.

The example test pins every rule on hand-built ledgers, with the chains checked on a
thread (small ledgers) and by a worker process (a long run's). The property test compares
``reconcile`` (SQLite does the counting and the trace join) with the rule as it was
first written, reading every row into memory (``_reference`` below), on random ledgers.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.errors import LedgerChainError, TongbanError
from exchange.ledger import Ledger, LedgerEntry, read_entries, verify_ledger
from exchange.metrics import new_histogram
from exchange.payloads import (
    DIRECTORY,
    ECERT_REQUEST,
    ECERT_RESPONSE,
    IDENTITY_REQUEST,
    IDENTITY_RESPONSE,
    REGISTRATION,
    spec_of,
)
from exchange import _chain_check
from exchange.reconcile import HOPS, reconcile

HUB, A, B = "000000", "110000", "440000"
T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def row(at_ms: float, direction: str, payload_type: str, sender: str, receiver: str, *,
        message_id: str = "m1", trace_id: str = "t1", outcome: str = "ok", size: int = 100,
        flow: str | None = None) -> LedgerEntry:
    if flow is None:
        flow = spec_of(payload_type).flow if payload_type else ""
    return LedgerEntry(
        at_ns=T0 + int(at_ms * MS), direction=direction, message_id=message_id, payload_type=payload_type,
        flow=flow, sender=sender, receiver=receiver, peer="", envelope_sha256="", size_bytes=size,
        expires_at_ns=0, outcome=outcome, reason="", trace_id=trace_id, request_digest="",
    )


def write(data: Path, code: str, entries: list[LedgerEntry]) -> None:
    ledger = Ledger(data / f"{code}.sqlite", node_code=code)
    for e in entries:
        ledger.append(e)
    ledger.close()


def exchange_rows(trace: str, request_id: str, response_id: str, start_ms: float,
                  req: str = ECERT_REQUEST, resp: str = ECERT_RESPONSE) -> dict[str, list[LedgerEntry]]:
    """The eight rows of one delivered exchange A -> hub -> B -> hub -> A, 1 ms apart, B taking 2."""
    t = start_ms
    q = {"message_id": request_id, "trace_id": trace, "size": 600}
    r = {"message_id": response_id, "trace_id": trace, "size": 900}
    return {
        A: [row(t, "sent", req, A, B, **q), row(t + 8, "received", resp, B, A, **r)],
        HUB: [row(t + 1, "received", req, A, B, **q), row(t + 2, "forwarded", req, A, B, **q),
              row(t + 6, "received", resp, B, A, **r), row(t + 7, "forwarded", resp, B, A, **r)],
        B: [row(t + 3, "received", req, A, B, **q), row(t + 5, "sent", resp, B, A, **r)],
    }


@pytest.fixture(params=["thread", "worker"])
def checks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Any:
    """Where reconcile checks the chains: on a thread, or (as for a long run's ledgers on a
    machine with two cores) in a worker process, which must then have answered."""
    if request.param == "thread":
        yield
        return
    asked: list[Path] = []
    ask = _chain_check._ask

    def counting(proc: Any, path: Path) -> dict[str, Any]:
        doc = ask(proc, path)
        asked.append(path)  # answered
        return doc

    monkeypatch.setattr(_chain_check, "WORKERS_FROM_BYTES", 0)
    monkeypatch.setattr(_chain_check.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(_chain_check, "_ask", counting)
    yield
    assert asked, "no ledger was checked by a worker process"
    assert "checking the rest on a thread" not in caplog.text


def test_every_rule_on_hand_built_ledgers(tmp_path: Path, checks: None) -> None:
    rows: dict[str, list[LedgerEntry]] = {A: [], HUB: [], B: []}
    for i in range(3):  # three delivered exchanges
        for code, entries in exchange_rows(f"t{i}", f"q{i}", f"r{i}", 100 * i).items():
            rows[code] += entries
    rows[A] += [
        # a request sent twice (a retry): one request, its bytes twice; the hub refuses it
        row(400, "sent", IDENTITY_REQUEST, A, B, message_id="q3", trace_id="t3", size=300),
        row(410, "sent", IDENTITY_REQUEST, A, B, message_id="q3", trace_id="t3", size=300, outcome="retry"),
        row(420, "rejected", IDENTITY_REQUEST, A, B, message_id="q3", trace_id="t3", outcome="unauthorized"),
        # a request the hub could not pass on, and one interrupted by a restart: failed
        row(500, "sent", IDENTITY_REQUEST, A, B, message_id="q4", trace_id="t4", size=300),
        row(501, "rejected", "", A, "", message_id="q4", trace_id="", outcome="unavailable"),
        row(600, "sent", IDENTITY_REQUEST, A, B, message_id="q5", trace_id="t5", size=300),
        row(601, "rejected", IDENTITY_REQUEST, A, B, message_id="q5", trace_id="t5", outcome="interrupted"),
        # an answer addressed to A that A refused: a rejection of A's request
        row(700, "sent", ECERT_REQUEST, A, B, message_id="q6", trace_id="t6", size=600),
        row(708, "rejected", ECERT_RESPONSE, B, A, message_id="r6", trace_id="t6", outcome="bad_signature"),
        # never requests: a registration, a certificate document, another node's refusal
        row(1, "sent", REGISTRATION, A, HUB, message_id="reg", trace_id="reg"),
        row(2, "received", DIRECTORY, HUB, A, message_id="dir", trace_id="dir"),
        row(800, "rejected", ECERT_REQUEST, B, A, message_id="x", trace_id="x", outcome="replayed"),
    ]
    rows[B] += [row(900, "sent", ECERT_RESPONSE, B, A, message_id="late", trace_id=""),  # no trace: no hop
                row(950, "received", ECERT_REQUEST, A, B, message_id="late-q", trace_id="")]
    for code, entries in rows.items():
        write(tmp_path, code, entries)
    # a province whose ledger was edited after the run, and one with no ledger at all
    write(tmp_path, "310000", exchange_rows("t9", "q9", "r9", 0)[A])
    with sqlite3.connect(tmp_path / "310000.sqlite") as conn:
        conn.execute("UPDATE ledger SET size_bytes = 1 WHERE seq = 1")

    rec = reconcile(tmp_path, [HUB, A, B, "310000", "320000"])

    assert rec.summary() == {"sent": 7, "delivered": 3, "rejected": 2, "failed": 2, "lost": 0}
    assert rec.served == Counter({B: 4})
    assert rec.bytes == {"ecert.fetch": Counter({"requests": 3 * 600 + 600, "responses": 3 * 900}),
                         "identity.verify": Counter({"requests": 4 * 300})}
    assert rec.ledgers[A] == {"rows": len(rows[A]), "verified": True}
    assert rec.ledgers["310000"]["verified"] is False and rec.ledgers["310000"]["rows"] is None
    assert "310000.sqlite: row 1" in rec.ledgers["310000"]["error"]
    assert rec.ledgers["320000"]["verified"] is False and rec.ledgers["320000"]["rows"] == 0
    assert "no such file" in rec.ledgers["320000"]["error"]
    # t0..t2 have all eight events; t3..t6 never reached the hub, so they time no hop
    assert rec.hops == {
        "origin_to_hub_ms": {"count": 3, "p50": 1.0, "p99": 1.0},
        "hub_ms": {"count": 3, "p50": 1.0, "p99": 1.0},
        "hub_to_target_ms": {"count": 3, "p50": 1.0, "p99": 1.0},
        "target_ms": {"count": 3, "p50": 2.0, "p99": 2.0},
        "target_to_hub_ms": {"count": 3, "p50": 1.0, "p99": 1.0},
        "hub_to_origin_ms": {"count": 3, "p50": 1.0, "p99": 1.0},
    }


def test_a_ledger_that_fails_its_check_times_no_hop(tmp_path: Path, checks: None) -> None:
    """Ledgers are read while their chains are checked: a failed one's events are taken out again."""
    for code, entries in exchange_rows("t", "q", "r", 0).items():
        write(tmp_path, code, entries)
    assert reconcile(tmp_path, [HUB, A, B]).hops["target_ms"] == {"count": 1, "p50": 2.0, "p99": 2.0}
    with sqlite3.connect(tmp_path / f"{B}.sqlite") as conn:
        conn.execute("UPDATE ledger SET at_ns = at_ns + 1 WHERE seq = 2")
    rec = reconcile(tmp_path, [HUB, A, B])
    assert (rec.ledgers[B]["verified"], rec.summary()["delivered"], rec.served) == (False, 1, Counter())
    assert {name: h["count"] for name, h in rec.hops.items()} == {
        "origin_to_hub_ms": 1, "hub_ms": 1, "hub_to_target_ms": 0, "target_ms": 0, "target_to_hub_ms": 0,
        "hub_to_origin_ms": 1}


def test_a_ledger_whose_rows_cannot_be_read_before_its_check_counts_for_nothing(tmp_path: Path,
                                                                               checks: None) -> None:
    """Ledgers are read before their chains are judged: a tampered one may hold anything."""
    for code, entries in exchange_rows("t", "q", "r", 0).items():
        write(tmp_path, code, entries)
    with sqlite3.connect(tmp_path / f"{B}.sqlite") as conn:
        conn.execute("UPDATE ledger SET payload_type = X'00' WHERE seq = 1")  # sorting it fails: bytes vs str
    rec = reconcile(tmp_path, [HUB, A, B])
    assert rec.ledgers[B]["verified"] is False and "440000.sqlite: row 1" in rec.ledgers[B]["error"]
    assert (rec.ledgers[A], rec.summary()["delivered"]) == ({"rows": 2, "verified": True}, 1)


def test_a_worker_that_answers_amiss_leaves_the_checks_to_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    for code, entries in exchange_rows("t", "q", "r", 0).items():
        write(tmp_path, code, entries)
    monkeypatch.setattr(_chain_check, "_ask", lambda proc, path: {"path": "elsewhere", "rows": 1})
    checks = _chain_check.ChainChecks([tmp_path / f"{c}.sqlite" for c in (HUB, A, B)], workers=1)
    try:
        assert [f.result(timeout=30).rows for f in checks.futures] == [4, 2, 2]
    finally:
        checks.close()
    assert "answered for 'elsewhere'" in caplog.text


def test_a_worker_that_dies_leaves_the_checks_to_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    for code, entries in exchange_rows("t", "q", "r", 0).items():
        write(tmp_path, code, entries)
    with sqlite3.connect(tmp_path / f"{B}.sqlite") as conn:
        conn.execute("UPDATE ledger SET outcome = 'ok!' WHERE seq = 1")
    monkeypatch.setattr(_chain_check.sys, "executable", "/bin/false")  # the worker exits at once
    checks = _chain_check.ChainChecks([tmp_path / f"{c}.sqlite" for c in (HUB, A, B, "310000")], workers=1)
    try:
        hub, a = checks.futures[0].result(timeout=30), checks.futures[1].result(timeout=30)
        assert (hub.rows, a.rows) == (4, 2)
        with pytest.raises(LedgerChainError, match="440000.sqlite: row 1"):
            checks.futures[2].result(timeout=30)
        with pytest.raises(TongbanError, match="no such file"):
            checks.futures[3].result(timeout=30)
    finally:
        checks.close()
    assert "checking the rest on a thread" in caplog.text  # after "exited with 1" or a broken pipe


def test_a_repeated_event_counts_its_last_row(tmp_path: Path, checks: None) -> None:
    rows = exchange_rows("t", "q", "r", 0)
    rows[HUB].insert(2, row(5, "forwarded", ECERT_REQUEST, A, B, message_id="q", trace_id="t"))  # re-forwarded
    for code, entries in rows.items():
        write(tmp_path, code, entries)
    # and a second province that saw the request too (2 ms after the hub forwarded it at 5)
    write(tmp_path, "310000", [row(7, "received", ECERT_REQUEST, A, B, message_id="q", trace_id="t")])
    hops = reconcile(tmp_path, [HUB, A, B]).hops
    # 1 -> 5 ms, not 1 -> 2 (HdrHistogram's 3 significant digits: 4,000 µs reads back as 4,001)
    assert hops["hub_ms"] == {"count": 1, "p50": 4.001, "p99": 4.001}
    assert hops["hub_to_target_ms"] == {"count": 1, "p50": 0.001, "p99": 0.001}  # B's at 3: floor 1 µs
    # in a ledger read later: 310000's row wins over B's
    assert reconcile(tmp_path, [HUB, A, B, "310000"]).hops["hub_to_target_ms"]["p50"] == 2.0
    assert reconcile(tmp_path, [HUB, A, "310000", B]).hops["hub_to_target_ms"]["p50"] == 0.001


def _reference(data_dir: Path, codes: list[str], hub: str = HUB) -> dict[str, Any]:
    """The rule as first written: every row of every ledger in memory."""
    def kind(e: LedgerEntry) -> str:
        try:
            spec = spec_of(e.payload_type) if e.payload_type else None
        except TongbanError:
            return ""
        return spec.kind if spec and spec.flow != "registration" else ""

    sent = delivered = rejected = failed = 0
    served: Counter[str] = Counter()
    sizes: dict[str, Counter[str]] = {}
    ledgers: dict[str, Any] = {}
    traces: dict[str, dict[str, int]] = {}
    for code in codes:
        db = data_dir / f"{code}.sqlite"
        try:
            ledgers[code] = {"rows": verify_ledger(db).rows, "verified": True}
        except LedgerChainError as e:
            ledgers[code] = {"rows": None, "verified": False, "error": str(e)}
            continue
        except TongbanError as e:
            ledgers[code] = {"rows": 0, "verified": False, "error": str(e)}
            continue
        entries = [r.entry for r in read_entries(db)]
        for e in entries:
            k = kind(e)
            if not k or not e.trace_id:
                continue
            if code == hub:
                name = {("received", "request"): "hub_received_request",
                        ("forwarded", "request"): "hub_forwarded_request",
                        ("received", "response"): "hub_received_response",
                        ("forwarded", "response"): "hub_forwarded_response"}.get((e.direction, k))
            elif e.sender == code and k == "request" and e.direction == "sent":
                name = "origin_sent"
            elif k == "response" and e.direction == "received" and e.receiver == code:
                name = "origin_received"
            elif k == "request" and e.direction == "received":
                name = "target_received"
            elif k == "response" and e.direction == "sent":
                name = "target_sent"
            else:
                name = None
            if name:
                traces.setdefault(e.trace_id, {})[name] = e.at_ns
        if code == hub:
            continue
        mine = {e.message_id for e in entries if e.direction == "sent" and e.sender == code and kind(e) == "request"}
        sent += len(mine)
        for e in entries:
            k = kind(e)
            if e.direction == "sent" and k == "request" and e.sender == code:
                sizes.setdefault(e.flow, Counter())["requests"] += e.size_bytes
            if e.direction == "received" and k == "response" and e.receiver == code:
                delivered += 1
                sizes.setdefault(e.flow, Counter())["responses"] += e.size_bytes
            elif e.direction == "sent" and k == "response":
                served[code] += 1
            elif e.direction == "rejected" and (e.message_id in mine or (k == "response" and e.receiver == code)):
                if e.outcome in ("unavailable", "interrupted"):
                    failed += 1
                else:
                    rejected += 1
    hists = {name: new_histogram() for name in HOPS}
    for events in traces.values():
        for name, (a, b) in HOPS.items():
            if a in events and b in events:
                hists[name].record_value(max(1, (events[b] - events[a]) // 1000))
    hops = {name: ({"count": h.get_total_count(), "p50": h.get_value_at_percentile(50) / 1000,
                    "p99": h.get_value_at_percentile(99) / 1000} if h.get_total_count() else {"count": 0})
            for name, h in hists.items()}
    return {"summary": {"sent": sent, "delivered": delivered, "rejected": rejected, "failed": failed,
                        "lost": sent - delivered - rejected - failed},
            "served": dict(served), "bytes": {flow: dict(c) for flow, c in sizes.items()}, "ledgers": ledgers,
            "hops": hops}


_CODES = (HUB, A, B, "")
_TYPES = (ECERT_REQUEST, ECERT_RESPONSE, IDENTITY_REQUEST, IDENTITY_RESPONSE, REGISTRATION, DIRECTORY, "",
          "application/vnd.other+json")
_rows = st.lists(
    st.builds(
        lambda at, d, t, s, r, m, tr, o, size, flow: row(at, d, t, s, r, message_id=m, trace_id=tr, outcome=o,
                                                          size=size, flow=flow),
        st.integers(0, 50), st.sampled_from(("sent", "received", "forwarded", "rejected")), st.sampled_from(_TYPES),
        st.sampled_from(_CODES), st.sampled_from(_CODES), st.sampled_from(("m1", "m2", "m3", "")),
        st.sampled_from(("t1", "t2", "t3", "")), st.sampled_from(("ok", "unavailable", "interrupted", "expired")),
        st.integers(0, 2000), st.sampled_from(("ecert.fetch", "identity.verify", "")),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hub_rows=_rows, a_rows=_rows, b_rows=_rows, tamper=st.booleans())
def test_reconcile_agrees_with_the_in_memory_rule(tmp_path_factory: Any, hub_rows: list[LedgerEntry],
                                                   a_rows: list[LedgerEntry], b_rows: list[LedgerEntry],
                                                   tamper: bool) -> None:
    data = tmp_path_factory.mktemp("ledgers")
    for code, entries in ((HUB, hub_rows), (A, a_rows), (B, b_rows)):
        write(data, code, entries)
    if tamper:  # B's ledger edited after the run: it must count for nothing
        with sqlite3.connect(data / f"{B}.sqlite") as conn:
            conn.execute("UPDATE ledger SET outcome = 'ok!' WHERE seq = (SELECT MAX(seq) FROM ledger)")
    codes = [HUB, A, B, "310000"]  # 310000 has no ledger
    rec = reconcile(data, codes)
    got = {"summary": rec.summary(), "served": dict(rec.served), "ledgers": rec.ledgers, "hops": rec.hops,
           "bytes": {flow: dict(c) for flow, c in rec.bytes.items()}}  # dicts: a zero count must match too
    assert got == _reference(data, codes)
