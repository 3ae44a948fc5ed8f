"""bench/suite.py's (c): measured turn about with a relay started again beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import suite
from bench.cluster import Cluster
from bench.measure import Plan


def test_c_is_measured_turn_about_with_a_relay_started_beside_it(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    started: list[tuple[str, Any]] = []
    measured: list[tuple[list[tuple[str, dict[str, Any]]], float | None]] = []
    envs: list[list[dict[str, str] | None]] = []

    class FakeLoadgen:
        def __init__(self, cfg: dict[str, Any], env: dict[str, str] | None) -> None:
            self.cfg = cfg
            self.env = env

        def quit(self) -> None:
            started.append(("quit", self.cfg["driver"]))

    class FakeCluster:
        def __init__(self, work: Path) -> None:
            self.work = work

        def __enter__(self) -> FakeCluster:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def start_relay(self, **kw: Any) -> None:
            started.append(("relay", kw["response_bytes"]))

        def start_tongban(self, **kw: Any) -> float:
            started.append(("tongban", (kw["options"].args() + kw["options"].node_args(), kw["groups"])))
            return 1.0

        def loadgen(self, cfg: dict[str, Any], env: dict[str, str] | None = None) -> FakeLoadgen:
            return FakeLoadgen(cfg, env)

        start_baseline = Cluster.start_baseline  # the real one, over the fakes above

    def fake_measure(loads: list[Any], plan: Plan, say: Any, rate: float | None = None) -> dict[str, Any]:
        measured.append(([(x.label, x.lg.cfg) for x in loads], rate))
        envs.append([x.lg.env for x in loads])
        return {"relay": {"saturation_per_s": 1800.0}, "fastest": {"saturation_per_s": 1500.0}}

    monkeypatch.setattr(suite, "Cluster", FakeCluster)
    monkeypatch.setattr(suite, "measure", fake_measure)
    monkeypatch.setattr(suite, "copy_world", lambda world, data, codes: data)
    options = {"default mode (re-measured)": {"throughput_per_s": 1000.0, "eligible": True},
               "uvloop in every node": {"throughput_per_s": 1100.0, "eligible": True, "one_province_process": False,
                                        "node_args": ["--uvloop"]}}
    r = suite._fastest(Plan.make(quick=True), tmp_path, tmp_path, tmp_path, {"pki": "p", "jobs": []},
                       {"request_bytes": 462, "response_bytes": 936}, 900.0, options, lambda _: None)
    assert r == {"saturation_per_s": 1500.0, "setting": "uvloop in every node", "node_args": ["--uvloop"],
                 "relay_alongside": {"saturation_per_s": 1800.0}}
    assert started[0] == ("relay", 936)
    assert started[1][0] == "tongban" and "--uvloop" in started[1][1][0]
    [(loads, rate)] = measured
    assert [label for label, _ in loads] == ["relay", "fastest"] and rate == 900.0
    assert loads[0][1]["driver"] == "relay" and loads[0][1]["request_bytes"] == 462
    assert loads[1][1]["driver"] == "exchange"
    # the relay's load generator on grpcio's default polling, the candidate's on tongban's
    assert envs == [[{"GRPC_EXPERIMENTS": ""}, {}]]
    assert sorted(x for kind, x in started if kind == "quit") == ["exchange", "relay"]
