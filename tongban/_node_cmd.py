"""``tongban node hub`` and ``tongban node province``: the options are checked here,
before anything starts (no server, no metrics endpoint, no event loop), so a bad
``--listen``, ``--hub`` or province code is one ``tongban: error: …`` line."""

from __future__ import annotations

import argparse
from pathlib import Path

from exchange.errors import ConfigError
from exchange.geo import HUB_CODE

__all__ = ["check_endpoint", "check_node_args", "check_province_codes", "cmd_node"]


def check_endpoint(option: str, text: str, *, lowest_port: int = 0) -> str:
    """``text`` if it is HOST:PORT (HOST may be ``[v6]``) with a port from ``lowest_port``
    to 65535; otherwise a ConfigError naming ``option``, what it expects and ``text``."""
    host, colon, port = text.rpartition(":")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    ok = (colon and bare and not any(c.isspace() for c in host) and port.isascii() and port.isdigit()
          and lowest_port <= int(port) <= 65535)
    if not ok:
        raise ConfigError(f"{option}: expected HOST:PORT with a port {lowest_port}-65535, found {text!r}")
    return text


def check_province_codes(codes: list[str], pki_dir: Path) -> None:
    """ConfigError unless every code names a province node of the PKI in ``pki_dir``, once."""
    from certs.pki import load_pki_manifest

    known = [c for c in load_pki_manifest(pki_dir)["codes"] if c != HUB_CODE]
    seen: set[str] = set()
    for code in codes:
        if code == HUB_CODE:
            raise ConfigError(f"{HUB_CODE} is the hub: start it with `tongban node hub`")
        if code not in known:
            raise ConfigError(f"{code} is not a node of this PKI (it has: {', '.join(known)})")
        if code in seen:
            raise ConfigError(f"{code} is given twice: expected each province code once")
        seen.add(code)


def check_node_args(a: argparse.Namespace) -> None:
    """Every check ``tongban node`` makes before it starts anything."""
    check_endpoint("--listen", a.listen)
    if not 0 < a.request_timeout <= 3600:
        raise ConfigError(f"--request-timeout: expected seconds in (0, 3600], found {a.request_timeout:g}")
    if a.role == "province":
        check_endpoint("--hub", a.hub, lowest_port=1)
        if len(a.codes) > 1 and int(a.listen.rpartition(":")[2]) != 0:
            raise ConfigError(f"--listen: several provinces in one process need port 0 (each gets a free "
                              f"port), found {a.listen!r}")
        check_province_codes(a.codes, a.pki)


def cmd_node(a: argparse.Namespace) -> int:
    check_node_args(a)
    from nodes.process import run_hub, run_provinces

    metrics_port = a.metrics_port or None  # 0: off
    if a.role == "hub":
        run_hub(pki_dir=a.pki, data_dir=a.data, listen=a.listen, links=a.links, topology=a.topology,
                metrics_port=metrics_port, transport=a.transport, tls_gate=a.tls_gate,
                request_timeout_s=a.request_timeout)
    else:
        run_provinces(codes=a.codes, pki_dir=a.pki, data_dir=a.data, listen=a.listen, hub=a.hub, links=a.links,
                      metrics_port=metrics_port, transport=a.transport, tls_gate=a.tls_gate, cohost=a.cohost,
                      request_timeout_s=a.request_timeout)
    return 0
