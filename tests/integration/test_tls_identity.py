"""Key separation at the TLS layer: a node's signing or issuing-authority certificate is
no TLS identity, whoever does the handshake.

The TLS gate's own refusals are in test_tls_gate.py. Here: grpcio's TLS (``--no-tls-gate``)
on a node's server, ``peer_code`` (what every handler compares with an envelope's sender),
a real hub's ``Exchange`` over grpcio's TLS, and a node as the client of a server that
presents its signing certificate. "old": a certificate as a PKI made before the signing
profiles carried an EKU (tests/legacy_pki.py): no EKU at all, which OpenSSL takes for
any purpose.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from certs.pki import HUB_CODE, load_node_credentials
from exchange import payloads
from exchange.dsse import seal
from exchange.header import make_header
from exchange.ledger import read_entries
from nodes import _grpc
from nodes._grpc import TlsMaterial, channel_credentials, open_channel, peer_code, start_server
from nodes.hub import HubNode
from tests.integration.conftest import Country, copy_world, running
from tests.legacy_pki import without_eku
from tongban.v1 import identity_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration

ME = "440000"
WHO = "/tongban.test.Who/Am"
#: what a client refused in the handshake sees: the server ended the connection (grpc words
#: the tail as the timing falls: "Socket closed", "Secure read failed (Socket closed)",
#: "Secure read failed (recvmsg:Connection reset by peer)"; the refusal's reason is the
#: server's to record, see test_tls_gate.py)
HANDSHAKE = re.compile(r"failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127\.0\.0\.1:(\d+): "
                       r"(Secure read failed \()?(Socket closed|recvmsg:Connection reset by peer)\)?")


def credentials(pki: Path, kind: str) -> tuple[bytes, bytes]:
    """(chain, key) of 440000's ``kind`` certificate: tls, sign, issuer, old-sign, old-issuer."""
    node = pki / "nodes" / ME
    if kind.startswith("old-"):
        _, chain, key = without_eku(pki, ME, kind[4:])
        return chain, key
    return (node / f"{kind}.crt").read_bytes() + (node / "chain.pem").read_bytes(), (node / f"{kind}.key").read_bytes()


def _who_service() -> tuple[object, None, str]:
    """A service answering each call with the caller's ``peer_code``, as start_server takes it."""
    async def am(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return peer_code(context).encode()

    def add(_: None, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "tongban.test.Who", {"Am": grpc.unary_unary_rpc_method_handler(am)}),))
    return add, None, "tongban.test.Who"


async def _who(pki: Path, kind: str, *, gate: bool) -> tuple[grpc.StatusCode, str, int]:
    """(status, answer or details, port) of a call to the hub's server as 440000's ``kind`` certificate."""
    hub = load_node_credentials(pki, HUB_CODE)
    served = await start_server(tls=TlsMaterial(hub.tls_key_pem, hub.tls_chain_pem, hub.root_pem),
                                listen="127.0.0.1:0", services=[_who_service()], gate=gate)
    try:
        chain, key = credentials(pki, kind)
        creds = channel_credentials(key_pem=key, chain_pem=chain, root_pem=hub.root_pem)
        async with open_channel(f"127.0.0.1:{served.port}", creds, peer=HUB_CODE) as ch:
            try:
                answer = await ch.unary_unary(WHO)(b"", timeout=10)
            except grpc.aio.AioRpcError as e:
                return e.code(), e.details() or "", served.port
            return grpc.StatusCode.OK, answer.decode(), served.port
    finally:
        await served.stop(None)


@pytest.mark.parametrize("gate", [True, False], ids=["gate", "grpcio-tls"])
def test_a_nodes_tls_certificate_is_its_identity(pki_dir: Path, gate: bool) -> None:
    assert asyncio.run(_who(pki_dir, "tls", gate=gate))[:2] == (grpc.StatusCode.OK, ME)


@pytest.mark.parametrize("kind", ["sign", "issuer"])
@pytest.mark.parametrize("gate", [True, False], ids=["gate", "grpcio-tls"])
def test_signing_certificates_fail_the_handshake(pki_dir: Path, gate: bool, kind: str) -> None:
    """The reviewer's finding: 440000's sign.crt or issuer.crt used to pass for 440000."""
    status, details, port = asyncio.run(_who(pki_dir, kind, gate=gate))
    assert status == grpc.StatusCode.UNAVAILABLE
    seen = HANDSHAKE.fullmatch(details)
    assert seen is not None and seen[1] == str(port), details


@pytest.mark.parametrize("kind", ["old-sign", "old-issuer"])
def test_an_older_pkis_signing_certificate_passes_grpcio_tls_but_is_nobody(pki_dir: Path, kind: str) -> None:
    """Without an EKU, grpcio's TLS takes the certificate; peer_code does not take it for 440000."""
    assert asyncio.run(_who(pki_dir, kind, gate=False))[:2] == (grpc.StatusCode.OK,
                                                               f"?{ME} (not a TLS certificate)")


def test_identity_of_each_certificate(pki_dir: Path) -> None:
    window = (pki_dir / "clients" / "window" / "tls.crt").read_bytes()
    node = pki_dir / "nodes" / ME
    assert _grpc._identity((node / "tls.crt").read_bytes()) == ME
    assert _grpc._identity(window) == "window"
    for kind in ("sign", "issuer"):
        assert _grpc._identity((node / f"{kind}.crt").read_bytes()) == f"?{ME} (not a TLS certificate)"
        assert _grpc._identity(without_eku(pki_dir, ME, kind)[0]) == f"?{ME} (not a TLS certificate)"


def test_a_node_as_client_refuses_a_server_presenting_a_signing_certificate(pki_dir: Path) -> None:
    """The other direction: a server that answers with the hub's sign.crt is not the hub."""
    async def go() -> tuple[grpc.StatusCode, str, int]:
        me = load_node_credentials(pki_dir, ME)
        node = pki_dir / "nodes" / HUB_CODE
        chain = (node / "sign.crt").read_bytes() + (node / "chain.pem").read_bytes()
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "tongban.test.Who", {"Am": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"hub")}),))
        port = server.add_secure_port("127.0.0.1:0", _grpc.server_credentials(
            key_pem=(node / "sign.key").read_bytes(), chain_pem=chain, root_pem=me.root_pem))
        await server.start()
        try:
            creds = channel_credentials(key_pem=me.tls_key_pem, chain_pem=me.tls_chain_pem, root_pem=me.root_pem)
            async with open_channel(f"127.0.0.1:{port}", creds, peer=HUB_CODE) as ch:
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await ch.unary_unary(WHO)(b"", timeout=10)
            return e.value.code(), e.value.details() or "", port
        finally:
            await server.stop(None)

    status, details, port = asyncio.run(go())
    assert status == grpc.StatusCode.UNAVAILABLE
    # grpc appends the status of its last attempt (": OK") to BoringSSL's words
    assert details.startswith(f"failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:{port}: "
                              "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL "
                              "routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: unsupported certificate purpose"
                              ), details


class HubOnly(Country):
    """The hub serving with grpcio's TLS (``--no-tls-gate``), and 440000 registered with it."""

    async def _make_hub(self) -> HubNode:
        return HubNode(pki_dir=self.pki, data_dir=self.data, tls_gate=False)


@pytest.fixture()
def hub_without_gate(pki_dir: Path, world_dir: Path, tmp_path: Path) -> Iterator[HubOnly]:
    yield from running(HubOnly(pki_dir, copy_world(world_dir, tmp_path), provinces=(ME,)))


def test_exchange_over_an_older_pkis_signing_certificate_is_refused_as_peer_identity(
        pki_dir: Path, hub_without_gate: HubOnly) -> None:
    """The reviewer's reproduction, with grpcio's TLS and an older PKI: 440000's valid
    envelope over a TLS connection authenticated by 440000's signing certificate."""
    header = make_header(sender=ME, receiver="", now_ns=time.time_ns(), lifetime_ms=30_000,
                         purpose="跨省通办 安全测试", holder_id="110101199001011237")
    body = identity_pb2.IdentityVerifyRequest(header=header, name="张三").SerializeToString()
    env = seal(payloads.request_type_of("identity.verify"), body, load_node_credentials(pki_dir, ME).sign_signer).to_pb()
    chain, key = credentials(pki_dir, "old-sign")
    creds = grpc.ssl_channel_credentials(load_node_credentials(pki_dir, ME).root_pem, key, chain)
    options = [("grpc.ssl_target_name_override", f"node-{HUB_CODE}.tongban.test")]
    with grpc.secure_channel(hub_without_gate.hub_target, creds, options=options) as ch, \
            pytest.raises(grpc.RpcError) as e:
        services_pb2_grpc.HubServiceStub(ch).Exchange(services_pb2.ExchangeRequest(envelope=env), timeout=10)
    message = f"envelope signed by {ME}, but the TLS peer is '?{ME} (not a TLS certificate)': expected the sender itself"
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, message)
    hub_without_gate.flush_ledgers()
    rows = [r.entry for r in read_entries(hub_without_gate.data / f"{HUB_CODE}.sqlite", direction="rejected",
                                          outcome="peer_identity")]
    assert [(r.message_id, r.peer, r.reason) for r in rows] == [
        (header.message_id, f"?{ME} (not a TLS certificate)", message)]
