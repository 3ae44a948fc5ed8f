"""Checking the hash chains of many ledgers at once, for reconcile.

Checking a chain is Python work (about 3 µs a row). On a thread of the reconciling
process it holds the GIL that reading the ledgers needs, so a long run's chains are
checked by a worker process on the second core: ``python -m exchange._chain_check``
reads ledger paths on stdin, a JSON string a line, and answers each with one JSON line
naming it (``{"path": p, "rows": n, "last_hash": h}``, ``{"path": p, "chain_error":
message}`` or ``{"path": p, "error": message}``).
It is a plain child process, not :mod:`multiprocessing`'s, so no caller's main module
is imported again (a scenario script without a ``__main__`` guard would run twice).
It takes the ledgers in the order given; if it dies or answers amiss, a thread checks
the rest. Small
ledgers are checked on a thread: a worker takes about 0.3 s to start. One worker, not
two: on 2 cores two workers slowed the reading they run beside (5.3 s against 6.3-6.9 s
on a 5-minute run's ledgers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from exchange.errors import LedgerChainError, LedgerError, TongbanError
from exchange.ledger import LedgerVerification, verify_ledger

__all__ = ["ChainChecks", "main"]

log = logging.getLogger(__name__)

#: Ledgers of this many bytes in all or more are checked in worker processes (a 5-minute run at
#: 520 exchanges/s leaves 620 MiB; the quickstart scenario 37 MiB, stores included).
WORKERS_FROM_BYTES = 64 << 20
MAX_WORKERS = 1


def _size(paths: Sequence[Path]) -> int:
    total = 0
    for db in paths:
        for f in (db, db.with_name(db.name + "-wal")):
            with contextlib.suppress(OSError):  # no such file (yet): its check says so
                total += f.stat().st_size
    return total


class ChainChecks:
    """Each ledger's chain checked in the background, in the order given;
    ``futures[i]`` gives ``paths[i]``'s LedgerVerification or raises its error."""

    def __init__(self, paths: Sequence[Path], *, workers: int | None = None) -> None:
        self.paths = list(paths)
        self.futures: list[Future[LedgerVerification]] = [Future() for _ in self.paths]
        if workers is None:
            cores = os.cpu_count() or 1
            workers = min(MAX_WORKERS, cores) if cores > 1 and _size(self.paths) >= WORKERS_FROM_BYTES else 0
        self.workers = workers
        self._next: Iterator[int] = iter(range(len(self.paths)))
        self._lock = threading.Lock()
        self._stopping = False
        self._procs: list[subprocess.Popen[bytes]] = []
        self._threads = [threading.Thread(target=self._serve, args=(n,), name=f"chain-check-{n}", daemon=True)
                         for n in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def _take(self) -> int | None:
        """The next ledger to check, unless stopping (a cancelled one is skipped)."""
        with self._lock:
            while not self._stopping:
                i = next(self._next, None)
                if i is None or self.futures[i].set_running_or_notify_cancel():
                    return i
            return None

    def _serve(self, n: int) -> None:
        i: int | None = None
        proc = self._start() if n < self.workers else None
        try:
            while (i := self._take()) is not None:
                if proc is not None:
                    try:
                        self._set(i, _ask(proc, self.paths[i]))
                        continue
                    except Exception as e:  # noqa: BLE001 - it died, answered amiss, or close() stopped it
                        self._end(proc)
                        proc = None
                        if self._stopping:
                            self.futures[i].set_exception(LedgerError(f"ledger {self.paths[i]}: check stopped"))
                            continue  # nothing more is taken
                        log.warning("chain check worker: %s; checking the rest on a thread", e)
                try:
                    self.futures[i].set_result(verify_ledger(self.paths[i]))
                except BaseException as e:  # noqa: BLE001 - handed to whoever waits for it
                    self.futures[i].set_exception(e)
        except BaseException as e:  # this thread failed: no check may be left waiting for ever
            self._fail(i, e)
            raise
        finally:
            if proc is not None:
                self._end(proc)

    def _fail(self, i: int | None, error: BaseException) -> None:
        """Fail ledger ``i``'s check (if under way) and every one not started, with ``error``."""
        def fail(j: int) -> None:
            self.futures[j].set_exception(LedgerError(f"ledger {self.paths[j]}: the chain check failed: {error!r}"))

        if i is not None and not self.futures[i].done():
            fail(i)
        with self._lock:
            for j in self._next:
                if self.futures[j].set_running_or_notify_cancel():
                    fail(j)

    def _start(self) -> subprocess.Popen[bytes] | None:
        try:  # -P: the package installed, not an exchange/ in the current directory
            proc = subprocess.Popen([sys.executable, "-P", "-m", __name__], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE)
        except OSError as e:
            log.warning("chain check worker: cannot start (%s); checking on a thread", e)
            return None
        with self._lock:
            self._procs.append(proc)
        return proc

    def _set(self, i: int, doc: dict[str, Any]) -> None:
        """Complete ledger ``i``'s check from the worker's answer; ValueError if it is not one."""
        path, fut = self.paths[i], self.futures[i]
        if doc.get("path") != os.fsdecode(path):
            raise ValueError(f"the chain check worker answered for {doc.get('path')!r}, asked about {str(path)!r}")
        if isinstance(doc.get("rows"), int):
            fut.set_result(LedgerVerification(path=path, rows=doc["rows"], last_seq=doc["rows"],
                                              last_hash=str(doc.get("last_hash", ""))))
        elif isinstance(doc.get("chain_error"), str):
            fut.set_exception(LedgerChainError(doc["chain_error"]))
        elif isinstance(doc.get("error"), str):
            fut.set_exception(LedgerError(doc["error"]))
        else:
            raise ValueError(f"the chain check worker answered {doc!r}")

    @staticmethod
    def _end(proc: subprocess.Popen[bytes]) -> None:
        for f in (proc.stdin, proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):  # a dead worker's stdin: a broken pipe
                    f.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop: what has not started is cancelled, a worker's check under way is cut short
        (a check on a thread runs to its end), the threads are joined."""
        with self._lock:
            self._stopping = True
            for i in self._next:
                self.futures[i].cancel()
            procs = list(self._procs)
        for proc in procs:  # a check under way is cut short: its answer is not awaited any more
            if proc.poll() is None:
                proc.kill()
        for t in self._threads:
            t.join()


def _ask(proc: subprocess.Popen[bytes], path: Path) -> dict[str, Any]:
    stdin, stdout = proc.stdin, proc.stdout
    assert stdin is not None and stdout is not None
    stdin.write(json.dumps(os.fsdecode(path)).encode("ascii") + b"\n")
    stdin.flush()
    line = stdout.readline()
    if not line:
        raise ValueError(f"the chain check worker exited with {proc.wait()}")
    doc = json.loads(line)
    if not isinstance(doc, dict):
        raise ValueError(f"the chain check worker answered {line!r}")
    return doc


def _check(path: str) -> dict[str, Any]:
    try:
        v = verify_ledger(path)
    except LedgerChainError as e:
        return {"path": path, "chain_error": str(e)}
    except TongbanError as e:
        return {"path": path, "error": str(e)}
    return {"path": path, "rows": v.rows, "last_hash": v.last_hash}


def main(stdin: IO[bytes] | None = None, stdout: IO[str] | None = None) -> int:
    """The worker: a ledger path (a JSON string) a line on stdin, its result a JSON line on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the reconciling process's to handle
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout
    for raw in stdin:
        stdout.write(json.dumps(_check(json.loads(raw))) + "\n")
        stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
