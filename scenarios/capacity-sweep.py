"""capacity-sweep: how much offered load does each topology carry before p99 breaks the budget?

Star (everything through the hub), regional (京津冀 / 长三角 / 粤港澳 / 川渝 exchange
directly inside their region) and direct (X-Road: peer to peer, the hub only signs
the directory) are swept over the same offered loads, with the same world, flows
and distance-derived link delays (quickstart.toml). The knee of each curve is the
highest offered load whose p99 stays under the budget with nothing failed or lost.

    tongban run scenarios/capacity-sweep.py        # TONGBAN_SCRIPT_SECONDS=15 per point by default

On a laptop the budget is scaled down from the 3 s a provincial client waits for a
national certificate call to 500 ms: the simulator's own cost is what saturates.
"""

import os
from pathlib import Path

from exchange import api
from exchange.sweep import sweep

HERE = Path(__file__).resolve().parent
SECONDS = float(os.environ.get("TONGBAN_SCRIPT_SECONDS", "15"))
#: Offered loads (requests/s): on the project's 2-core machine the knees fell between 350 and 700,
#: moving by a third with the hour (bench/results/profile-notes.md).
LOADS = [float(x) for x in os.environ.get("TONGBAN_SWEEP_LOADS", "200,350,500,650,800").split(",")]

base = api.set_value(api.load(HERE / "quickstart.toml"), "load.duration_s", SECONDS)
base = base.replace(warmup_s=min(2.0, SECONDS / 4))
result = sweep(base, [("load.rate_per_s", LOADS), ("topology.kind", ["star", "regional", "direct"])],
               out_dir=api.next_run_dir("capacity-sweep"), budget_ms=500)
for label in result.knees():
    print(f"{label}: knee {result.describe_knee(label)} offered (p99 budget {result.budget_ms:g} ms)")
