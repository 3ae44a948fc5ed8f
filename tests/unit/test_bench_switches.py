"""bench/loadgen.py counts context switches per process; the report sums them per exchange."""

from __future__ import annotations

import os
import threading

from bench.loadgen import _switches
from bench.report import _figures


def test_switches_count_every_thread_of_the_process() -> None:
    """Two threads handing a token to each other 200 times: each hand-off puts the
    waiting thread to sleep and wakes it, so the process's count grows by at least that."""
    ping, pong = threading.Event(), threading.Event()

    def other() -> None:
        for _ in range(200):
            ping.wait()
            ping.clear()
            pong.set()

    before = _switches(os.getpid())
    t = threading.Thread(target=other)
    t.start()
    for _ in range(200):
        ping.set()
        pong.wait()
        pong.clear()
    t.join()
    assert _switches(os.getpid()) - before >= 200


def test_a_gone_process_has_no_switches() -> None:
    assert _switches(2**22 + 1) == 0  # above the kernel's pid_max: never a live process


def test_switches_per_exchange_is_the_sum_over_the_processes() -> None:
    best = {"cpu_us_per_call": {"loadgen": 300, "hub": 550}, "others_busy": 0.0,
            "switches_per_call": {"loadgen": 0.61, "hub": 1.25, "provinces-1": 0.9}}
    f = _figures({"saturation_per_s": 1200.0, "best_concurrency": 64, "best": best})
    assert f["switches_per_call_at_saturation"] == {"loadgen": 0.61, "hub": 1.25, "provinces-1": 0.9}
    assert f["switches_per_exchange"] == 2.76
    assert _figures({"saturation_per_s": 1.0, "best_concurrency": 1, "best": {}})["switches_per_exchange"] is None
