"""report.json's ``faults``: a fault's end is the time it was lifted, null while still active."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exchange.faults import FaultTimeline
from exchange.scenario import Fault, Scenario


def _timeline(*faults: Fault) -> tuple[FaultTimeline, list[tuple[str, dict[str, Any]]]]:
    sent: list[tuple[str, dict[str, Any]]] = []
    s = Scenario(name="x", path=Path("x.toml"), sha256="", duration_s=60.0, faults=faults)
    owner: dict[str, Any] = {"000000": "hub-process", "110000": "p0", "440000": "p1"}
    return FaultTimeline(s, owner=owner, send=lambda p, msg: sent.append((p, msg))), sent


def test_a_fault_lifted_during_the_run_reports_its_end() -> None:
    t, sent = _timeline(Fault(kind="hub_down", at_s=2.0, duration_s=3.0, nodes=()))
    t.advance(1.0)
    t.advance(6.0)
    assert sent == [("hub-process", {"op": "down", "codes": ["000000"]}),
                    ("hub-process", {"op": "up", "codes": ["000000"]})]
    [f] = t.report()
    assert (f["kind"], f["at_s"], f["end_s"], f["applied"]) == ("hub_down", 2.0, 5.0, True)


def test_a_fault_still_active_when_the_run_ends_has_no_end() -> None:
    # hub-outage.toml cut short by --duration 22: down from 20 s, due back at 40 s
    t, sent = _timeline(Fault(kind="hub_down", at_s=20.0, duration_s=20.0, nodes=()))
    t.advance(22.0)
    assert sent == [("hub-process", {"op": "down", "codes": ["000000"]})]
    [f] = t.report()
    assert (f["at_s"], f["end_s"], f["applied"]) == (20.0, None, True)


def test_a_fault_that_never_started_is_reported_unapplied_with_no_end() -> None:
    t, _ = _timeline(Fault(kind="node_down", at_s=30.0, duration_s=5.0, nodes=("440000",)))
    t.advance(10.0)
    [f] = t.report()
    assert (f["nodes"], f["end_s"], f["applied"]) == (["440000"], None, False)


def test_a_revocation_keeps_its_window_once_the_run_passed_it() -> None:
    revoked = Fault(kind="key_revoked", at_s=2.0, duration_s=3.0, nodes=("440000",))
    permanent = Fault(kind="key_revoked", at_s=2.0, duration_s=None, nodes=("110000",))
    t, _ = _timeline(revoked, permanent)
    t.advance(4.0)
    assert [f["end_s"] for f in t.report()] == [None, None]  # 4 s: the window is still open
    t.advance(6.0)
    assert [f["end_s"] for f in t.report()] == [5.0, None]
