"""The report renderer: report.json → report.md, report.html, charts/*.png."""

from __future__ import annotations

import copy
import json
import math
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exchange.errors import ConfigError
from exchange.geo import PROVINCES
from exchange.report import render_report
from exchange.report.charts import Labels, draw_charts, find_cjk_font
from exchange.report.render import build_blocks, to_markdown

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_NAMES = ("latency_cdf.png", "timeseries.png", "matrix.png", "province_p99.png")


def _percentile(sorted_vals: list[float], q: float) -> float:
    return sorted_vals[min(len(sorted_vals) - 1, math.ceil(q * len(sorted_vals)) - 1)]


def _flow(rng: random.Random, n_ok: int, median_ms: float, failed: dict[str, int],
          results: dict[str, int], duration_s: float) -> dict[str, Any]:
    lat = sorted(round(rng.lognormvariate(math.log(median_ms), 0.45), 3) for _ in range(n_ok))
    cdf = [[lat[min(n_ok - 1, int(f * n_ok))], round(f, 4)] for f in
           [i / 100 for i in range(100)] + [0.995, 0.999]] + [[lat[-1], 1.0]]
    return {
        "count": n_ok + sum(failed.values()), "ok": n_ok, "failed_by_reason": failed, "results": results,
        "throughput_per_s": round(n_ok / duration_s, 2),
        "latency_ms": {"p50": _percentile(lat, 0.5), "p90": _percentile(lat, 0.9),
                       "p99": _percentile(lat, 0.99), "p999": _percentile(lat, 0.999), "max": lat[-1]},
        "cdf": cdf,
    }


def _sample_report() -> dict[str, Any]:
    """A realistic report: 32 provinces, 2 flows, 60 s of time series, 2 faults."""
    rng = random.Random(2021)
    codes = [p.code for p in PROVINCES]
    weights = [p.population_2020 for p in PROVINCES]
    duration = 60.0
    counts = [[0] * len(codes) for _ in codes]
    for _ in range(6000):
        o, t = rng.choices(range(len(codes)), weights, k=2)
        counts[o][t] += 1
    provinces = {}
    for i, p in enumerate(PROVINCES):
        sent = sum(counts[i])
        slow = 3.0 if p.code in ("540000", "650000", "660000") else 1.0
        provinces[p.code] = {"name": p.name_zh, "pinyin": p.pinyin, "sent": sent,
                             "ok": sent - (sent // 40 if p.code == "440000" else 0),
                             "p50_ms": round(5.0 * slow + i * 0.05, 2),
                             "p99_ms": round(13.0 * slow + i * 0.3, 2),
                             "served": sum(row[i] for row in counts)}
    t_s = list(range(60))
    in_fault = [5 <= t < 15 for t in t_s]
    ok = [95 + rng.randint(-8, 8) - (25 if f else 0) for t, f in zip(t_s, in_fault, strict=True)]
    failed = [rng.randint(15, 25) if f else rng.randint(0, 1) for f in in_fault]
    p99 = [round(14 + rng.random() * 3 + (60 if 30 <= t < 40 else 0), 2) for t in t_s]
    p99[59] = None  # a second with no completion: null in JSON
    return {
        "schema_version": 1,
        "scenario": {"name": "quickstart", "description": "All 33 nodes, population-weighted load, "
                     "广东 down for 10 s and a slow link to 西藏.", "file": "scenarios/quickstart.toml",
                     "sha256": "9f" * 32, "seed": 2021, "scale": 1e-5, "topology": "star",
                     "nodes": ["000000", *codes], "duration_s": 60, "warmup_s": 2},
        "tongban_version": "0.1.0",
        "started_at": "2026-11-28T01:00:00Z", "duration_s": 60.03, "interrupted": False,
        "flows": {
            "identity.verify": _flow(rng, 3991, 5.4, {"unavailable": 230, "deadline_exceeded": 12},
                                     {"match": 3950, "no_match": 41}, duration),
            "ecert.fetch": _flow(rng, 1700, 8.2, {"unavailable": 60}, {"valid": 1690, "revoked": 10},
                                 duration),
        },
        "matrix": {"origins": codes, "targets": codes, "counts": counts},
        "provinces": provinces,
        "hops": {"origin_to_hub_ms": {"p50": 1.1, "p99": 4.2}, "hub_ms": {"p50": 0.6, "p99": 2.0},
                 "hub_to_target_ms": {"p50": 1.3, "p99": 5.1}, "target_ms": {"p50": 0.9, "p99": 3.3}},
        "timeseries": {"t_s": t_s, "ok": ok, "failed": failed, "p99_ms": p99},
        "faults": [
            {"kind": "node_down", "nodes": ["440000"], "at_s": 5, "end_s": 15, "detail": "process killed"},
            {"kind": "link_slow", "nodes": ["540000"], "at_s": 30, "end_s": 40, "detail": "+50 ms one-way"},
        ],
        "reconciliation": {"sent": 5993, "delivered": 5691, "rejected": 0, "failed": 302, "lost": 0},
        "ledgers": {c: {"rows": 400 + i, "verified": True} for i, c in enumerate(["000000", *codes])},
        "report": {"markdown": True, "html": True, "charts": True},
    }


def _nearly_empty() -> dict[str, Any]:
    return {"schema_version": 1, "scenario": {"name": "quickstart", "duration_s": 60},
            "duration_s": 0.8, "interrupted": True, "flows": {},
            "timeseries": {"t_s": [], "ok": [], "failed": [], "p99_ms": []}, "faults": []}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    run = tmp_path_factory.mktemp("run")
    (run / "report.json").write_text(json.dumps(_sample_report(), ensure_ascii=False), encoding="utf-8")
    return run, render_report(run)


def test_every_file_is_written(rendered: tuple[Path, list[Path]]) -> None:
    run, written = rendered
    expected = {run / "report.md", run / "report.html", *(run / "charts" / n for n in CHART_NAMES)}
    assert set(written) == expected
    assert all(p.is_file() and p.stat().st_size > 0 for p in expected)


@pytest.mark.parametrize("name", CHART_NAMES)
def test_charts_are_real_pngs(rendered: tuple[Path, list[Path]], name: str) -> None:
    from matplotlib.image import imread

    data = (rendered[0] / "charts" / name).read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    img = imread(rendered[0] / "charts" / name)
    assert img.shape[0] >= 300 and img.shape[1] >= 600
    assert img.std() > 0.05  # not a blank canvas


def test_html_is_self_contained(rendered: tuple[Path, list[Path]]) -> None:
    text = (rendered[0] / "report.html").read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!data:)[a-z]""", text)
    assert text.count('src="data:image/png;base64,') == 4
    assert "广东省" in text and "<style>" in text


def test_markdown_has_the_exact_flow_row(rendered: tuple[Path, list[Path]]) -> None:
    md = (rendered[0] / "report.md").read_text(encoding="utf-8")
    f = _sample_report()["flows"]["ecert.fetch"]
    lat = f["latency_ms"]
    row = (f"| `ecert.fetch` | 1,760 | 1,700 | 60 | unavailable 60 | valid 1,690, revoked 10 | 28.3 "
           f"| {lat['p50']:.2f} | {lat['p90']:.1f} | {lat['p99']:.1f} | {lat['p999']:.1f} | {lat['max']:.1f} |")
    assert row in md.splitlines()
    assert "| `identity.verify` | 4,233 | 3,991 | 242 | unavailable 230, deadline_exceeded 12 |" in md
    assert "sent **5,993** · delivered **5,691** · rejected **0** · failed **302** · lost **0**" in md
    assert "every request is accounted for" in md
    for n in CHART_NAMES:
        assert f"(charts/{n})" in md
    assert "| 1 | `node_down` | 440000 广东省 | 5 s | 15 s | process killed |" in md
    assert "INTERRUPTED" not in md


def test_province_table_is_top_ten_by_volume(rendered: tuple[Path, list[Path]]) -> None:
    md = (rendered[0] / "report.md").read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if re.match(r"\| \d{6} \| ", line)]
    assert len(rows) == 10
    sent = [int(r.split(" | ")[2].replace(",", "")) for r in rows]
    assert sent == sorted(sent, reverse=True)
    assert rows[0].startswith("| 440000 | 广东省 Guangdong |")


def test_rendering_is_deterministic(tmp_path: Path, rendered: tuple[Path, list[Path]]) -> None:
    render_report(tmp_path, _sample_report())
    for name in ("report.md", "report.html", *(f"charts/{n}" for n in CHART_NAMES)):
        assert (tmp_path / name).read_bytes() == (rendered[0] / name).read_bytes(), name


def test_interrupted_nearly_empty_report_renders(tmp_path: Path) -> None:
    written = render_report(tmp_path, _nearly_empty())
    assert set(written) == {tmp_path / "report.md", tmp_path / "report.html"}
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert md.splitlines()[2].startswith("> **INTERRUPTED**")
    assert "0.8 s of the planned 60 s" in md
    assert "No request completed in this run." in md
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<p class="alert"><strong>INTERRUPTED</strong>' in html


def test_partial_report_draws_what_it_has(tmp_path: Path) -> None:
    report = _sample_report()
    report["interrupted"] = True
    for key in ("hops", "provinces", "matrix", "ledgers"):
        del report[key]
    report["faults"][1]["end_s"] = None  # still active when interrupted, and after the last second
    report["flows"]["ecert.fetch"].pop("cdf")  # CDF rebuilt from the percentiles
    report["timeseries"] = {k: v[:12] for k, v in report["timeseries"].items()}
    written = render_report(tmp_path, report)
    assert sorted(p.name for p in written if p.suffix == ".png") == ["latency_cdf.png", "timeseries.png"]
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| 2 | `link_slow` | 540000 西藏自治区 | 30 s | end of run | +50 ms one-way |" in md
    assert "Provinces" not in md
    assert "Not drawn, no data in this report: Request volume, origin × target; p99 latency per origin " \
           "province." in md
    # A fault starting after the data ends must not widen the chart (it once did, by its label).
    from matplotlib.image import imread

    full = draw_charts(_sample_report(), cjk=None)[1].png
    (tmp_path / "full.png").write_bytes(full)
    (h, w), (full_h, full_w) = (imread(p).shape[:2] for p in (tmp_path / "charts" / "timeseries.png",
                                                                tmp_path / "full.png"))
    assert abs(w - full_w) < 0.03 * full_w and abs(h - full_h) < 0.03 * full_h
    assert (tmp_path / "report.html").read_text(encoding="utf-8").count("data:image/png;base64,") == 2


@pytest.mark.parametrize("off", ["markdown", "html", "charts"])
def test_report_settings_skip_files(tmp_path: Path, off: str) -> None:
    report = _sample_report()
    report["report"][off] = False
    written = {p.relative_to(tmp_path).as_posix() for p in render_report(tmp_path, report)}
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert written == files
    assert ("report.md" in files) == (off != "markdown")
    assert ("report.html" in files) == (off != "html")
    assert ("charts/matrix.png" in files) == (off != "charts")
    if off == "charts":
        assert "data:image" not in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_lost_requests_and_unverified_ledgers_are_flagged() -> None:
    report = _sample_report()
    report["reconciliation"].update(delivered=5688, lost=3)
    report["ledgers"]["440000"]["verified"] = False
    md = to_markdown(build_blocks(report, []))
    assert "> sent **5,993** · delivered **5,688** · rejected **0** · failed **302** · lost **3**: " \
           "**3 requests lost.**" in md
    assert "**Not verified: 440000 广东省.**" in md


def test_rerender_reads_report_json_and_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no report.json here"):
        render_report(tmp_path)
    (tmp_path / "report.json").write_text('{"schema_version": 2}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"report\.json: expected a tongban report\.json \(an object with "
                                          r"schema_version 1\), found schema_version 2$"):
        render_report(tmp_path)
    bad = _nearly_empty() | {"report": {"html": "yes"}}
    with pytest.raises(ConfigError, match=r"report\.html must be true or false, found 'yes'"):
        render_report(tmp_path, bad)


def test_pinyin_labels_without_a_cjk_font() -> None:
    labels = Labels(cjk=None)
    assert labels.province("440000") == "Guangdong"
    assert labels.province("150000") == "Nei Mongol"
    assert labels.province("660000") == "Bingtuan (XPCC)"
    assert labels.province("000000") == "hub"
    assert labels.safe("广东 down, cost $5") == "down, cost \\$5"


def test_charts_without_a_cjk_font_draw_without_glyph_warnings() -> None:
    # filterwarnings=error turns any "Glyph … missing" UserWarning into a failure here.
    report = _sample_report()
    report["faults"][0]["kind"] = "停机"  # unknown kind with CJK text: dropped, not tofu
    charts = draw_charts(report, cjk=None)
    assert [c.name for c in charts] == list(CHART_NAMES)
    assert charts != draw_charts(copy.deepcopy(_sample_report()), cjk=None)


@pytest.mark.skipif(find_cjk_font() is None, reason="no CJK font installed")
def test_chinese_labels_with_a_cjk_font() -> None:
    labels = Labels(cjk=find_cjk_font())
    assert labels.province("440000") == "广东"
    assert labels.province("000000") == "总枢纽"
    pinyin = {c.name: c.png for c in draw_charts(_sample_report(), cjk=None)}
    chinese = {c.name: c.png for c in draw_charts(_sample_report())}
    assert pinyin["matrix.png"] != chinese["matrix.png"]


TOOL = Path(__file__).resolve().parents[2] / "tools" / "screenshot_report.py"


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=180,
                          check=False)


def test_screenshot_tool_says_how_to_install_chromium(rendered: tuple[Path, list[Path]], tmp_path: Path) -> None:
    proc = _tool(str(rendered[0]), "--out", str(tmp_path / "s.png"), "--chromium", str(tmp_path / "no-chromium"))
    assert proc.returncode == 2
    expected = (f"screenshot_report: error: chromium not found at {tmp_path}/no-chromium; "
                "install it with: apt-get install -y chromium")
    assert proc.stderr.splitlines() == [expected]
    proc = _tool(str(tmp_path), "--out", str(tmp_path / "s.png"))
    assert proc.returncode == 2 and "no report at" in proc.stderr and not (tmp_path / "s.png").exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install -y chromium)")
def test_screenshot_in_headless_chromium(rendered: tuple[Path, list[Path]], tmp_path: Path) -> None:
    from matplotlib.image import imread

    out = tmp_path / "shot.png"
    proc = _tool(str(rendered[0] / "report.html"), "--out", str(out), "--size", "1000,1200")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    img = imread(out)
    assert img.shape[:2] == (1200, 1000)
    assert img.std() > 0.05  # the page rendered, not a blank window


def test_direct_links_connected_before_the_load_are_reported() -> None:
    report = _sample_report()
    assert "direct link" not in to_markdown(build_blocks(report, []))  # a star run connects none
    report["load"] = {"direct_links": {"connected": 0, "failed": [], "seconds": 0.01}}
    assert "direct link" not in to_markdown(build_blocks(report, []))  # regional, no pair inside a region
    report["load"] = {"direct_links": {"connected": 1, "failed": [], "seconds": 0.05}}
    assert ("_Before the load, the provinces connected 1 direct link in 0.05 s, as the hub connects to each "
            "province when it registers, so the load did not wait for those handshakes._") in to_markdown(
        build_blocks(report, []))
    report["load"] = {"direct_links": {"connected": 990, "failed": ["540000", "650000"], "seconds": 2.25}}
    assert ("> Before the load, the provinces connected 990 direct links in 2.25 s, as the hub connects to each "
            "province when it registers, so the load did not wait for those handshakes. **2 peers did not answer "
            "in time** (540000 西藏自治区, 650000 新疆维吾尔自治区): requests to them connected on first use."
            ) in to_markdown(build_blocks(report, []))
    report["load"] = {"direct_links": {"connected": 0, "failed": [], "seconds": 120.5,
                                       "error": "provinces 110000, 120000 connecting their direct links not done "
                                                "after 120 s (see logs)"}}
    assert ("connected 0 direct links in 120.5 s, as the hub connects to each province when it registers, so the "
            "load did not wait for those handshakes. **Connecting the links failed**: provinces 110000, 120000 "
            "connecting their direct links not done after 120 s (see logs). The links not connected then connected "
            "on first use.") in to_markdown(build_blocks(report, []))
