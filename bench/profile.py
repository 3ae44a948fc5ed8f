"""Where the CPU goes in (b): hub, answering province and client under saturation.

Three views of the same window, each optional but the first:

- /proc/<pid>/task/*/stat: CPU of every thread (exact; includes gRPC core's native
  event_engine threads that no Python profiler sees);
- py-spy (``pip install py-spy``), ``--nonblocking --threads``: Python stacks of the
  threads that run Python; C time (OpenSSL, gRPC, SQLite) is charged to the
  calling Python frame. py-spy cannot tell waiting from running here, so frames
  that only wait (``EpollSelector.select``, ``Condition.wait``, the gRPC poller's
  ``Thread.run``) are dropped and the rest is scaled to the thread's /proc CPU;
- perf (if installed): samples by shared object and symbol, C and kernel included.

Everything is converted to µs of CPU per exchange. Used by ``python -m bench --profile S``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from bench.cluster import Cluster, copy_world

__all__ = ["analyse_py_spy", "profile_tongban"]

Say = Callable[[str], None]
_PY_SPY_HZ = 100
_PERF_HZ = 499
_IDLE_LEAVES = ("EpollSelector.select ", "Condition.wait ", "_worker (concurrent/futures", "Thread.run ",
                "select (selectors", "Event.wait ")

#: Main-thread categories: first frame test that matches wins (frames outermost first).
_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ECDSA sign/verify", ("verify_signature ", "Signer.sign ")),
    ("ledger append on the event loop (NodeCore.record)", ("NodeCore.record ",)),
    ("province store lookup + answer building", ("Answerer.", "ProvinceStore.")),
    ("envelope/header checks, sealing, parsing (non-crypto)", (
        "open_envelope ", "check_binding ", "check_answer ", "make_header ", "seal ", "DsseEnvelope.",
        "check_header_shape ", "DirectoryView.", "peek_header ", "_parse (exchange/payloads", "spec_of ",
        "parse_routed ", "ExchangeDriver.call ")),
    ("gRPC aio Python side (calls, servicer wrapper, status)", ("grpc/aio/", "nodes/_grpc.py", "nodes/_status.py",
                                                                "grpc/_")),
)


def _tool(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def _thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_bytes()
        except OSError:
            continue
        comm = raw[raw.index(b"(") + 1:raw.rindex(b")")].decode(errors="replace")
        fields = raw.rsplit(b")", 1)[1].split()
        out[int(task.name)] = (comm, int(fields[11]) + int(fields[12]))
    return out


def _frame_key(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def analyse_py_spy(path: Path) -> dict[int, dict[str, Any]]:
    """Per thread id: name, busy samples, main-thread categories, inclusive and leaf counts."""
    threads: dict[int, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not stack or not n_text.isdigit():
            continue
        head, *frames = stack.split(";")
        tid_text, _, name = head.partition(": ")
        try:
            tid = int(tid_text.split("(")[1].rstrip(")"), 0)
        except (IndexError, ValueError):
            continue
        t = threads.setdefault(tid, {"name": name, "samples": 0, "busy": 0, "categories": Counter(),
                                     "inclusive": Counter(), "leaf": Counter()})
        n = int(n_text)
        t["samples"] += n
        if not frames or frames[-1].startswith(_IDLE_LEAVES):
            continue
        t["busy"] += n
        cat = next((c for c, marks in _CATEGORIES if any(m in f for f in frames for m in marks)), "other Python "
                   "(event loop callbacks incl. gRPC Cython completions, asyncio)")
        t["categories"][cat] += n
        for key in {_frame_key(f) for f in frames}:
            t["inclusive"][key] += n
        t["leaf"][_frame_key(frames[-1])] += n
    return threads


def _perf_report(perf: str, data: Path, sort: str) -> list[tuple[int, int, str]]:
    """(samples, tid, key) rows of ``perf report -n --sort pid,<sort>``."""
    p = subprocess.run([perf, "report", "-i", str(data), "--stdio", "-n", "--sort", f"pid,{sort}", "--percent-limit",
                        "0.05"], capture_output=True, text=True, timeout=120)
    rows = []
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[0].endswith("%"):
            continue
        try:
            rows.append((int(parts[1]), int(parts[2].split(":")[0]), " ".join(parts[3:])))
        except ValueError:
            continue
    return rows


_SKIP_INCLUSIVE = ("main ", "run ", "serve", "_run", "<module>", "Runner.", "BaseEventLoop.", "_cmd_node",
                   "Handle._run", "_serve_until_stopped", "Thread.", "ChainWriter._run ")


def _section(label: str, pid: int, cpu: dict[int, tuple[str, float]], spy: dict[int, dict[str, Any]],
             perf_rows: dict[str, list[tuple[int, int, str]]], calls: float) -> str:
    total_us = sum(s for _, s in cpu.values()) * 1e6 / calls
    out = [f"### {label}", "", f"≈ {total_us:.0f} µs CPU per exchange in all (from /proc).", "",
           "| thread | ≈ µs per exchange | % |", "|---|---:|---:|"]
    named = {tid: spy[tid]["name"] if tid in spy else f"{comm} (native, no Python frames)"
             for tid, (comm, _) in cpu.items()}
    groups: Counter[str] = Counter()
    for tid, (_, secs) in cpu.items():
        name = named[tid]
        groups["gRPC event_engine threads (native)" if name.startswith("event_engine") else name] += secs
    for name, secs in groups.most_common():
        us = secs * 1e6 / calls
        if us >= 1:
            out.append(f"| {name} | {us:.0f} | {100 * us / total_us:.0f} |")
    for tid, t in sorted(spy.items(), key=lambda kv: -cpu.get(kv[0], ("", 0.0))[1]):
        thread_us = cpu.get(tid, ("", 0.0))[1] * 1e6 / calls
        if not t["busy"] or thread_us < 20 or "_poll_wrapper" in t["name"]:
            continue
        scale = thread_us / t["busy"]
        out += ["", f"**{t['name']}** ({thread_us:.0f} µs per exchange; py-spy {t['busy']} busy of "
                    f"{t['samples']} samples, scaled to the thread's CPU):", ""]
        if t["name"] == "MainThread":
            out += ["| category | ≈ µs | % |", "|---|---:|---:|"]
            out += [f"| {k} | {v * scale:.0f} | {100 * v / t['busy']:.0f} |" for k, v in t["categories"].most_common()]
            out.append("")
        out += ["| function (inclusive) | ≈ µs | % |", "|---|---:|---:|"]
        shown = [(k, v) for k, v in t["inclusive"].most_common() if not k.startswith(_SKIP_INCLUSIVE)][:14]
        out += [f"| `{k}` | {v * scale:.0f} | {100 * v / t['busy']:.0f} |" for k, v in shown]
    if perf_rows:
        tids = set(cpu)
        per_dso: Counter[str] = Counter()
        for n, tid, dso in perf_rows["dso"]:
            if tid in tids:
                per_dso[dso] += n
        us_per_sample = 1e6 / _PERF_HZ / calls
        out += ["", "perf, by shared object (all threads of the process):", "", "| object | ≈ µs per exchange |",
                "|---|---:|"]
        out += [f"| {k} | {v * us_per_sample:.0f} |" for k, v in per_dso.most_common(9)]
        syms: Counter[str] = Counter()
        for n, tid, sym in perf_rows["sym"]:
            if tid in tids:
                syms[sym] += n
        out += ["", "perf, top symbols: " + ", ".join(f"`{k}` {v * us_per_sample:.0f} µs"
                                                   for k, v in syms.most_common(12))]
    return "\n".join(out) + "\n"


def profile_tongban(plan: Any, work: Path, pki: Path, world: Path, base_cfg: dict[str, Any], concurrency: int,
                    say: Say) -> dict[str, Any]:
    """Profile (b) at ``concurrency`` for ``plan.profile_s`` seconds; returns markdown sections."""
    from bench.suite import ORIGIN, TARGET

    spy_exe, perf_exe = _tool("py-spy"), _tool("perf")
    seconds = int(max(2, plan.profile_s))
    say(f"profile: {seconds} s of (b) at c={concurrency}: /proc threads"
        + (", py-spy" if spy_exe else " (py-spy not installed)") + (", perf" if perf_exe else " (no perf)"))
    work.mkdir(parents=True, exist_ok=True)
    with Cluster(work) as c:
        c.start_tongban(pki=pki, data=copy_world(world, work / "data", [ORIGIN, TARGET]), groups=[[ORIGIN], [TARGET]])
        lg = c.loadgen({**base_cfg, "driver": "exchange"})
        targets = {"hub": c.node_pids["hub"], f"province {TARGET} (answers)": c.node_pids["provinces-1"],
                   "client (load generator, as province A)": lg.proc.pid}
        expected = lg.send("closed", concurrency=concurrency, duration_s=seconds + 1.5, warmup_s=0.5)
        time.sleep(0.75)
        files = {label: work / f"py-spy-{pid}.txt" for label, pid in targets.items()}
        before = {label: _thread_ticks(pid) for label, pid in targets.items()}
        t0 = time.perf_counter()
        spies = [subprocess.Popen([spy_exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate",
                                   str(_PY_SPY_HZ), "--format", "raw", "--nonblocking", "--threads", "--output",
                                   str(files[label])], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for label, pid in targets.items()] if spy_exe else []
        perf_data = work / "perf.data"
        perf = subprocess.Popen([perf_exe, "record", "-F", str(_PERF_HZ), "-p", ",".join(map(str, targets.values())),
                                 "-o", str(perf_data), "--", "sleep", str(seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) if perf_exe else None
        spy_errors = [p.communicate()[1].decode(errors="replace")[-200:] for p in spies if p.wait() != 0]
        if perf is not None:
            perf.wait()
        window = time.perf_counter() - t0
        after = {label: _thread_ticks(pid) for label, pid in targets.items()}
        run = lg.result(expected, "closed")
        lg.quit()
    tick = os.sysconf("SC_CLK_TCK")
    calls = max(1.0, run["throughput_per_s"] * window)
    perf_rows: dict[str, Any] = {}
    if perf is not None and perf.returncode == 0 and perf_data.exists():
        perf_rows = {"dso": _perf_report(perf_exe, perf_data, "dso"),  # type: ignore[arg-type]
                     "sym": _perf_report(perf_exe, perf_data, "sym")}  # type: ignore[arg-type]
    sections = {}
    for label, pid in targets.items():
        cpu = {tid: (comm, (after[label].get(tid, (comm, ticks))[1] - ticks) / tick)
               for tid, (comm, ticks) in before[label].items()}
        spy = analyse_py_spy(files[label]) if spy_exe and files[label].exists() else {}
        sections[label] = _section(label, pid, cpu, spy, perf_rows, calls)
    return {"concurrency": concurrency, "seconds": seconds, "throughput_per_s": run["throughput_per_s"],
            "cpu_us_per_call": run.get("cpu_us_per_call", {}), "py_spy_errors": spy_errors,
            "tools": {"py-spy": bool(spy_exe), "perf": bool(perf_rows)}, "sections": sections}

