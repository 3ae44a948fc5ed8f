"""The one thread per process that commits every ledger's batches.

Each ledger used to have its own writer thread, which woke twice per batch (for the first
entry, then when the batch was due) and took the GIL from the event loop each time. A
process with one ledger hardly noticed; a process co-hosting 32 provinces ran 32 writers,
which cost it about 3.8 context switches and 130 µs of CPU per exchange, a sixth of its
work (bench/results/profile-notes.md). One thread now serves every ledger of the process.
It wakes when the first ledger's batch is due and then commits every ledger that has rows
waiting, so the ledgers of a process share their wake-ups. A batch is committed by its
ledger's flush interval, or sooner, unless a commit ahead of it in the same round waits for
its file's write lock (SQLite's busy timeout): one thread means one ledger held up holds up
the others of its process, the price of the shared wake-ups.

A forgotten ``Ledger``'s finaliser only puts its writer on a ``queue.SimpleQueue``, which is
safe from a garbage collection on any thread, whatever locks that thread holds; the pump
closes it on its next wake-up (at most ``IDLE_CHECK_S`` later).

The pump knows each writer only through :class:`Drainable`; ``exchange._ledger_db``
owns the rows, the hash chain and the SQLite connection.
"""

from __future__ import annotations

import logging
import queue
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

    def request_stop(self) -> None:
        """Commit what is waiting, then stop (asks the pump; takes the writer's lock)."""


class Pump:
    """Commits the batches of every writer that asks (``request``), in one thread."""

    def __init__(self, *, idle_check_s: float = IDLE_CHECK_S) -> None:
        self._idle_check_s = idle_check_s
        self._cv = threading.Condition(threading.Lock())
        self._due: dict[Drainable, float] = {}  # writer -> time.monotonic() its batch is due
        self._writers: weakref.WeakSet[Drainable] = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._ending: threading.Thread | None = None  # a thread that found no ledger open and ends
        self._wake_at = 0.0  # when the pump's thread wakes next, at the latest (monotonic)
        self._orphans: queue.SimpleQueue[Drainable] = queue.SimpleQueue()

    def register(self, writer: Drainable) -> None:
        with self._cv:
            self._writers.add(writer)

    def request(self, writer: Drainable, due: float) -> None:
        """Have ``writer`` drained by ``due`` (``time.monotonic()``; 0: at once). Callable
        with the writer's own lock held: the pump never takes a writer's lock under its own."""
        with self._cv:
            self._ensure_thread()
            old = self._due.get(writer)
            if old is not None and old <= due:
                return
            self._due[writer] = due
            if due < self._wake_at:  # else the pump wakes in time anyway: no wake-up per ledger
                self._cv.notify()

    def orphaned(self, writer: Drainable) -> None:
        """A forgotten ledger's finaliser: stop ``writer`` soon. Takes no lock."""
        self._orphans.put(writer)

    def _ensure_thread(self) -> None:
        if self._ending is not None:  # it holds no lock once it has said it ends: a short wait
            self._ending.join()
            self._ending = None
        if self._thread is None or not self._thread.is_alive():
            # non-daemon: rows appended before the program ends are committed
            self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=False)
            self._thread.start()

    def _run(self) -> None:
        while True:
            while not self._orphans.empty():
                self._orphans.get().request_stop()  # the writer's lock, then ours: the usual order
            todo, exiting = self._next()
            if exiting and not todo:
                return
            for writer in todo:
                try:
                    if exiting:
                        writer.exiting()
                    stopped = writer.drain()
                except BaseException as e:  # noqa: BLE001 - drain records its own errors; keep serving the rest
                    logger.error("ledger writer %r failed outside its commit: %r", writer, e)
                    stopped = True
                if stopped:
                    with self._cv:
                        self._writers.discard(writer)

    def _next(self) -> tuple[list[Drainable], bool]:
        """Wait until a batch is due; then every writer with a request. Once the program is
        exiting without close(): every writer at once, and True. Nothing and True when no
        ledger is left open: the thread ends."""
        with self._cv:
            while True:
                if not self._orphans.empty():
                    return [], False  # _run stops them first, outside this lock
                if not threading.main_thread().is_alive():
                    todo = list({*self._due, *self._writers})
                    self._due.clear()
                    if todo:
                        logger.warning("ledgers: program exiting without close(): committing %d ledgers", len(todo))
                    return todo, True
                if not self._due and not self._writers:
                    # no ledger left open: end; the next request starts another once this one is gone
                    self._ending, self._thread = self._thread, None
                    return [], True
                now = time.monotonic()
                first = min(self._due.values(), default=None)
                if first is not None and first <= now:
                    todo = list(self._due)
                    self._due.clear()
                    return todo, False
                idle = self._idle_check_s
                timeout = idle if first is None else min(first - now, idle)
                self._wake_at = now + timeout
                self._cv.wait(timeout)
                self._wake_at = 0.0


#: This process's pump.
PUMP = Pump()
