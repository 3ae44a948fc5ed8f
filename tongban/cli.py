"""The ``tongban`` command line: a thin shell over the packages.

Errors print as one line (``tongban: error: …``) and exit 2; ``--debug`` shows
the traceback. Every subcommand's ``--help`` ends with examples;
``tongban doctor`` checks that this machine can run tongban.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from exchange.errors import ConfigError, TongbanError
from tongban import runtime
from tongban._doctor import cmd_doctor
from tongban._node_cmd import cmd_node

__all__ = ["main"]

EPILOG = """examples:
  tongban pki init pki/
  tongban world generate world/ --scale 1e-4 --seed 7
  tongban node hub --pki pki/ --data world/ --listen 127.0.0.1:7000
  tongban node province 440000 --pki pki/ --data world/ --listen 127.0.0.1:7044 --hub 127.0.0.1:7000
  tongban run scenarios/quickstart.toml
  tongban report runs/quickstart-20261128-010000/
  tongban scenarios
  tongban compare runs/hub-outage-* --out runs/compare/
  tongban trace --flow ecert.fetch --from 440000 --out trace/
  tongban ledger verify runs/quickstart-*/data/000000.sqlite
  tongban doctor

`tongban COMMAND --help` shows each command's options and examples.
"""

_RAW = argparse.RawDescriptionHelpFormatter


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tongban", description="Simulate China's national government-service exchange "
                                "(跨省通办): a hub and 32 provinces exchanging signed e-certificates over gRPC.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", required=True)

    pki = sub.add_parser("pki", help="the national PKI").add_subparsers(dest="pki_command", required=True)
    init = pki.add_parser("init", help="create root CA, intermediates and node certificates in DIR",
                          formatter_class=_RAW, epilog=_examples(
                              "tongban pki init pki/",
                              "tongban pki init pki/ --sign-alg ed25519 --force",
                              "openssl x509 -in pki/nodes/440000/sign.crt -noout -subject -issuer"))
    init.add_argument("dir", type=Path)
    init.add_argument("--sign-alg", choices=["p256", "ed25519"], default="p256",
                      help="message-signing algorithm (default p256; TLS is always P-256)")
    init.add_argument("--force", action="store_true", help="replace an existing PKI in DIR")

    world = sub.add_parser("world", help="the synthetic population").add_subparsers(dest="world_command",
                                                                                    required=True)
    gen = world.add_parser("generate", help="persons, businesses and e-certificates per province in DIR",
                           formatter_class=_RAW, epilog=_examples(
                               "tongban world generate world/ --scale 1e-5          # ~14,000 persons, seconds",
                               "tongban world generate world/ --scale 1e-4 --seed 7  # ~140,000 persons",
                               "tongban world generate world/ --force                # replace the world there",
                               "",
                               "DIR must be empty or new: the nodes' ledgers live beside the world's data, so",
                               "a world generated over another would drop them. --force deletes the world in",
                               "DIR (world.json and every NNNNNN.sqlite, ledgers included; other files stay);",
                               "stop the nodes that use it first."))
    gen.add_argument("dir", type=Path)
    gen.add_argument("--scale", type=float, default=1e-4, help="fraction of the 2020 population (default 1e-4)")
    gen.add_argument("--seed", type=int, default=2021)
    gen.add_argument("--force", action="store_true", help="replace a world (and its ledgers) in DIR")

    node = sub.add_parser("node", help="run a node").add_subparsers(dest="role", required=True)
    hub = node.add_parser("hub", help="run the national hub (000000)", formatter_class=_RAW, epilog=_examples(
        "tongban node hub --pki pki/ --data world/ --listen 127.0.0.1:7000",
        "tongban node hub --pki pki/ --data world/ --listen 127.0.0.1:7000 --metrics-port 9100",
        "tongban node hub --pki pki/ --data world/ --topology direct",
        "",
        "It prints {\"event\": \"ready\", \"code\": \"000000\", \"endpoint\": ...} when it serves;",
        "Ctrl-C (SIGINT) or SIGTERM stops it gracefully. Call it with grpcurl (the client",
        "certificate file holds the leaf and its intermediate; see docs/how-it-works.md):",
        "  cat pki/nodes/440000/tls.crt pki/nodes/440000/chain.pem > 440000-client.pem",
        "  grpcurl -cacert pki/ca/root.crt -cert 440000-client.pem -key pki/nodes/440000/tls.key \\",
        "    -servername node-000000.tongban.test 127.0.0.1:7000 list"))
    hub.add_argument("--topology", choices=["star", "regional", "direct"], default="star",
                     help="who exchanges directly: star (all via the hub), regional, direct (X-Road)")
    prov = node.add_parser("province", help="run one or more provincial nodes in this process",
                           formatter_class=_RAW, epilog=_examples(
                               "tongban node province 440000 --pki pki/ --data world/ --listen 127.0.0.1:7044 "
                               "--hub 127.0.0.1:7000",
                               "tongban node province 110000 370000 --pki pki/ --data world/ --hub 127.0.0.1:7000"
                               "   # port 0 each",
                               "tongban node province 440000 --pki pki/ --data world/ --hub 127.0.0.1:7000 "
                               "--metrics-port 9144"))
    prov.add_argument("codes", nargs="+", metavar="CODE")
    prov.add_argument("--hub", required=True, metavar="HOST:PORT")
    prov.add_argument("--cohost", action="store_true",
                      help="the provinces of this process exchange over the first one's connections (in code "
                           "order): it carries their requests to the hub and the hub's requests to them, so their "
                           "envelopes share writes (each keeps its own server, certificate, keys and ledger, and "
                           "registers and fetches the directory itself)")
    for sp in (hub, prov):
        sp.add_argument("--pki", required=True, type=Path, metavar="DIR")
        sp.add_argument("--data", required=True, type=Path, metavar="DIR")
        sp.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
        sp.add_argument("--links", type=Path, metavar="FILE",
                        help="JSON {code: {delay_ms, jitter_ms, loss}}: each province's link to the hub")
        sp.add_argument("--metrics-port", type=_port, default=0, metavar="PORT",
                        help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics (default 0: off)")
        sp.add_argument("--transport", choices=["stream", "unary"], default="stream",
                        help="how this node sends envelopes to other nodes: multiplexed over one long-lived "
                             "stream per peer (default), or one unary call each (it serves both)")
        sp.add_argument("--request-timeout", type=float, default=10.0, metavar="S",
                        help="seconds a request this node sends (a province) or forwards (the hub) may take "
                             "before it fails as unavailable (default 10; a scenario's load.request_timeout_s)")
        sp.add_argument("--tls-gate", action=argparse.BooleanOptionalAction, default=True,
                        help="do the mTLS handshake in tongban's TLS gate, so refused handshakes (no client "
                             "certificate, a foreign CA, an expired certificate) are in the ledger (default); "
                             "--no-tls-gate leaves it to grpcio, which refuses them unrecorded")

    run = sub.add_parser("run", help="run a scenario and print its summary", formatter_class=_RAW,
                         epilog=_examples(
                             "tongban run scenarios/quickstart.toml",
                             "tongban run scenarios/hub-outage.toml --duration 30 --seed 7 --out runs/outage/",
                             "tongban run scenarios/capacity-sweep.py --duration 5",
                             "tongban scenarios     # the shipped scenarios and the question each answers",
                             "",
                             "FILE is a scenario file (.toml) or a Python script (.py) that uses exchange.api.",
                             "A script's runs land under --out; --duration sets TONGBAN_SCRIPT_SECONDS, the",
                             "seconds per run the script reads (a script that does not read it is refused);",
                             "--seed and --cache apply to scenario files only: a script sets its own seed",
                             "(api.set_value(sc, \"world.seed\", N)) and cache (cache_dir= of api.run).",
                             "",
                             "Exit status: 0 when every request was answered, 1 when some failed or were lost."))
    run.add_argument("file", type=Path)
    run.add_argument("--out", type=Path, help="run directory (default runs/<scenario>-<timestamp>/)")
    run.add_argument("--duration", type=float, metavar="S",
                     help="override the load duration (a script: the seconds of each of its runs)")
    run.add_argument("--seed", type=int, help="override the world and load seed (scenario files only)")
    run.add_argument("--cache", type=Path, help="PKI and world cache (default runs/.cache; scenario files only)")

    sw = sub.add_parser("sweep", help="run a scenario over ranges of values: the capacity curve and its knee",
                        formatter_class=_RAW, epilog=_examples(
                            "tongban sweep scenarios/baseline-2020.toml --set load.rate_per_s=50..250:50",
                            "tongban sweep scenarios/quickstart.toml --set load.rate_per_s=40..200:40 "
                            "--set topology.kind=star,regional,direct --budget-ms 200 --duration 15",
                            "",
                            "KEY is one of: load.rate_per_s (total offered load; flows keep their proportions),",
                            "load.duration_s, topology.kind, topology.delay, topology.hub_at, world.seed."))
    sw.add_argument("file", type=Path)
    sw.add_argument("--set", dest="axes", action="append", required=True, metavar="KEY=START..STOP:STEP",
                    help="an axis: KEY=START..STOP:STEP (inclusive) or KEY=a,b,c; repeat for more axes")
    sw.add_argument("--budget-ms", type=float, help="p99 budget for the knee (default: the file's "
                    "report.latency_budget_ms, 3000)")
    sw.add_argument("--duration", type=float, metavar="S", help="override each point's load duration")
    sw.add_argument("--seed", type=int)
    sw.add_argument("--out", type=Path, help="sweep directory (default runs/sweep-<scenario>-<timestamp>/)")
    sw.add_argument("--cache", type=Path, default=Path("runs/.cache"))

    rep = sub.add_parser("report", help="re-render report.md, report.html and charts from a run's report.json",
                         formatter_class=_RAW, epilog=_examples("tongban report runs/quickstart-20261128-010000/"))
    rep.add_argument("dir", type=Path, metavar="RUN_DIR")

    sub.add_parser("scenarios", help="list the shipped scenarios and the question each answers",
                   formatter_class=_RAW, epilog=_examples("tongban scenarios",
                                                          "tongban run scenarios/slow-province.toml"))
    cmp_ = sub.add_parser("compare", help="compare runs side by side and write overlaid charts",
                          formatter_class=_RAW, epilog=_examples(
                              "tongban compare runs/hub-outage-* runs/hub-outage-direct-* --out runs/compare/"))
    cmp_.add_argument("dirs", type=Path, nargs="+", metavar="RUN_DIR")
    cmp_.add_argument("--out", type=Path, default=Path("runs/compare"), metavar="DIR")

    trace = sub.add_parser("trace", help="run one flow and show every hop", formatter_class=_RAW,
                           epilog=_examples(
                               "tongban trace --flow ecert.fetch --from 440000 --out trace/",
                               "tongban trace --flow identity.verify --from 110000",
                               "",
                               "Each envelope is written as standard DSSE JSON (NN-hop.dsse.json) beside the",
                               "certificate of the key that signed it (NN-hop.signer.pem); see docs/how-it-works.md."))
    trace.add_argument("--flow", choices=["ecert.fetch", "identity.verify"], default="ecert.fetch")
    trace.add_argument("--from", dest="origin", default="440000", metavar="CODE")
    trace.add_argument("--holder", default="", metavar="ID")
    trace.add_argument("--type", dest="cert_type", default="", metavar="CODE")
    trace.add_argument("--out", type=Path, default=Path("trace"), metavar="DIR")
    trace.add_argument("--cache", type=Path, default=Path("runs/.cache"))

    ledger = sub.add_parser("ledger", help="ledgers").add_subparsers(dest="ledger_command", required=True)
    verify = ledger.add_parser("verify", help="check a ledger's hash chain", formatter_class=_RAW,
                               epilog=_examples("tongban ledger verify runs/quickstart-*/data/000000.sqlite"))
    verify.add_argument("db", type=Path)

    sub.add_parser("doctor", help="check this machine: Python, a free port, write access, optional tools",
                   formatter_class=_RAW, epilog=_examples(
                       "tongban doctor",
                       "",
                       "Exit status 0 when the required checks pass; optional tools (node, grpcurl, buf,",
                       "chromium) only enable the interop tests, `make lint` and report screenshots."))
    return p


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, found {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, found {port}")
    return port


def _cmd_pki(a: argparse.Namespace) -> int:
    from certs.pki import init_pki

    paths = init_pki(a.dir, sign_alg=a.sign_alg, overwrite=a.force)
    print(f"PKI created in {paths.root}: root CA, 33 intermediates, node certificates ({a.sign_alg} signing)")
    return 0


#: What a world (and the nodes run on it) leaves in its directory: --force deletes these.
_WORLD_FILE = re.compile(r"world\.json(\.tmp)?|\d{6}\.sqlite(\.tmp|\.lock)?(-wal|-shm|-journal)?")


def _clear_world_dir(directory: Path, *, force: bool, locks: list[Any]) -> None:
    """Refuse a ``directory`` that holds anything (a world's ledgers would be lost); with
    ``force``, delete the world's files there (other files stay), holding each ledger's
    writer lock (appended to ``locks``, for the caller to release once the new world is
    written: a node started meanwhile is refused rather than left on a replaced file)."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: expected an empty or new directory, found a file")
    entries = sorted(directory.iterdir()) if directory.is_dir() else []
    if not entries:
        return
    if not force:
        n = len(entries)
        raise ConfigError(f"{directory}: expected an empty or new directory, found {n} file{'s' * (n != 1)} "
                          "(a world generated earlier?); use --force to replace it")
    from exchange._ledger_db import WriterLock

    # A node still running on it holds its ledger's lock: refuse (naming it) before deleting anything.
    for entry in entries:
        if re.fullmatch(r"\d{6}\.sqlite", entry.name) and entry.is_file():
            locks.append(WriterLock.acquire(entry))
    for entry in entries:
        if _WORLD_FILE.fullmatch(entry.name) and (entry.is_file() or entry.is_symlink()) \
                and not entry.name.endswith(".lock"):
            entry.unlink()


def _cmd_world(a: argparse.Namespace) -> int:
    import time

    from nodes.world import generate_world

    if not 0 < a.scale <= 1:  # before --force deletes anything
        raise ConfigError(f"--scale: expected a fraction of the population in (0, 1], found {a.scale:g}")
    locks: list[Any] = []
    try:
        _clear_world_dir(a.dir, force=a.force, locks=locks)
        t0 = time.perf_counter()
        m = generate_world(a.dir, scale=a.scale, seed=a.seed)
    finally:
        for lock in locks:
            lock.release()  # removes its lock file
    persons = sum(c["persons"] for c in m.counts.values())
    certs = sum(c["ecerts"] for c in m.counts.values())
    print(f"world in {a.dir}: {persons} persons, {certs} e-certificates, "
          f"{len(m.codes)} provinces ({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_run(a: argparse.Namespace) -> int:
    from exchange.progress import LiveProgress
    from exchange.runner import run_scenario
    from exchange.scenario import load_scenario
    from tongban._summary import print_summary

    if a.file.suffix == ".py":
        return _run_script(a)
    scenario = load_scenario(a.file, overrides={"duration_s": a.duration, "seed": a.seed})
    out = a.out or Path("runs") / f"{scenario.name}-{datetime.now():%Y%m%d-%H%M%S}"
    progress = LiveProgress(total_s=scenario.duration_s)
    result = run_scenario(scenario, out_dir=out, cache_dir=a.cache or Path("runs/.cache"), progress=progress)
    print_summary(result.report(), out)
    failed = sum(sum(s.failed_by_reason().values()) for s in result.flows.values())
    return 1 if failed or result.interrupted or result.recon.lost else 0


def _cmd_sweep(a: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from exchange.scenario import load_scenario
    from exchange.sweep import parse_axis, sweep

    if a.budget_ms is not None and not 0 < a.budget_ms < float("inf"):
        raise ConfigError(f"--budget-ms: expected a p99 budget in ms greater than 0, found {a.budget_ms:g}")
    scenario = load_scenario(a.file, overrides={"duration_s": a.duration, "seed": a.seed})
    axes = [parse_axis(s) for s in a.axes]
    out = a.out or Path("runs") / f"sweep-{scenario.name}-{datetime.now():%Y%m%d-%H%M%S}"
    print(f"· sweeping {scenario.name}: {' x '.join(f'{k} {v}' for k, v in axes)} into {out}", file=sys.stderr)
    result = sweep(scenario, axes, out_dir=out, budget_ms=a.budget_ms, cache_dir=a.cache)
    console = Console(soft_wrap=True)
    console.width = max(console.width, 120)
    knees = result.knees()
    for label, pts in result.series().items():
        table = Table(title=escape(f"{scenario.name} [{label}]: knee {result.describe_knee(label)} "
                                   f"(p99 budget {result.budget_ms:g} ms)"))  # "[…]" is not rich markup
        for col in ("offered/s", "achieved ok/s", "p50 ms", "p99 ms", "failed", "lost", ""):
            table.add_column(col, justify="right")
        for p in pts:
            mark = "◀ knee" if p["offered_per_s"] == knees[label] else ""
            table.add_row(f"{p['offered_per_s']:g}", f"{p['throughput_per_s']:.1f}", f"{p['p50_ms']:.1f}",
                          f"{p['p99_ms']:.1f}", str(p["failed"]), str(p["lost"]), mark)
        console.print(table)
    print(f"wrote {out / 'sweep.json'} and {out / 'sweep.png'}")
    return 0


#: The environment variable a scenario script reads for the seconds of each run (scenarios/*.py).
_SECONDS_VAR = "TONGBAN_SCRIPT_SECONDS"


def _run_script(a: argparse.Namespace) -> int:
    """``tongban run script.py``: run a scenario script that uses exchange.api."""
    import runpy

    from exchange import api

    for option, value, own in (("--seed", a.seed, 'its own seed (api.set_value(sc, "world.seed", N))'),
                               ("--cache", a.cache, "its own cache (cache_dir= of api.run)")):
        if value is not None:
            raise ConfigError(f"{option} applies to scenario files, not to scripts like {a.file.name}; "
                              f"a script sets {own}")
    try:
        source = a.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{a.file}: expected a Python scenario script: {e}") from e
    env: dict[str, str] = {}
    if a.duration is not None:
        if _SECONDS_VAR not in source:
            raise ConfigError(f"--duration: expected a script that reads {_SECONDS_VAR}, found "
                              f"{a.file.name}, which does not (it sets its own durations)")
        limits = api.NUMBER_KEYS["load.duration_s"]
        if not limits.ok(a.duration):
            raise ConfigError(f"--duration: expected {limits.describe()}, found {a.duration:g}")
        env[_SECONDS_VAR] = repr(a.duration)
    out = a.out or Path("runs") / f"{a.file.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    token = api.run_dir_context(out)
    try:
        runpy.run_path(str(a.file), run_name="__main__")
    finally:
        token.var.reset(token)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    print(f"runs of {a.file.name} are in {out}")
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    import json

    from exchange.report import render_report
    from tongban._summary import print_summary

    path = a.dir / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: expected a report.json written by `tongban run`: {e}") from e
    written = render_report(a.dir, report)
    print_summary(report, a.dir)
    for p in written:
        print(f"wrote {p}")
    return 0


def _cmd_scenarios(a: argparse.Namespace) -> int:
    from exchange.scenario import load_scenario

    folder = Path(__file__).resolve().parent.parent / "scenarios"
    if not folder.is_dir():
        folder = Path("scenarios")
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise ConfigError(f"{folder}: expected shipped scenarios (*.toml), found none")
    scripts = sorted(folder.glob("*.py"))
    width = max(len(f.stem) for f in [*files, *scripts])
    for f in files:
        s = load_scenario(f)
        purpose = s.description.split(":", 1)[1].strip() if ":" in s.description else s.description
        print(f"{f.stem:<{width}}  {s.topology:<8}  {purpose}")
    for f in scripts:  # the docstring's first line says what question the script answers
        import ast

        doc = (ast.get_docstring(ast.parse(f.read_text(encoding="utf-8"))) or "").splitlines()
        first = doc[0] if doc else ""
        purpose = first.split(":", 1)[1].strip() if ":" in first else first
        print(f"{f.stem:<{width}}  {'script':<8}  {purpose}")
    print(f"\nrun one with: tongban run {folder}/NAME.toml (or NAME.py)")
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from exchange.report.compare import comparison_rows, draw_comparison

    runs = []
    for d in a.dirs:
        path = d / "report.json"
        try:
            runs.append((d, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: expected a report.json written by `tongban run`: {e}") from e
    columns, rows = comparison_rows(runs)
    table = Table(title="comparison")
    for c in columns:
        table.add_column(c, justify="left" if c in ("run", "topology", "faults") else "right")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))  # a run named "outage[v2]" prints as named
    console = Console(soft_wrap=True)
    console.width = max(console.width, 120)
    console.print(table)
    for p in draw_comparison(runs, a.out):
        print(f"wrote {p}")
    return 0


def _cmd_trace(a: argparse.Namespace) -> int:
    from tongban._trace import run_trace

    return asyncio.run(run_trace(flow=a.flow, origin=a.origin, holder=a.holder, cert_type=a.cert_type,
                                 out=a.out, cache=a.cache))


def _cmd_ledger(a: argparse.Namespace) -> int:
    from exchange.ledger import verify_ledger

    v = verify_ledger(a.db)
    print(f"{a.db}: {v.rows} rows, hash chain intact (last row {v.last_seq}, hash {v.last_hash[:16]}…)")
    return 0


def main(argv: list[str] | None = None) -> int:
    runtime.apply()  # gRPC's polling, before anything imports grpc (tongban/runtime.py)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    handler = {"pki": _cmd_pki, "world": _cmd_world, "node": cmd_node, "run": _cmd_run,
               "trace": _cmd_trace, "ledger": _cmd_ledger, "report": _cmd_report, "sweep": _cmd_sweep,
               "scenarios": _cmd_scenarios, "compare": _cmd_compare, "doctor": cmd_doctor}[args.command]
    try:
        return handler(args)
    except TongbanError as e:
        if args.debug:
            raise
        print(f"tongban: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (OSError, RuntimeError) as e:
        # The environment, not tongban: a port in use, a missing or unreadable file.
        if args.debug:
            raise
        text = str(e)
        if "Failed to bind to address" in text:  # grpc's wording for a port in use
            text = text.split(";", 1)[0] + ": expected a free port (is another node listening there?)"
        print(f"tongban: error: {text} (--debug shows the traceback)", file=sys.stderr)
        return 2
