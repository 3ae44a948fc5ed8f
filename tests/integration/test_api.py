"""The Python API: load, modify, run, read; sweeps; reproducibility; scripts."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from exchange import api
from exchange.errors import ConfigError
from exchange.sweep import parse_axis, sweep
from tongban.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NODES = ("110000", "310000", "440000", "510000")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _small(seconds: float = 2.0) -> api.Scenario:  # type: ignore[name-defined]
    sc = api.load(ROOT / "scenarios" / "quickstart.toml")
    sc = sc.replace(nodes=NODES, links={c: sc.links[c] for c in NODES}, province_processes=1, warmup_s=0)
    return api.set_value(api.set_value(sc, "load.duration_s", seconds), "load.rate_per_s", 20)


def test_load_modify_run_and_read_the_report(tmp_path: Path, cache: Path) -> None:
    sc = api.set_value(_small(3), "topology.kind", "direct")
    assert sc.topology == "direct" and sum(f.rate_per_s for f in sc.flows) == pytest.approx(20)
    report = api.run(sc, out_dir=tmp_path / "run", cache_dir=cache)
    assert report.data == json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert report.count > 0 and report.ok == report.count
    assert report.reconciliation["lost"] == 0
    links = report.data["load"]["direct_links"]  # 4 provinces, each to its 3 peers, before the load
    assert (links["connected"], links["failed"]) == (12, []) and links["seconds"] > 0
    assert (f"Before the load, the provinces connected 12 direct links in {links['seconds']:g} s, as the hub "
            "connects to each province when it registers, so the load did not wait for those handshakes."
            ) in (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert report.data["scenario"]["topology"] == "direct" and report.data["scenario"]["seed"] == sc.seed
    assert report.data["scenario"]["sha256"] == sc.sha256 and report.data["tongban_version"]
    assert 0 < report.p50_ms <= report.p99_ms
    with pytest.raises(ConfigError, match="cannot set 'load.nope'"):
        api.set_value(sc, "load.nope", 1)


def test_a_sweep_of_five_points_writes_sweep_json_and_the_chart(tmp_path: Path, cache: Path) -> None:
    key, loads = parse_axis("load.rate_per_s=10..50:10")
    assert (key, loads) == ("load.rate_per_s", [10.0, 20.0, 30.0, 40.0, 50.0])
    result = sweep(_small(2), [(key, loads)], out_dir=tmp_path / "sweep", budget_ms=1000, cache_dir=cache)
    doc = json.loads((tmp_path / "sweep" / "sweep.json").read_text(encoding="utf-8"))
    assert [p["offered_per_s"] for p in doc["points"]] == loads
    assert all(p["lost"] == 0 and p["throughput_per_s"] > 0 for p in doc["points"])
    assert doc["knees"] == {"all": 50.0} == result.knees()  # tiny loads: every point is within budget
    assert doc["knee_bounds"] == {"all": "above_range"}
    assert result.describe_knee("all") == "at least 50 req/s (no load tried broke the budget)"
    png = (tmp_path / "sweep" / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def _world_digest(path: Path) -> str:
    h = hashlib.sha256()
    for db in sorted(path.glob("*.sqlite")):
        conn = sqlite3.connect(db)
        try:
            for table in ("persons", "businesses", "ecerts"):
                for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid"):
                    h.update(repr(row).encode())
        finally:
            conn.close()
    return h.hexdigest()


def test_same_file_and_seed_give_the_same_world_and_arrival_schedule(tmp_path: Path) -> None:
    from exchange.cache import ensure_world

    sc = _small(5)
    first = api.plan(sc, cache_dir=tmp_path / "a")
    second = api.plan(sc, cache_dir=tmp_path / "b")   # a world generated afresh
    assert first == second and len(first) > 50
    assert _world_digest(ensure_world(tmp_path / "a", scale=sc.scale, seed=sc.seed)) == \
        _world_digest(ensure_world(tmp_path / "b", scale=sc.scale, seed=sc.seed))
    other = api.plan(api.set_value(sc, "world.seed", sc.seed + 1), cache_dir=tmp_path / "a")
    assert other != first
    # what the runner writes for three load generators: the same requests, dealt round-robin
    from exchange.plan import write_plan_requests

    files = [tmp_path / f"plan-{i}.requests.jsonl" for i in range(3)]
    assert write_plan_requests(sc, ensure_world(tmp_path / "a", scale=sc.scale, seed=sc.seed), files) == len(first)
    dealt = [[json.loads(line) for line in f.read_text(encoding="utf-8").split("\n")[:-1]] for f in files]
    assert dealt == [first[i::3] for i in range(3)]


def test_tongban_run_runs_a_python_scenario_script(tmp_path: Path, cache: Path) -> None:
    script = tmp_path / "tiny.py"
    script.write_text(
        "from pathlib import Path\nfrom exchange import api\n"
        f"sc = api.load({str(ROOT / 'scenarios' / 'quickstart.toml')!r})\n"
        f"sc = sc.replace(nodes={NODES!r}, links={{c: sc.links[c] for c in {NODES!r}}}, province_processes=1)\n"
        "sc = api.set_value(api.set_value(sc, 'load.duration_s', 2), 'load.rate_per_s', 10)\n"
        f"api.run(sc, cache_dir=Path({str(cache)!r}))\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(script), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["reconciliation"]["lost"] == 0 and report["flows"]
