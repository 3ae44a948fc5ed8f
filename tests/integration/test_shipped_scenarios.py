"""Every shipped scenario runs to a complete report (at a reduced duration)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from exchange.progress import LiveProgress
from exchange.runner import run_scenario
from exchange.scenario import load_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.toml"))
SECONDS = 4.0


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _shortened(path: Path):  # type: ignore[no-untyped-def]
    s = load_scenario(path)
    k = SECONDS / s.duration_s
    faults = tuple(dataclasses.replace(f, at_s=f.at_s * k,
                                       duration_s=None if f.duration_s is None else f.duration_s * k)
                   for f in s.faults)
    ramps = tuple(dataclasses.replace(r, at_s=r.at_s * k, duration_s=r.duration_s * k) for r in s.ramps)
    return s.replace(duration_s=SECONDS, warmup_s=s.warmup_s * k, faults=faults, ramps=ramps)


def test_every_scenario_is_shipped() -> None:
    assert {p.stem for p in SCENARIOS} >= {"quickstart", "baseline-2020", "healthcode-surge", "hub-outage",
                                          "slow-province", "key-compromise", "regional-clusters"}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_runs_to_a_complete_report(path: Path, tmp_path: Path, cache: Path) -> None:
    scenario = _shortened(path)
    out = tmp_path / scenario.name
    run_scenario(scenario, out_dir=out, cache_dir=cache, progress=LiveProgress(total_s=1, enabled=False))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {"report.md", "report.html"} <= {p.name for p in out.iterdir()}
    assert len(list((out / "charts").glob("*.png"))) == 4
    assert set(report["flows"]) == {f.flow for f in scenario.flows}
    assert all(f["count"] > 0 for f in report["flows"].values())
    rec = report["reconciliation"]
    assert rec["lost"] == 0 and rec["sent"] == rec["delivered"] + rec["rejected"] + rec["failed"] > 0
    assert all(v["verified"] for v in report["ledgers"].values())
    assert [f["kind"] for f in report["faults"]] == [f.kind for f in scenario.faults]
    failed = sum(sum(f["failed_by_reason"].values()) for f in report["flows"].values())
    if not scenario.faults:
        assert failed == 0, report["flows"]
    if scenario.name == "key-compromise":
        reasons = {r for f in report["flows"].values() for r in f["failed_by_reason"]}
        assert reasons == {"revoked_key"}, reasons
    if scenario.name == "hub-outage-direct":  # the hub is not on any exchange path
        assert failed == 0, report["flows"]
