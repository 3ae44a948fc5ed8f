"""Interop fixtures: tongban as an outside developer meets it.

One PKI and one world (hub + 32 provinces, scale 1e-5) are built once per
session by a real ``tongban trace`` run, whose DSSE JSON files the DSSE tests
check. A hub and two provinces then run as real ``tongban node`` processes on
port 0, with ``--metrics-port``; readiness is their JSON ready line, never a
sleep. Tools that are not Python (node, npm, grpcurl, buf) are looked up here;
a test that needs a missing one is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ORIGIN, TARGET = "440000", "370000"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interop: checks tongban against independent tools and libraries")


def find_tool(name: str, *extra: Path) -> str | None:
    """``name`` in the venv's bin, in ``extra`` directories, or on PATH."""
    for d in (VENV_BIN, *extra):
        if (d / name).is_file() and os.access(d / name, os.X_OK):
            return str(d / name)
    return shutil.which(name)


def tongban(*args: str) -> list[str]:
    return [sys.executable, "-m", "tongban", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def npm_install(folder: Path, timeout_s: float = 180) -> None:
    """``npm ci`` (or ``npm install``) in ``folder``; skip the test, with npm's reason, if it fails."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm not found: install Node.js (with npm) to run this test")
    if (folder / "node_modules" / ".package-lock.json").exists():
        return
    cmd = [npm, "ci" if (folder / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
    try:
        done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"`{' '.join(cmd[:2])}` in {folder} took over {timeout_s:.0f} s (offline?)")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"`{' '.join(cmd[:2])}` in {folder} failed (offline?): {last}")


@dataclass
class Trace:
    dir: Path
    stdout: str
    pki: Path
    world: Path


@pytest.fixture(scope="session")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Trace:
    """A real `tongban trace --flow ecert.fetch` run, with a cache of its own."""
    base = tmp_path_factory.mktemp("trace")
    cache, out = base / "cache", base / "out"
    done = subprocess.run(tongban("trace", "--flow", "ecert.fetch", "--from", ORIGIN, "--out", str(out),
                                  "--cache", str(cache)),
                          capture_output=True, text=True, timeout=120, cwd=base, check=False)
    assert done.returncode == 0, f"tongban trace failed:\n{done.stdout}\n{done.stderr}"
    pki = next(cache.glob("pki-*"))
    world = next(p for p in cache.glob("world-*") if (p / "world.json").exists())
    return Trace(dir=out, stdout=done.stdout, pki=pki, world=world)


@dataclass
class NodeProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    endpoints: dict[str, str] = field(default_factory=dict)
    metrics_url: str = ""
    _buffer: bytes = b""

    def read_until_ready(self, codes: set[str], timeout_s: float = 60) -> None:
        """Read JSON event lines until every code in ``codes`` printed its ready line."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while codes - self.endpoints.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"nodes {sorted(codes - self.endpoints.keys())} not ready in {timeout_s} s")
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                err = self.log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"node process exited with {self.proc.wait()} before it was ready:\n{err}")
            *lines, self._buffer = (self._buffer + chunk).split(b"\n")
            for line in lines:
                event = json.loads(line)
                if event.get("event") == "ready":
                    self.endpoints[event["code"]] = event["endpoint"]
                elif event.get("event") == "metrics":
                    self.metrics_url = event["url"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@dataclass
class Running:
    """A hub and two provinces as ``tongban node`` processes."""

    pki: Path
    data: Path
    hub: NodeProcess
    provinces: NodeProcess

    @property
    def hub_target(self) -> str:
        return self.hub.endpoints["000000"]

    @property
    def hub_port(self) -> int:
        return int(self.hub_target.rsplit(":", 1)[1])

    def holder(self) -> tuple[str, str, str]:
        """(holder id, type code, identifier) of a valid certificate of a citizen of TARGET."""
        with sqlite3.connect(f"file:{self.data / f'{TARGET}.sqlite'}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT holder_code, type_code, identifier FROM ecerts WHERE state = '01' "
                "AND holder_code_type = '111' AND substr(holder_code, 1, 2) = ? ORDER BY rowid LIMIT 1",
                (TARGET[:2],)).fetchone()
        conn.close()
        assert row is not None, f"the world has no valid certificate of a {TARGET} citizen"
        return row[0], row[1], row[2]


def _spawn(args: list[str], cwd: Path, log: Path) -> NodeProcess:
    with log.open("wb") as err:  # a file, not a pipe: a chatty node never blocks on a full pipe
        proc = subprocess.Popen(args, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    return NodeProcess(proc, log=log)


@pytest.fixture(scope="package")
def running(trace: Trace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Package-scoped: the processes are gone before tests outside tests/interop run."""
    data = tmp_path_factory.mktemp("data")
    for f in trace.world.iterdir():
        shutil.copy(f, data / f.name)
    common = ["--pki", str(trace.pki), "--data", str(data), "--listen", "127.0.0.1:0"]
    hub = _spawn(tongban("node", "hub", *common, "--metrics-port", str(free_port())), data, data / "hub.log")
    provinces: NodeProcess | None = None
    try:
        hub.read_until_ready({"000000"})
        provinces = _spawn(tongban("node", "province", ORIGIN, TARGET, *common,
                                   "--hub", hub.endpoints["000000"], "--metrics-port", str(free_port())),
                           data, data / "provinces.log")
        provinces.read_until_ready({ORIGIN, TARGET})
        yield Running(pki=trace.pki, data=data, hub=hub, provinces=provinces)
    finally:
        if provinces is not None:
            provinces.stop()
        hub.stop()
