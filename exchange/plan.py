"""The arrival schedule of a run: who asks what of whom, and when.

Deterministic for a scenario and seed: the same file and seed give the same
requests in the same order at the same offsets (``tests`` compare them).
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from exchange.kstb import items
from exchange.planning import arrival_times, choose_pairs
from exchange.scenario import Scenario

__all__ = ["iter_requests", "plan_requests", "write_plan_requests"]

_ITEMS = {"identity.verify": "居民身份证换领补领异地受理", "ecert.fetch": "跨省通办 电子证照调用",
          "healthcode.check": "健康码互认"}
_SAMPLE = 400  # holders drawn per target province; requests pick among them


def plan_requests(scenario: Scenario, data_dir: Path) -> list[dict[str, Any]]:
    """Every request of the run, in time order."""
    return list(iter_requests(scenario, data_dir))


def iter_requests(scenario: Scenario, data_dir: Path) -> Iterator[dict[str, Any]]:
    """Every request of the run, in time order, one at a time (a long run's requests
    never need to be in memory together)."""
    from nodes.store import ProvinceStore

    rng = random.Random(f"{scenario.seed}:plan")
    arrivals = arrival_times(scenario.flows, scenario.ramps, scenario.duration_s, rng)
    pairs = choose_pairs(scenario, len(arrivals), rng)
    people: dict[str, list[Any]] = {}
    certs: dict[str, list[Any]] = {}
    firms: dict[str, list[tuple[str, Any]]] = {}
    wants_apply = any(f.flow == "tongban.apply" for f in scenario.flows)
    catalogue = items(include_unverified=scenario.apply.include_unverified)
    for code in sorted({t for _, t in pairs}):
        with ProvinceStore(data_dir / f"{code}.sqlite", code=code) as store:
            people[code] = store.sample_persons(rng, _SAMPLE)
            certs[code] = store.sample_certificates(rng, _SAMPLE)
            if wants_apply:
                licences = [c for c in certs[code] if c.type_name == "营业执照"]
                firms[code] = [(c.holder_code, store.person(store.business(c.holder_code).legal_rep_id))
                               for c in licences if store.business(c.holder_code) is not None]
    for i, ((at, flow), (origin, target)) in enumerate(zip(arrivals, pairs, strict=True)):
        req: dict[str, Any] = {"at_s": round(at, 6), "flow": flow, "origin": origin, "target": target,
                               "serial": f"{scenario.seed}-{i:08d}", "item": _ITEMS.get(flow, flow)}
        if flow == "tongban.apply":
            it = rng.choice(catalogue)
            online = it.online and rng.random() < scenario.apply.online_share
            if it.business and firms.get(target):
                uscc, rep = rng.choice(firms[target])
                req.update(holder=uscc, applicant=rep.id_number, name=rep.name, photo=rep.photo_sha256)
            else:
                p = rng.choice(people[target])
                req.update(holder=p.id_number, name=p.name, photo=p.photo_sha256)
            req.update(item=it.name, channel="online" if online else "window")
        elif flow == "healthcode.check":
            req.update(holder=rng.choice(people[target]).id_number)
        elif flow == "identity.verify":
            p = rng.choice(people[target])
            wrong = rng.random() < scenario.identity_mismatch_ratio
            req.update(holder=p.id_number, name=(p.name + "某") if wrong else p.name, photo=p.photo_sha256)
        elif flow in ("ecert.fetch", "ecert.transfer"):
            c = rng.choice(certs[target])
            req.update(holder=c.holder_code, cert_type=c.type_code)
        yield req


def write_plan_requests(scenario: Scenario, data_dir: Path, paths: list[Path]) -> int:
    """Write the run's requests round-robin to ``paths`` (one per load generator), one
    JSON object per line in time order, as they are planned; return how many."""
    n = 0
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(path.open("w", encoding="utf-8")) for path in paths]
        for n, req in enumerate(iter_requests(scenario, data_dir), 1):
            files[(n - 1) % len(files)].write(json.dumps(req, ensure_ascii=False) + "\n")
    return n
