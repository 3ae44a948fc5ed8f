"""How tongban's processes run gRPC: grpcio's older poller, not its EventEngine.

grpcio 1.85 moves every socket read to an EventEngine thread, which then hands the
completion to the thread waiting on the completion queue, which wakes the asyncio loop:
three threads per message. With its EventEngine experiments off (``GRPC_EXPERIMENTS``,
below) the completion-queue thread reads the sockets itself (iomgr's epoll1 poller):
one hand-off less per message. Measured on 2 cores with every tongban process one way
and then the other, turn about (``bench/results/profile-notes.md``, session 5):

- one request at a time through the hub: p50 1.96 against 2.24 ms (6 rounds, lower in each);
- 33 nodes at 64 in flight: 918 against 801 exchanges/s, 2,005 against 2,311 µs of CPU
  per exchange (4 rounds, higher in each); 3 nodes: 1,171 against 1,087/s in the same
  rounds, and no change in another run (1,556 against 1,542/s).

A bare gRPC relay gains from it too (one at a time 0.92 against 1.15 ms): ``make bench``
runs its baseline relay on grpcio's default and shows the relay on this polling beside it.

``GRPC_EXPERIMENTS`` is read once, when gRPC's core starts at ``import grpc``, so it
must be in a process's environment before anything imports grpc. The ``tongban``
command sets it first thing (:func:`apply`), and every process tongban starts gets it
in its environment (:func:`grpc_environment`, used by ``exchange._procs``). A
``GRPC_EXPERIMENTS`` already set is left alone: ``GRPC_EXPERIMENTS= tongban …`` runs
grpcio's default. Only grpcio lines where these experiments were measured get the
setting (:data:`MEASURED_GRPCIO`); elsewhere grpcio's default stands and
``tongban doctor`` says so.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping, MutableMapping
from importlib import metadata

__all__ = ["GRPC_EXPERIMENTS", "LEGACY_POLLING", "MEASURED_GRPCIO", "apply", "describe", "grpc_environment"]

GRPC_EXPERIMENTS = "GRPC_EXPERIMENTS"
#: grpcio's EventEngine experiments whose removal brings back its older polling.
LEGACY_POLLING = "-event_engine_client,-event_engine_listener,-event_engine_for_all_other_endpoints"
#: grpcio minor lines (``major.minor``) where those experiments exist and were measured.
MEASURED_GRPCIO = ("1.85",)


@functools.cache  # read from the installed metadata once, not at every child's start
def _grpcio_version() -> str | None:
    try:
        return metadata.version("grpcio")
    except metadata.PackageNotFoundError:
        return None


def _measured(version: str | None) -> bool:
    return version is not None and ".".join(version.split(".")[:2]) in MEASURED_GRPCIO


def grpc_environment(environ: Mapping[str, str] | None = None, *, version: str | None = None) -> dict[str, str]:
    """The entries tongban adds to the environment of a process it starts: its polling,
    unless ``GRPC_EXPERIMENTS`` is already set or grpcio is not a measured line."""
    env = os.environ if environ is None else environ
    version = _grpcio_version() if version is None else version
    if GRPC_EXPERIMENTS in env or not _measured(version):
        return {}
    return {GRPC_EXPERIMENTS: LEGACY_POLLING}


def apply(environ: MutableMapping[str, str] | None = None) -> bool:
    """Put tongban's polling into this process's environment; True when it takes effect
    here (False once grpc is imported: its core has read the environment already)."""
    env = os.environ if environ is None else environ
    env.update(grpc_environment(env))
    return "grpc" not in sys.modules


def describe(environ: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(whether the processes tongban starts run the polling it chose or the one the
    environment sets, a line saying which)."""
    env = os.environ if environ is None else environ
    version = _grpcio_version()
    ours = grpc_environment(env, version=version).get(GRPC_EXPERIMENTS)
    value = env.get(GRPC_EXPERIMENTS, ours)
    if value == LEGACY_POLLING:
        return True, f"grpcio {version}: its older polling (GRPC_EXPERIMENTS={LEGACY_POLLING})"
    if value is not None:
        return True, f"grpcio {version}: GRPC_EXPERIMENTS={value!r}, as set in the environment (not tongban's choice)"
    return False, (f"grpcio {version}: its default EventEngine (tongban's polling setting is measured on "
                   f"grpcio {', '.join(MEASURED_GRPCIO)} only)")
