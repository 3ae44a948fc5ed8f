"""Child processes of a run: start, wait for readiness, steer, stop — always."""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from exchange.errors import TongbanError
from tongban.runtime import grpc_environment

__all__ = ["Children"]

log = logging.getLogger(__name__)


class Children:
    """The node and load-generator processes of one run, stopped however the run ends.

    Each child runs in its own session, so a Ctrl-C at the terminal reaches only
    the runner, which then stops the children in order and collects what they
    measured.
    """

    def __init__(self, log_dir: Path, *, ready_timeout_s: float = 60.0) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log_dir = log_dir
        self.ready_timeout_s = ready_timeout_s
        self._buffers: dict[int, bytes] = {}

    def start(self, args: list[str], name: str, *, module: str = "tongban",
              env: dict[str, str] | None = None, prefix: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        """Start ``python -m module args`` (after ``prefix``, e.g. ``ip netns exec NS``), in this
        process's environment with gRPC's polling as tongban runs it (:mod:`tongban.runtime`)
        and then ``env`` on top."""
        with open(self.log_dir / f"{name}.log", "ab") as err:
            p = subprocess.Popen([*prefix, sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=err,
                                 stdin=subprocess.PIPE, start_new_session=True,
                                 env={**os.environ, **grpc_environment(), **(env or {})})
        self.procs.append(p)
        self._buffers[p.pid] = b""
        return p

    def read_events(self, proc: subprocess.Popen[bytes], timeout_s: float) -> list[dict[str, Any]]:
        """JSON lines ``proc`` printed, waiting at most ``timeout_s`` for the first."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            if not sel.select(timeout_s):
                return []
            chunk = os.read(fd, 1 << 16)
        finally:
            sel.close()
        if not chunk:
            raise EOFError
        buf = self._buffers[proc.pid] + chunk
        *lines, self._buffers[proc.pid] = buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def wait_ready(self, proc: subprocess.Popen[bytes], codes: Sequence[str]) -> dict[str, str]:
        """Endpoints of ``codes`` from their ready lines; fail if the process dies or is slow."""
        want, endpoints = set(codes), {}
        deadline = time.monotonic() + self.ready_timeout_s
        while want:
            events = self._events_before(
                proc, deadline, exited=f"node process for {sorted(want)} exited with {{rc}} before it was ready",
                late=f"nodes {sorted(want)} not ready after {self.ready_timeout_s:.0f} s")
            for event in events:
                if event.get("event") == "ready":
                    endpoints[event["code"]] = event["endpoint"]
                    want.discard(event["code"])
        return endpoints

    def wait_event(self, proc: subprocess.Popen[bytes], name: str, *, what: str, timeout_s: float) -> dict[str, Any]:
        """The next line ``{"event": name, ...}`` of ``proc`` (other lines are skipped);
        fail if the process dies or has not printed it within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self._events_before(proc, deadline, exited=f"node process exited with {{rc}} before {what}",
                                             late=f"{what} not done after {timeout_s:g} s"):
                if event.get("event") == name:
                    return event

    def _events_before(self, proc: subprocess.Popen[bytes], deadline: float, *, exited: str,
                       late: str) -> list[dict[str, Any]]:
        """The next lines of ``proc``; raise ``exited`` (``{rc}``: its exit code) when it
        exits, ``late`` when ``deadline`` passes first."""
        left = deadline - time.monotonic()
        try:
            events = self.read_events(proc, left) if left > 0 else []
        except EOFError:
            raise TongbanError(f"{exited.format(rc=proc.wait())} (see {self.log_dir})") from None
        if not events and time.monotonic() >= deadline:
            raise TongbanError(f"{late} (see {self.log_dir})")
        return events

    @staticmethod
    def send(proc: subprocess.Popen[bytes], command: dict[str, Any]) -> None:
        """Write one control command to a node process's stdin."""
        if proc.stdin is None or proc.poll() is not None:
            return
        try:
            proc.stdin.write(json.dumps(command).encode() + b"\n")
            proc.stdin.flush()
        except BrokenPipeError:
            log.warning("process %d no longer reads commands", proc.pid)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every child still running, then SIGKILL what does not exit in time."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("process %d did not stop in time; killing it", p.pid)
                p.kill()
                p.wait()
            for stream in (p.stdin, p.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except BrokenPipeError:
                        pass
        self.procs.clear()
