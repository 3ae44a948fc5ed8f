"""The fault timeline of a run: what to tell which node process, and when.

Faults act through the nodes' control pipes (see ``nodes.process``):

- ``node_down`` / ``hub_down``: the node stops serving, callers get UNAVAILABLE;
  at the end it serves again on the same port;
- ``link_slow`` / ``link_loss``: every process changes the link between the named
  provinces and the hub (delay, jitter / loss), and restores it at the end;
- ``partition``: the named provinces' links deliver nothing while it lasts; a call
  over one waits for it to heal (as TCP retransmits) and fails at its deadline if it
  has not;
- ``key_revoked``: the hub revokes the province's signing key and publishes a new
  directory version; from then on its messages are refused (permanent);
- ``node_crash`` / ``hub_crash``: the process is killed with SIGKILL (a province's
  process takes its co-hosted provinces with it) and started again at the end;
  the hub comes back on the same port, from its persisted state.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from certs.pki import HUB_CODE
from exchange.scenario import Fault, Scenario

__all__ = ["FaultTimeline"]

Send = Callable[["subprocess.Popen[bytes]", dict[str, Any]], None]


@dataclass
class _Step:
    at_s: float
    fault: Fault
    start: bool
    done: bool = False


class FaultTimeline:
    """Applies a scenario's faults as the run's clock passes their times."""

    def __init__(self, scenario: Scenario, *, owner: dict[str, subprocess.Popen[bytes]], send: Send,
                 crash: Callable[[str], None] | None = None, restart: Callable[[str], None] | None = None) -> None:
        self.scenario = scenario
        self.owner = owner
        self.send = send
        self.crash = crash
        self.restart = restart
        self.applied: dict[int, float] = {}
        #: the run's clock at the last ``advance`` (seconds since the load started)
        self.clock = 0.0
        steps = []
        for f in scenario.faults:
            steps.append(_Step(f.at_s, f, True))
            if f.end_s is not None and f.kind != "key_revoked":
                steps.append(_Step(f.end_s, f, False))
        self.steps = sorted(steps, key=lambda s: (s.at_s, not s.start))

    def _everyone(self) -> list[subprocess.Popen[bytes]]:
        seen: dict[int, subprocess.Popen[bytes]] = {}
        for p in self.owner.values():
            seen[p.pid] = p
        return list(seen.values())

    def _link(self, code: str, **values: Any) -> None:
        for p in self._everyone():
            self.send(p, {"op": "link", "code": code, **values})

    def _apply(self, step: _Step) -> None:
        f, start = step.fault, step.start
        if f.kind in ("node_crash", "hub_crash"):
            codes = [HUB_CODE] if f.kind == "hub_crash" else list(f.nodes)
            act = self.crash if start else self.restart
            if act is not None:
                for code in codes:
                    act(code)
        elif f.kind in ("node_down", "hub_down"):
            codes = [HUB_CODE] if f.kind == "hub_down" else list(f.nodes)
            for code in codes:
                self.send(self.owner[code], {"op": "down" if start else "up", "codes": [code]})
        elif f.kind == "key_revoked":
            self.send(self.owner[HUB_CODE], {"op": "revoke", "code": f.nodes[0], "reason": "key compromise (scenario)"})
        else:
            for code in f.nodes:
                base = self.scenario.links.get(code)
                if f.kind == "partition":
                    self._link(code, partitioned=start)
                elif f.kind == "link_slow":
                    delay = f.delay_ms if start else (base.delay_ms if base else 0.0)
                    jitter = (f.jitter_ms or 0.0) if start else (base.jitter_ms if base else 0.0)
                    self._link(code, delay_ms=delay, jitter_ms=jitter)
                elif f.kind == "link_loss":
                    self._link(code, loss=f.loss if start else (base.loss if base else 0.0))

    def advance(self, elapsed_s: float) -> None:
        """Apply every step whose time has come."""
        self.clock = max(self.clock, elapsed_s)
        for step in self.steps:
            if not step.done and step.at_s <= elapsed_s:
                self._apply(step)
                step.done = True
                if step.start:
                    self.applied[id(step.fault)] = time.time()

    def active_labels(self, elapsed_s: float) -> list[str]:
        return [f"{f.kind} {','.join(f.nodes) or HUB_CODE}" for f in self.scenario.faults
                if f.at_s <= elapsed_s and (f.end_s is None or elapsed_s < f.end_s)]

    def report(self) -> list[dict[str, Any]]:
        """report.json's ``faults``: each fault as applied. ``end_s`` is when it was lifted,
        ``None`` when it was still active as the run ended (its end step never came, as in a
        run cut short by ``--duration``, or a permanent ``key_revoked``)."""
        lifted = {id(s.fault) for s in self.steps if not s.start and s.done}
        lifted |= {id(f) for f in self.scenario.faults  # a revocation's window, shown as active
                   if f.kind == "key_revoked" and f.end_s is not None and self.clock >= f.end_s}
        out = []
        for f in self.scenario.faults:
            detail = {"link_slow": f"one-way delay {f.delay_ms} ms", "link_loss": f"loss {f.loss}",
                      "partition": "links deliver nothing", "node_down": "stops serving",
                      "hub_down": "hub stops serving", "key_revoked": "signing key revoked",
                      "node_crash": "process killed (SIGKILL), restarted at the end",
                      "hub_crash": "hub killed (SIGKILL), restarted on its port at the end"}.get(f.kind, "")
            out.append({"kind": f.kind, "nodes": list(f.nodes) or [HUB_CODE], "at_s": f.at_s,
                        "end_s": f.end_s if id(f) in lifted else None,
                        "detail": detail, "applied": id(f) in self.applied})
        return out
