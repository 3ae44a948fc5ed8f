"""How busy the machine was during a run's load, from /proc/stat."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange import _machine
from exchange._machine import BusyMeter, busy_ticks

#: user nice system idle iowait irq softirq steal (guest fields after them are in user already)
STAT = "cpu  {user} 5 50 1000 20 3 2 0 7 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 12345\n"


def _stat(path: Path, user: int) -> Path:
    path.write_text(STAT.format(user=user), encoding="ascii")
    return path


def test_busy_ticks_are_all_but_idle_and_iowait(tmp_path: Path) -> None:
    assert busy_ticks(_stat(tmp_path / "stat", 100)) == 100 + 5 + 50 + 3 + 2
    assert busy_ticks(tmp_path / "missing") is None
    (tmp_path / "odd").write_text("intr 1 2 3\n", encoding="ascii")
    assert busy_ticks(tmp_path / "odd") is None
    (tmp_path / "bad").write_text("cpu 1 x 3\n", encoding="ascii")
    assert busy_ticks(tmp_path / "bad") is None
    assert busy_ticks() is not None  # this machine (Linux)


def test_the_meter_gives_average_busy_cores_between_start_and_stop(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 110.0])
    monkeypatch.setattr(_machine.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(_machine, "ticks_per_s", lambda: 100)
    stat = _stat(tmp_path / "stat", 100)
    meter = BusyMeter(stat)
    assert (meter.started, meter.stop()) == (False, None)
    meter.start()
    _stat(stat, 100 + 1_500)  # 15 s of CPU in 10 s: 1.5 cores busy
    assert (meter.started, meter.stop()) == (True, 1.5)


def test_no_figure_where_the_machine_cannot_be_read(tmp_path: Path) -> None:
    meter = BusyMeter(tmp_path / "missing")
    meter.start()
    assert meter.stop() is None
