"""`tongban sweep --set`: the values an axis gives, and every bad value refused before any point runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exchange import api
from exchange.errors import ConfigError
from exchange.scenario import Scenario
from exchange.sweep import build_points, parse_axis, sweep

SCENARIO = """\
[topology]
nodes = ["110000", "120000", "440000"]
province_processes = 1

[load]
duration_s = 5

[load.flows."identity.verify"]
rate_per_s = 10

[load.flows."ecert.fetch"]
rate_per_s = 3

[[load.ramps]]
at_s = 3
duration_s = 1
factor = 2.0
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


@pytest.fixture
def base(scenario_file: Path) -> Scenario:
    return api.load(scenario_file)


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> list[Scenario]:
    """Points that would have run (none must): api.run records them instead of running."""
    ran: list[Scenario] = []

    def run(sc: Scenario, **_: Any) -> api.Report:
        ran.append(sc)
        raise AssertionError("a sweep point ran")

    monkeypatch.setattr(api, "run", run)
    return ran


@pytest.mark.parametrize(("spec", "values"), [
    ("load.rate_per_s=20..50:20", [20.0, 40.0]),            # STOP is a bound, never passed
    ("load.rate_per_s=20..55:20", [20.0, 40.0]),
    ("load.rate_per_s=20..60:20", [20.0, 40.0, 60.0]),      # ... and included when a step lands on it
    ("load.rate_per_s=0.1..0.3:0.1", [0.1, 0.2, 0.3]),     # float steps: no 0.30000000000000004, no 4th value
    ("load.rate_per_s=1e2..2e2:50", [100.0, 150.0, 200.0]),
    ("load.rate_per_s=10,20.5", [10.0, 20.5]),
    ("topology.delay=0..1:0.5", [0.0, 0.5, 1.0]),
    ("world.seed=1..3:1", [1, 2, 3]),
    ("world.seed=7, 8", [7, 8]),
    ("topology.kind=star,direct", ["star", "direct"]),
])
def test_an_axis_gives_start_then_each_step_up_to_stop(spec: str, values: list[Any]) -> None:
    key, got = parse_axis(spec)
    assert (key, got) == (spec.partition("=")[0], values)
    assert [type(v) for v in got] == [type(v) for v in values]  # world.seed values are ints


@pytest.mark.parametrize(("spec", "message"), [
    ("load.rate_per_s=abc", "--set load.rate_per_s: expected a number or START..STOP:STEP, found 'abc'"),
    ("load.rate_per_s=10,abc", "--set load.rate_per_s: expected a number or START..STOP:STEP, found 'abc'"),
    ("load.rate_per_s=20..50", "--set load.rate_per_s: expected a number or START..STOP:STEP, found '20..50'"),
    ("load.rate_per_s=", "--set load.rate_per_s: expected a number or START..STOP:STEP, found nothing"),
    ("topology.kind=", "--set topology.kind: expected one of: star, regional, direct; found nothing"),
    ("load.rate_per_s=-20..20:20",
     "--set load.rate_per_s: expected a number greater than 0, found -20 (from -20..20:20)"),
    ("load.rate_per_s=20..50:0",
     "--set load.rate_per_s: expected START..STOP:STEP with STEP greater than 0, found '20..50:0'"),
    ("load.rate_per_s=50..20:10",
     "--set load.rate_per_s: expected START..STOP:STEP with START at most STOP, found '50..20:10'"),
    ("load.rate_per_s=1..1e6:1",
     "--set load.rate_per_s: expected at most 1000 values, found '1..1e6:1' (1,000,000 values)"),
    ("world.seed=1.5", "--set world.seed: expected an integer, found '1.5'"),
    ("world.seed=1..2:0.5", "--set world.seed: expected an integer, found 1.5 (from 1..2:0.5)"),
    ("world.seed=abc", "--set world.seed: expected an integer or START..STOP:STEP, found 'abc'"),
    ("topology.delay=-5",
     "--set topology.delay: expected a one-way delay in ms (a number at least 0), found '-5'"),
    ("load.duration_s=0", "--set load.duration_s: expected a number greater than 0 and at most 86400, found '0'"),
    ("topology.kind=star,bogus", "--set topology.kind: expected one of: star, regional, direct; found 'bogus'"),
    ("topology.hub_at=999999", "--set topology.hub_at: expected a province code, one of the 32 node codes "
                               "(e.g. 110000, 440000), found '999999'"),
])
def test_a_bad_axis_is_refused_naming_the_axis_not_a_derived_key(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_axis(spec)
    assert str(e.value) == message


@pytest.mark.parametrize(("key", "value", "message"), [
    ("topology.delay", -5, "topology.delay: expected a one-way delay in ms (a number at least 0), found -5"),
    ("world.seed", 1.5, "world.seed: expected an integer, found 1.5"),
    ("world.seed", True, "world.seed: expected an integer, found True"),
    ("load.rate_per_s", "abc", "load.rate_per_s: expected a number greater than 0, found 'abc'"),
    ("topology.kind", "bogus", "topology.kind: expected one of: star, regional, direct; found 'bogus'"),
])
def test_set_value_refuses_what_a_scenario_file_would(base: Scenario, key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        api.set_value(base, key, value)
    assert str(e.value) == message


def test_set_value_takes_numbers_as_strings_and_integral_seeds(base: Scenario) -> None:
    assert api.set_value(base, "world.seed", 7.0).seed == 7
    links = api.set_value(base, "topology.delay", "0").links
    assert {c: link.delay_ms for c, link in links.items()} == {"110000": 0.0, "120000": 0.0, "440000": 0.0}


def test_every_point_is_built_before_any_runs(base: Scenario, tmp_path: Path, no_runs: list[Scenario]) -> None:
    points = build_points(base, [("load.rate_per_s", [26.0, 52.0]), ("topology.kind", ["star", "direct"])])
    assert [(values, sc.topology, [f.rate_per_s for f in sc.flows]) for values, sc in points] == [
        ({"load.rate_per_s": 26.0, "topology.kind": "star"}, "star", [20.0, 6.0]),
        ({"load.rate_per_s": 26.0, "topology.kind": "direct"}, "direct", [20.0, 6.0]),
        ({"load.rate_per_s": 52.0, "topology.kind": "star"}, "star", [40.0, 12.0]),
        ({"load.rate_per_s": 52.0, "topology.kind": "direct"}, "direct", [40.0, 12.0]),
    ]
    # the second duration is too short for the file's ramp at 3 s: refused before star/5 s runs
    with pytest.raises(ConfigError) as e:
        sweep(base, [("topology.kind", ["star", "direct"]), ("load.duration_s", [5, 2])], out_dir=tmp_path / "sw")
    assert str(e.value) == (f"--set load.duration_s=2: {base.path}: load.ramps[0].at_s: expected a number at least "
                            "0 and less than load.duration_s (2), found 3.0")
    assert no_runs == [] and not (tmp_path / "sw").exists()


@pytest.mark.parametrize(("axes", "message"), [
    ([("load.rate_per_s", [])], "--set load.rate_per_s: expected a number or START..STOP:STEP, found nothing"),
    ([("load.rate_per_s", [10]), ("load.rate_per_s", [20])],
     "--set load.rate_per_s: expected each KEY once, found it 2 times"),
    ([("topology.delay", [1, -5])],
     "--set topology.delay: expected a one-way delay in ms (a number at least 0), found -5"),
])
def test_a_sweep_from_python_checks_its_axes_too(base: Scenario, tmp_path: Path, no_runs: list[Scenario],
                                                 axes: list[tuple[str, list[Any]]], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        sweep(base, axes, out_dir=tmp_path / "sw")
    assert str(e.value) == message
    assert no_runs == [] and not (tmp_path / "sw").exists()


def test_the_cli_refuses_a_bad_combination_before_any_point_runs(
        scenario_file: Path, tmp_path: Path, no_runs: list[Scenario], capsys: pytest.CaptureFixture[str]) -> None:
    from tongban.cli import main

    out = tmp_path / "sweep"
    assert main(["sweep", str(scenario_file), "--set", "topology.kind=star,direct", "--set",
                 "load.duration_s=5,2", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tongban: error: --set load.duration_s=2: {scenario_file}: load.ramps[0].at_s: expected a number at least "
        "0 and less than load.duration_s (2), found 3.0")
    assert no_runs == [] and not (out / "sweep.json").exists()


def test_a_script_reading_a_run_that_is_not_a_report_gets_one_line(tmp_path: Path) -> None:
    from exchange.api import Report

    with pytest.raises(ConfigError) as e:
        Report.load(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'report.json'}: expected a report.json written by a tongban run: ")
    (tmp_path / "report.json").write_text('{"schema_version": 99}', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        Report.load(tmp_path)
    assert str(e.value) == (f"{tmp_path / 'report.json'}: expected a tongban report.json (an object with "
                            "schema_version 1), found schema_version 99")
