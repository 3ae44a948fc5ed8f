"""hub-placement: where should the national hub sit? Beijing, Xi'an, Wuhan or Guiyang?

The same population-weighted load (quickstart.toml: origins and targets weighted by
the 2020 census) runs four times in the star topology, with every province's link
delay derived from the great-circle distance between its capital and the hub's
city (base 1 ms + 1.5 x d / 200 km/ms). The table sets the measured latency of each
placement beside the population-weighted mean one-way delay to the hub.

    tongban run scenarios/hub-placement.py        # TONGBAN_SCRIPT_SECONDS=15 per run by default
"""

import json
import os
from pathlib import Path

from exchange import api
from exchange.geo import province
from exchange.planning import link_delays

HERE = Path(__file__).resolve().parent
SECONDS = float(os.environ.get("TONGBAN_SCRIPT_SECONDS", "15"))
PLACES = {"110000": "北京 Beijing", "610000": "西安 Xi'an", "420000": "武汉 Wuhan", "520000": "贵阳 Guiyang"}

base = api.set_value(api.load(HERE / "quickstart.toml"), "load.duration_s", SECONDS)
base = base.replace(warmup_s=min(2.0, SECONDS / 4))
rows = []
for code, city in PLACES.items():
    sc = api.set_value(base, "topology.hub_at", code)
    delays = link_delays(sc.nodes, code, base_ms=1.0, route_factor=1.5)
    weights = {c: province(c).population_2020 for c in sc.nodes}
    mean_delay = sum(delays[c] * weights[c] for c in sc.nodes) / sum(weights.values())
    report = api.run(sc)
    rows.append({"hub_at": code, "city": city, "weighted_one_way_ms": round(mean_delay, 2),
                 "p50_ms": report.p50_ms, "p99_ms": report.p99_ms, "ok": report.ok, "count": report.count,
                 "run_dir": str(report.run_dir)})

print(f"{'hub':<16} {'pop-weighted one-way ms':>24} {'p50 ms':>8} {'p99 ms':>8} {'ok/count':>10}")
for r in rows:
    print(f"{r['city']:<16} {r['weighted_one_way_ms']:>24.2f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
          f"{r['ok']:>5}/{r['count']}")
out = api.next_run_dir("hub-placement")
out.mkdir(parents=True, exist_ok=True)
(out / "hub-placement.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
