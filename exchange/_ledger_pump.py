"""The one thread per process that commits every ledger's batches.

Each ledger used to have its own writer thread, which woke twice per batch (for the first
entry, then when the batch was due) and took the GIL from the event loop each time. A
process with one ledger hardly noticed; a process co-hosting 32 provinces ran 32 writers,
which cost it about 3.8 context switches and 130 µs of CPU per exchange, a sixth of its
work (bench/results/profile-notes.md). One thread now serves every ledger of the process.
It wakes when the first ledger's batch is due and then commits every ledger that has rows
waiting, so the ledgers of a process share their wake-ups. A batch is never committed later
than its ledger's flush interval; other ledgers' batches may be committed sooner.

The pump knows each writer only through :class:`Drainable`; ``exchange._ledger_db``
owns the rows, the hash chain and the SQLite connection.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Protocol

__all__ = ["Drainable", "Pump", "PUMP"]

logger = logging.getLogger("exchange.ledger")

#: How often an idle pump checks whether the program is exiting without close().
IDLE_CHECK_S = 0.5


class Drainable(Protocol):
    def drain(self) -> bool:
        """Commit what is waiting (in the pump's thread); True once the writer has stopped."""

    def exiting(self) -> None:
        """The program is ending without close(): commit what is waiting, then stop."""


class Pump:
    """Commits the batches of every writer that asks (``request``), in one thread."""

    def __init__(self) -> None:
        self._cv = threading.Condition(threading.Lock())
        self._due: dict[Drainable, float] = {}  # writer -> time.monotonic() its batch is due
        self._writers: weakref.WeakSet[Drainable] = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._wake_at = 0.0  # when the pump's thread wakes next, at the latest (monotonic)

    def register(self, writer: Drainable) -> None:
        with self._cv:
            self._writers.add(writer)

    def request(self, writer: Drainable, due: float) -> None:
        """Have ``writer`` drained by ``due`` (``time.monotonic()``; 0: at once). Callable
        with the writer's own lock held: the pump never takes a writer's lock under its own."""
        with self._cv:
            old = self._due.get(writer)
            if old is not None and old <= due:
                return
            self._due[writer] = due
            if self._thread is None or not self._thread.is_alive():
                # non-daemon: rows appended before the program ends are committed
                self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=False)
                self._thread.start()
            if due < self._wake_at:  # else the pump wakes in time anyway: no wake-up per ledger
                self._cv.notify()

    def _run(self) -> None:
        while True:
            todo, exiting = self._next()
            for writer in todo:
                if exiting:
                    writer.exiting()
                if writer.drain():
                    with self._cv:
                        self._writers.discard(writer)
            if exiting:
                return

    def _next(self) -> tuple[list[Drainable], bool]:
        """Wait until a batch is due; then every writer with a request (all of them, and
        True, when the program is exiting without close())."""
        with self._cv:
            while True:
                now = time.monotonic()
                first = min(self._due.values(), default=None)
                if first is not None and first <= now:
                    todo = list(self._due)
                    self._due.clear()
                    return todo, False
                timeout = IDLE_CHECK_S if first is None else min(first - now, IDLE_CHECK_S)
                self._wake_at = now + timeout
                woken = self._cv.wait(timeout)
                self._wake_at = 0.0
                if not woken and not threading.main_thread().is_alive():
                    if self._writers:
                        logger.warning("ledgers: program exiting without close(): committing %d ledgers",
                                       len(self._writers))
                    todo = list({*self._due, *self._writers})
                    self._due.clear()
                    self._thread = None
                    return todo, True


#: This process's pump.
PUMP = Pump()
