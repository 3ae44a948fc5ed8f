"""The benchmark's quick mode still runs end to end and writes what architects read.

One real run of ``python -m bench --quick --no-world`` (about 90 s on 2 cores): the
baseline relay, tongban through the hub, the 33-node scaling point and the RSS. It
checks the JSON's shape and that the ratios are computed from the figures beside them,
never a speed: benchmarks are not timed assertions (bench/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tongban.runtime import LEGACY_POLLING

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_writes_the_table_and_latest_json(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-world", "--out", str(out), "--cache", str(tmp_path / "cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"wrote {out}" in run.stdout
    assert "targets:" in run.stdout and "(b) saturation throughput >= 0.75 x relay" in run.stdout

    doc = json.loads(out.read_text(encoding="utf-8"))
    env = doc["environment"]
    assert env["nproc"] >= 1 and env["cpu_model"]
    assert {"grpcio", "protobuf", "cryptography"} <= set(env["packages"])

    relay, b, c = doc["a_relay"], doc["b_tongban"], doc["c_tongban_fastest"]
    assert relay["saturation_per_s"] > 0 and b["saturation_per_s"] > 0
    for mode in (b, c):
        assert set(mode["ratio_vs_relay"]) >= {"throughput", "open_p50", "open_p99", "serial_p50"}
    assert b["ratio_vs_relay"]["throughput"] == pytest.approx(
        b["saturation_per_s"] / relay["saturation_per_s"], abs=0.001)
    assert b["ratio_vs_relay"]["serial_p50"] == pytest.approx(
        b["serial_p50_ms"] / relay["serial_p50_ms"], abs=0.001)
    assert b["open_achieved_per_s"] > 0  # the open-loop point ran and was answered

    diag = doc["relay_diagnostics"]  # the relays without protocol work, tongban's own streams among them
    assert set(diag) == {"plumbed", "streaming", "muxed", "sync", "tongban_polling"}
    # GRPC_EXPERIMENTS as each relay process ran with it: the baseline relay on tongban's gRPC
    # polling; tongban's streams as (b) runs them; tongban's plumbing as (a) runs
    assert [diag[k]["grpc_experiments"] for k in ("tongban_polling", "muxed", "plumbed", "sync")] == [
        LEGACY_POLLING, LEGACY_POLLING, "", ""]
    assert "(a) relay, tongban's gRPC polling" in run.stdout
    same = b["ratio_vs_relay_on_tongban_polling"]  # (b)'s ratios against that relay too
    assert same["throughput"] == pytest.approx(
        b["saturation_per_s"] / diag["tongban_polling"]["throughput_per_s"], abs=0.001)
    assert same["serial_p50"] == pytest.approx(b["serial_p50_ms"] / diag["tongban_polling"]["serial_p50_ms"], abs=0.001)
    assert (f"(b) against the relay on tongban's gRPC polling (a diagnostic, measured minutes later): "
            f"throughput {same['throughput']:.2f} x, one at a time {same['serial_p50']:.2f} x") in run.stdout
    assert diag["muxed"]["label"] == "relay over tongban's streams, no gate"
    assert diag["muxed"]["ratio_vs_relay"] == pytest.approx(
        diag["muxed"]["throughput_per_s"] / relay["saturation_per_s"], abs=0.001)
    assert diag["muxed"]["serial_p50_ms"] > 0 and diag["muxed"]["cpu_us_per_exchange"] > 0
    assert "(a) relay over tongban's streams" in run.stdout

    direct = doc["direct_exchange"]  # A -> B with no hub: the ledgers show the path it took
    assert direct["path"]["hub_rows"] == 0
    assert list(direct["path"]["b_received_from"]) == ["440000"] and direct["path"]["b_received_from"]["440000"] > 0
    assert direct["direct"]["errors"] == 0 and direct["direct"]["throughput_per_s"] > 0
    assert direct["rounds"] == 1  # one round in quick mode: its ratios are those of its figures
    assert direct["ratio_vs_relay"]["throughput"] == pytest.approx(
        direct["direct"]["throughput_per_s"] / direct["relay"]["throughput_per_s"], abs=0.001)
    assert direct["ratio_vs_bare"]["serial_p50"] == pytest.approx(
        direct["direct"]["serial_p50_ms"] / direct["bare"]["serial_p50_ms"], abs=0.001)
    assert "direct exchange, no hub on the path (diagnostic, not a (c) candidate;" in run.stdout

    rec = doc["b_window"]["reconciliation"]  # nothing the window path accepted was lost
    assert rec["sent"] > 0 and rec["lost"] == 0 and rec["chains_verified"] is True
    assert rec["delivered"] + rec["rejected"] + rec["failed"] == rec["sent"]
    assert "(b') from the ledgers: sent" in run.stdout

    paired = doc["paired"]  # one interleaved round in quick mode; its ratio is the one beside it
    (r,) = paired["rounds"]
    assert r["throughput_ratio"] == pytest.approx(r["tongban_per_s"] / r["relay_per_s"], abs=0.001)
    assert paired["throughput_ratio_median"] == r["throughput_ratio"]
    assert doc["targets"]["b_throughput_ratio"]["paired_median"] == r["throughput_ratio"]
    assert doc["targets"]["b_serial_p50_ratio"]["paired_median"] == r["serial_p50_ratio"]
    assert "paired, relay and tongban turn about (1 round;" in run.stdout

    scaling = doc["scaling"]
    assert scaling["ratio"] == pytest.approx(
        scaling["thirty_three_nodes_per_s"] / scaling["three_nodes_per_s"], abs=0.001)
    assert scaling["province_processes"] == 4 and scaling["rss_peak_total_mb"] > 0
    assert scaling["round_ratios"] == [scaling["ratio"]]  # quick: one round of the turn-about pair
    # context switches of every process of both set-ups, counted in the measured window
    switches = scaling["switches_per_call"]
    assert set(switches["thirty_three"]) == {"loadgen", "hub", "provinces-0", "provinces-1", "provinces-2",
                                             "provinces-3"}
    assert set(switches["three"]) == {"loadgen", "hub", "provinces-0", "provinces-1"}
    assert switches["thirty_three"]["hub"] > 0 and switches["three"]["hub"] > 0
    assert b["switches_per_exchange"] == round(sum(b["switches_per_call_at_saturation"].values()), 2)
    by_load = b["cpu_us_per_exchange_by_load"]  # every measured point of (b), the busiest first
    assert list(by_load) == ["saturation", "open_half_baseline", "open_half_own", "serial"]
    assert by_load["saturation"] == b["cpu_us_per_exchange"]
    assert "(b)  by load: at saturation" in run.stdout
    assert "context switches per exchange: 3 nodes" in run.stdout
    timeline = b["serial_timeline"]  # (b) one at a time, hop by hop, from the marks and the ledger rows
    assert 0 < timeline["exchanges"] <= timeline["of"]
    assert list(timeline["segments_us"]) == ["a_seal", "a_to_hub", "hub_admit", "hub_to_b", "b_answer", "b_to_hub",
                                             "hub_record", "hub_to_a", "a_check"]
    assert timeline["sum_of_medians_us"] == sum(timeline["segments_us"].values())
    assert timeline["signature_costs"]["per_exchange"] == {"signatures": 2, "verifications": 4}
    assert "(b) one at a time, where an exchange's time goes" in run.stdout

    targets = doc["targets"]
    assert set(targets) == {"b_throughput_ratio", "c_throughput_ratio", "b_serial_p50_ratio", "scaling_ratio",
                            "rss_33_nodes_mb", "world_1e-3_s"}
    assert targets["b_throughput_ratio"]["value"] == b["ratio_vs_relay"]["throughput"]
    assert targets["b_throughput_ratio"]["pass"] == (b["ratio_vs_relay"]["throughput"] >= 0.75)
    assert targets["world_1e-3_s"]["value"] is None  # --no-world: not measured, not invented

    co = scaling["cohosted"]  # the same 32 provinces in one process, one connection each way (--cohost)
    assert co["province_processes"] == 1 and co["rss_peak_total_mb"] > 0
    assert co["ratio"] == pytest.approx(co["thirty_three_nodes_per_s"] / co["three_nodes_per_s"], abs=0.001)
    assert co["round_ratios"] == [co["ratio"]]
    assert set(co["switches_per_call"]) == {"loadgen", "hub", "provinces-0"}
    assert "co-hosted (--cohost: 32 provinces in 1 process, one connection each way)" in run.stdout
    scaled = targets["scaling_ratio"]  # judged on the better layout, the other beside it
    assert scaled["layouts"] == {"4 processes, own connections": scaling["ratio"],
                                 "1 process, co-hosted (--cohost)": co["ratio"]}
    assert scaled["value"] == max(scaling["ratio"], co["ratio"])
    assert scaled["layout"] == max(scaled["layouts"], key=scaled["layouts"].__getitem__)
    assert targets["rss_33_nodes_mb"]["value"] == max(scaling["rss_peak_total_mb"], co["rss_peak_total_mb"])
