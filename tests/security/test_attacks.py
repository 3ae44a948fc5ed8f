"""The attack catalogue: one table, every row an attack on running nodes over mTLS.

Each row names the attack, the function that performs it, the gRPC status and the
exact message the attacker sees (``{*}`` marks a part that is random, such as the
time of the refusal), and the node whose ledger must hold the rejection under
which reason code. After every row the attacked node must still serve a normal
ecert.fetch. Rows with ``ledger=None`` are refused by the TLS transport (or carry
no envelope at all), so no tongban code runs and nothing can be ledgered.

Most rows run against the module's ordinary ``country``. The rows that need a
misbehaving party (a hub that alters payloads, a province that binds its answer
to another request, a province whose directory has expired) or that change the
hub's state for good (revocation, access rules) run against ``rogue``: a second
country whose hub is a :class:`TamperingHub` and whose 110000 is a
:class:`RogueProvince`, both honest until a test switches them.

A row whose behaviour is wrong today carries ``bug=``: it is written as it should
behave and marked ``xfail(strict=True)`` with the reason and the proposed fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certs.pki import (HUB_CODE, issue_leaf, load_certificate_pem, load_client_credentials, load_node_credentials,
                       make_foreign_pki)
from exchange import payloads
from exchange.dsse import DsseEnvelope, seal
from exchange.header import make_header
from exchange.keys import Signer, load_private_key_pem
from exchange.ledger import LedgerEntry, read_entries
from nodes.hub import DEFAULT_ACCESS_RULES, HubNode
from nodes.province import ProvinceNode
from tests.integration.conftest import Country, copy_world, running
from tests.integration.test_exchange import _a_certificate, _a_person, fetch_ok, submit
from tongban.v1 import directory_pb2, ecert_pb2, envelope_pb2, header_pb2, identity_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration

OK = grpc.StatusCode.OK
ORIGIN, TARGET, OTHER = "440000", "110000", "510000"
MAX_ENVELOPE = 4 * 1024 * 1024  # the directory's policy (exchange.directory.DEFAULT_POLICY)
MAX_GRPC = 8 * 1024 * 1024  # the transport's limit (nodes._grpc.MAX_GRPC_MESSAGE_BYTES)
WILD = "{*}"


# -- misbehaving nodes -------------------------------------------------------------

class TamperingHub(HubNode):
    """A hub that, while ``tamper`` is set, alters every payload it forwards
    (flips the payload's last byte on the way out, over the stream or a unary call)."""

    tamper = False

    async def _send(self, route: Any, env: envelope_pb2.Envelope, timeout_s: float) -> Any:
        if self.tamper:
            altered = envelope_pb2.Envelope()
            altered.CopyFrom(env)
            body = bytearray(altered.payload)
            body[-1] ^= 0x01  # the last character of subject.cert_type: still valid UTF-8
            altered.payload = bytes(body)
            env = altered
        return await super()._send(route, env, timeout_s)


class RogueProvince(ProvinceNode):
    """A province that, while ``bind_to`` is set, answers with that request digest
    (correctly signed by itself, but bound to another request)."""

    bind_to: bytes | None = None

    async def handle(self, env: envelope_pb2.Envelope, peer: str,
                     timeout_s: float | None = None) -> envelope_pb2.Envelope:
        out = await super().handle(env, peer, timeout_s)
        if self.bind_to is None:
            return out
        msg = payloads.parse_payload(out.payload_type, out.payload)
        msg.header.request_digest = self.bind_to  # type: ignore[attr-defined]
        return seal(out.payload_type, msg.SerializeToString(), self.core.signer).to_pb()


class RogueCountry(Country):
    """The test country with a TamperingHub and, as 110000, a RogueProvince whose
    clock can be moved forward (``skew_ns``)."""

    def __init__(self, pki: Path, data: Path) -> None:
        self.skew_ns = 0
        super().__init__(pki, data)

    async def _make_hub(self) -> HubNode:
        return TamperingHub(pki_dir=self.pki, data_dir=self.data)

    async def _make_province(self, code: str) -> ProvinceNode:
        if code != TARGET:
            return await super()._make_province(code)
        return RogueProvince(code=code, pki_dir=self.pki, data_dir=self.data, hub=self.hub_target,
                             clock=lambda: time.time_ns() + self.skew_ns)


@pytest.fixture(scope="module")
def rogue(pki_dir: Path, world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RogueCountry]:
    yield from running(RogueCountry(pki_dir, copy_world(world_dir, tmp_path_factory.mktemp("rogue"))))


# -- the shape of a row ----------------------------------------------------------

@dataclass(frozen=True)
class Ctx:
    country: Country
    tmp: Path


@dataclass(frozen=True)
class Seen:
    """What the attacker saw, the values the expected message needs, and the
    ledger field/value identifying the attacking envelope."""

    status: grpc.StatusCode
    details: str
    values: dict[str, Any] = field(default_factory=dict)
    match: tuple[str, str] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    attack: Callable[[Ctx], Seen]
    status: grpc.StatusCode
    message: str  # str.format template over Seen.values; "{*}" matches any text
    ledger: tuple[str, str] | None  # (node, outcome): a "rejected" row; "ok": "received", "retry": "forwarded"
    where: str = "country"  # or "rogue"
    bug: str = ""


def _matches(template: str, values: dict[str, Any], details: str) -> bool:
    parts = [re.escape(p.format(**values)) for p in template.split(WILD)]
    return re.fullmatch(".*".join(parts), details, flags=re.DOTALL) is not None


# -- helpers -------------------------------------------------------------------------

def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _env_sha(env: envelope_pb2.Envelope) -> str:
    return _sha(env.SerializeToString())


def _signer(ctx: Ctx, code: str = ORIGIN) -> Signer:
    return load_node_credentials(ctx.country.pki, code).sign_signer


def _kid(ctx: Ctx, code: str) -> str:
    return _signer(ctx, code).keyid


def _rpc(fn: Callable[[], Any]) -> tuple[grpc.StatusCode, str, Any]:
    try:
        return OK, "", fn()
    except grpc.RpcError as e:
        return e.code(), e.details() or "", None


def to_hub(ctx: Ctx, env: envelope_pb2.Envelope, *, tls: str = ORIGIN) -> tuple[grpc.StatusCode, str, Any]:
    """HubService.Exchange over mTLS as node ``tls``."""
    with ctx.country.node_channel(tls) as ch:
        stub = services_pb2_grpc.HubServiceStub(ch)
        return _rpc(lambda: stub.Exchange(services_pb2.ExchangeRequest(envelope=env), timeout=10))


def to_province(ctx: Ctx, env: envelope_pb2.Envelope, *, code: str = TARGET,
                tls: str = ORIGIN) -> tuple[grpc.StatusCode, str, Any]:
    """NodeService.Handle of province ``code`` over mTLS as node ``tls`` (skipping the hub)."""
    target = ctx.country.provinces[code].endpoint
    with ctx.country.node_channel(tls, target=target, peer=code) as ch:
        stub = services_pb2_grpc.NodeServiceStub(ch)
        return _rpc(lambda: stub.Handle(services_pb2.HandleRequest(envelope=env), timeout=10))


def raw_to_hub(ctx: Ctx, data: bytes, *, tls: str = ORIGIN) -> tuple[grpc.StatusCode, str]:
    """Arbitrary bytes as the body of HubService.Exchange."""
    with ctx.country.node_channel(tls) as ch:
        fn = ch.unary_unary("/tongban.v1.HubService/Exchange", request_serializer=None, response_deserializer=None)
        status, details, _ = _rpc(lambda: fn(data, timeout=10))
        return status, details


def _set(msg: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        msg = getattr(msg, p)
    setattr(msg, last, value)


@dataclass(frozen=True)
class Built:
    env: envelope_pb2.Envelope
    header: header_pb2.Header
    body: bytes

    @property
    def mid(self) -> str:
        return self.header.message_id

    def seen(self, r: tuple[grpc.StatusCode, str, Any], match: str = "message_id", **values: Any) -> Seen:
        key = {"message_id": self.mid, "envelope_sha256": _env_sha(self.env)}[match]
        return Seen(r[0], r[1], {"mid": self.mid, **values}, (match, key))


def build(ctx: Ctx, *, flow: str = "ecert.fetch", sender: str = ORIGIN, receiver: str = "",
          signer: Signer | None = None, media: str | None = None, now_ns: int | None = None,
          lifetime_ms: int = 30_000, header: dict[str, Any] | None = None,
          body: dict[str, Any] | None = None) -> Built:
    """A request from ``sender`` about a holder of 110000, sealed by ``signer``
    (default: the sender's own key); ``header``/``body`` override fields by dotted path."""
    c = ctx.country
    if flow == "ecert.fetch":
        cert = _a_certificate(c, TARGET)
        holder, cert_type = cert.holder_code, cert.type_code
    else:
        holder, cert_type = _a_person(c, TARGET).id_number, ""
    h = make_header(sender=sender, receiver=receiver, now_ns=now_ns or time.time_ns(), lifetime_ms=lifetime_ms,
                    purpose="跨省通办 安全测试", holder_id=holder, cert_type=cert_type)
    for path, value in (header or {}).items():
        _set(h, path, value)
    msg: Any = (ecert_pb2.EcertFetchRequest(header=h) if flow == "ecert.fetch"
                else identity_pb2.IdentityVerifyRequest(header=h, name="张三"))
    for path, value in (body or {}).items():
        _set(msg, path, value)
    data = msg.SerializeToString()
    media = media or payloads.request_type_of(flow)
    env = seal(media, data, signer or _signer(ctx, sender)).to_pb()
    return Built(env, h, data)


def _with_bad_utf8(ctx: Ctx, *, flow: str, where: str) -> Built:
    """A correctly signed request whose text field ``where`` holds bytes that are not UTF-8."""
    marker = "ZQZQZQZQ"
    b = build(ctx, flow=flow, header={"purpose": marker} if where == "header" else None,
              body={"name": marker} if where == "body" else None)
    data = b.body.replace(marker.encode(), b"\xff\xfe\xc3\x28\xed\xa0\x80Z")  # same length, never UTF-8
    return Built(seal(b.env.payload_type, data, _signer(ctx)).to_pb(), b.header, data)


def _async(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    async def run() -> Any:
        return fn(*args, **kw)
    return run()


def _refresh_all(c: Country) -> None:
    for node in c.provinces.values():
        c.call(node.refresh_directory())


def _handshake(ctx: Ctx, *, chain: bytes | None, key: bytes | None, target: str | None = None,
               peer: str = HUB_CODE) -> Seen:
    root = load_node_credentials(ctx.country.pki, HUB_CODE).root_pem
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    before = len(_tls_rows(ctx.country, peer))
    with grpc.secure_channel(target or ctx.country.hub_target, creds,
                             options=[("grpc.ssl_target_name_override", f"node-{peer}.tongban.test")]) as ch:
        status, details, _ = _rpc(lambda: health_pb2_grpc.HealthStub(ch).Check(  # every node serves it
            health_pb2.HealthCheckRequest(), timeout=5))
    return Seen(status, details, {"target": target or ctx.country.hub_target, "node": peer, "before": before})


def _tls_rows(c: Country, node: str) -> list[LedgerEntry]:
    """The refused handshakes in ``node``'s ledger (written by its TLS gate)."""
    c.flush_ledgers()
    return [r.entry for r in read_entries(c.data / f"{node}.sqlite", direction="rejected")
            if r.entry.outcome.startswith("tls_")]


#: What the TLS gate ledgers for each refused handshake ({peer}: the client's address).
_WANT_CERT = "TLS handshake from {peer} refused: expected a client certificate issued under the tongban national root CA, "
TLS_REASONS = {
    "tls_no_client_cert": _WANT_CERT + "found none",
    "tls_unknown_ca": _WANT_CERT + "found one from another authority ({WILD})",
    "tls_cert_expired": _WANT_CERT + "found a certificate that has expired",
    "tls_not_tls_cert": "TLS handshake from {peer} refused: expected a TLS client certificate (extended key usage "
                        "clientAuth), found a certificate that is not a TLS certificate ({WILD})",
}


# -- transport: refused at the TLS handshake ------------------------------------

def no_client_certificate(ctx: Ctx) -> Seen:
    return _handshake(ctx, chain=None, key=None)


def no_client_certificate_at_a_province(ctx: Ctx) -> Seen:
    return _handshake(ctx, chain=None, key=None, target=ctx.country.provinces[TARGET].endpoint, peer=TARGET)


def foreign_ca_certificate(ctx: Ctx) -> Seen:
    foreign = load_node_credentials(make_foreign_pki(ctx.tmp / "foreign", ORIGIN).root, ORIGIN)
    return _handshake(ctx, chain=foreign.tls_chain_pem, key=foreign.tls_key_pem)


def expired_tls_certificate(ctx: Ctx) -> Seen:
    out = ctx.tmp / "expired"
    issue_leaf(ctx.country.pki, ORIGIN, "tls", now=datetime.now(UTC) - timedelta(days=30), valid_days=1,
               out_dir=out)
    chain = (out / "tls.crt").read_bytes() + (out / "chain.pem").read_bytes()  # leaf, intermediate, root
    return _handshake(ctx, chain=chain, key=(out / "tls.key").read_bytes())


def _not_tls_certificate(kind: str) -> Callable[[Ctx], Seen]:
    """440000's own ``kind`` certificate (sign: envelopes; issuer: e-certificates) as its TLS identity."""
    def attack(ctx: Ctx) -> Seen:
        node = ctx.country.pki / "nodes" / ORIGIN
        return _handshake(ctx, chain=(node / f"{kind}.crt").read_bytes() + (node / "chain.pem").read_bytes(),
                          key=(node / f"{kind}.key").read_bytes())
    return attack


def transport_oversize(ctx: Ctx) -> Seen:
    env = envelope_pb2.Envelope(payload_type=payloads.ECERT_REQUEST, payload=b"\0" * (9 * 1024 * 1024))
    size = services_pb2.ExchangeRequest(envelope=env).ByteSize()
    status, details, _ = to_hub(ctx, env)
    return Seen(status, details, {"size": size})


# -- identity: who may speak, with which key ---------------------------------------

def unlisted_signing_key(ctx: Ctx) -> Seen:
    rogue_key = Signer.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    b = build(ctx, signer=rogue_key)
    return b.seen(to_hub(ctx, b.env), kid=rogue_key.keyid[:16], known=_kid(ctx, ORIGIN)[:12],
                  v=ctx.country.hub.version, sender=ORIGIN)


def issuing_key_used_to_sign_messages(ctx: Ctx) -> Seen:
    issuer = load_node_credentials(ctx.country.pki, ORIGIN).issuer_signer
    assert issuer is not None
    b = build(ctx, signer=issuer)
    return b.seen(to_hub(ctx, b.env), kid=issuer.keyid[:16], known=_kid(ctx, ORIGIN)[:12],
                  v=ctx.country.hub.version, sender=ORIGIN)


def sender_claims_another_province(ctx: Ctx) -> Seen:
    # 440000 signs with its own key but writes 510000 as the sender
    b = build(ctx, header={"sender": "510000"})
    return b.seen(to_hub(ctx, b.env), kid=_kid(ctx, ORIGIN)[:16], known=_kid(ctx, "510000")[:12],
                  v=ctx.country.hub.version, sender="510000")


def envelope_relayed_by_another_tls_peer(ctx: Ctx) -> Seen:
    b = build(ctx)  # correctly signed by 440000, sent over 510000's connection
    return b.seen(to_hub(ctx, b.env, tls="510000"))


def window_client_calling_the_hub(ctx: Ctx) -> Seen:
    b = build(ctx)
    chain, key, root = load_client_credentials(ctx.country.pki)
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    with grpc.secure_channel(ctx.country.hub_target, creds,
                             options=[("grpc.ssl_target_name_override", "node-000000.tongban.test")]) as ch:
        stub = services_pb2_grpc.HubServiceStub(ch)
        r = _rpc(lambda: stub.Exchange(services_pb2.ExchangeRequest(envelope=b.env), timeout=10))
    return b.seen(r)


def node_calling_a_window_service(ctx: Ctx) -> Seen:
    target = ctx.country.provinces[TARGET].endpoint
    with ctx.country.node_channel(ORIGIN, target=target, peer=TARGET) as ch:
        stub = services_pb2_grpc.WindowServiceStub(ch)
        status, details, _ = _rpc(lambda: stub.Submit(services_pb2.SubmitRequest(flow="ecert.fetch"), timeout=10))
    return Seen(status, details)


def _minted_by_a_province(ctx: Ctx, cn: str) -> grpc.ChannelCredentials:
    """A TLS certificate with common name ``cn`` issued by 440000's own intermediate CA:
    something every province can make, since each runs its intermediate."""
    out = ctx.tmp / f"minted-{cn}"
    issue_leaf(ctx.country.pki, cn, "tls", issuer_code=ORIGIN, out_dir=out)
    root = load_node_credentials(ctx.country.pki, HUB_CODE).root_pem
    chain = (out / "tls.crt").read_bytes() + (out / "chain.pem").read_bytes()
    return grpc.ssl_channel_credentials(root_certificates=root, private_key=(out / "tls.key").read_bytes(),
                                        certificate_chain=chain)


def window_certificate_minted_by_a_province(ctx: Ctx) -> Seen:
    # 440000 asks 110000's service window to fetch a 510000 citizen's certificate: 110000 would
    # sign the request as its own and hand the answer back to 440000
    cert = _a_certificate(ctx.country, OTHER)
    with grpc.secure_channel(ctx.country.provinces[TARGET].endpoint, _minted_by_a_province(ctx, "window"),
                             options=[("grpc.ssl_target_name_override", f"node-{TARGET}.tongban.test")]) as ch:
        stub = services_pb2_grpc.WindowServiceStub(ch)
        status, details, reply = _rpc(lambda: stub.Submit(services_pb2.SubmitRequest(
            flow="ecert.fetch", purpose="跨省通办 安全测试",
            subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code)), timeout=10))
    return Seen(status, details, {"outcome": reply.outcome if reply else ""})


def hub_identity_minted_by_a_province(ctx: Ctx) -> Seen:
    # 440000 presents "000000" to 110000 to pass for the hub and skip it (star topology)
    b = build(ctx, receiver=TARGET)
    with grpc.secure_channel(ctx.country.provinces[TARGET].endpoint, _minted_by_a_province(ctx, HUB_CODE),
                             options=[("grpc.ssl_target_name_override", f"node-{TARGET}.tongban.test")]) as ch:
        stub = services_pb2_grpc.NodeServiceStub(ch)
        r = _rpc(lambda: stub.Handle(services_pb2.HandleRequest(envelope=b.env), timeout=10))
    return b.seen(r)


def revoked_key(ctx: Ctx) -> Seen:
    c = ctx.country
    kid = _kid(ctx, "510000")
    version = c.call(_async(c.hub.revoke, kid, reason="key compromise"))  # permanent: rogue country, last row
    b = build(ctx, sender="510000")
    return b.seen(to_hub(ctx, b.env, tls="510000"), kid=kid[:12], v=version)


# -- signatures ----------------------------------------------------------------------

def signature_over_another_payload(ctx: Ctx) -> Seen:
    signed, other = build(ctx), build(ctx)
    env = envelope_pb2.Envelope()
    env.CopyFrom(signed.env)
    env.payload = other.env.payload  # the right key's valid signature, over different bytes
    b = Built(env, other.header, other.body)
    return b.seen(to_hub(ctx, env), kid=_kid(ctx, ORIGIN)[:12])


def _resigned(ctx: Ctx, sigs: Callable[[envelope_pb2.Signature], list[envelope_pb2.Signature]]) -> Seen:
    b = build(ctx)
    env = envelope_pb2.Envelope(payload_type=b.env.payload_type, payload=b.env.payload,
                                signatures=sigs(b.env.signatures[0]))
    b = Built(env, b.header, b.body)
    return b.seen(to_hub(ctx, env), n=len(env.signatures))


def zero_signatures(ctx: Ctx) -> Seen:
    return _resigned(ctx, lambda s: [])


def duplicated_signatures(ctx: Ctx) -> Seen:
    return _resigned(ctx, lambda s: [s, s])


def extra_unknown_signature(ctx: Ctx) -> Seen:
    return _resigned(ctx, lambda s: [s, envelope_pb2.Signature(keyid="ab" * 32, sig=b"\x30" * 70)])


def tampered_by_the_hub(ctx: Ctx) -> Seen:
    hub = ctx.country.hub
    assert isinstance(hub, TamperingHub)
    b = build(ctx)
    hub.tamper = True
    try:
        r = to_hub(ctx, b.env)
    finally:
        hub.tamper = False
    return b.seen(r, kid=_kid(ctx, ORIGIN)[:12])


# -- payload type, size, encoding ----------------------------------------------------

#: every media type exchange.payloads exports (flows are being added: read them, do not list them)
KNOWN_TYPES = ", ".join(sorted(v for v in (getattr(payloads, n) for n in payloads.__all__)
                               if isinstance(v, str) and v.startswith("application/vnd.tongban.")))


def request_sealed_as_response(ctx: Ctx) -> Seen:
    b = build(ctx, media=payloads.ECERT_RESPONSE)
    return b.seen(to_hub(ctx, b.env))


def request_sealed_as_document(ctx: Ctx) -> Seen:
    b = build(ctx, media=payloads.ECERT)
    return b.seen(to_hub(ctx, b.env))


def unknown_payload_type(ctx: Ctx) -> Seen:
    b = build(ctx, media="application/vnd.evil.v1+proto")
    return b.seen(to_hub(ctx, b.env), match="envelope_sha256")


def registration_sent_as_exchange(ctx: Ctx) -> Seen:
    h = make_header(sender=ORIGIN, receiver=HUB_CODE, now_ns=time.time_ns(), lifetime_ms=30_000,
                    purpose="register node endpoint")
    data = directory_pb2.Registration(header=h, endpoint="127.0.0.1:1").SerializeToString()
    b = Built(seal(payloads.REGISTRATION, data, _signer(ctx)).to_pb(), h, data)
    return b.seen(to_hub(ctx, b.env), v=ctx.country.hub.version)


def oversize_envelope(ctx: Ctx) -> Seen:
    b = build(ctx, body={"identifier": "x" * (5 * 1024 * 1024)})
    return b.seen(to_hub(ctx, b.env), size=b.env.ByteSize())


def malformed_payload(ctx: Ctx) -> Seen:
    env = seal(payloads.ECERT_REQUEST, b"\xff\xff\xff\xff", _signer(ctx)).to_pb()
    status, details, _ = to_hub(ctx, env)
    return Seen(status, details, {}, ("envelope_sha256", _env_sha(env)))


def malformed_request_message(ctx: Ctx) -> Seen:
    data = b"\x0a\x05\xff\xff\xff\xff\xff"  # ExchangeRequest.envelope: a length-delimited field of junk
    return Seen(*raw_to_hub(ctx, data), {}, ("envelope_sha256", _sha(data)))


def bad_utf8_in_envelope_payload_type(ctx: Ctx) -> Seen:
    b = build(ctx)
    env = envelope_pb2.Envelope()
    env.CopyFrom(b.env)
    env.payload_type = "ZQ" * (len(env.payload_type) // 2) + "Z" * (len(env.payload_type) % 2)
    data = services_pb2.ExchangeRequest(envelope=env).SerializeToString()
    data = data.replace(env.payload_type.encode(), b"\xff" * len(env.payload_type))
    return Seen(*raw_to_hub(ctx, data), {}, ("envelope_sha256", _sha(data)))


def bad_utf8_in_header(ctx: Ctx) -> Seen:
    b = _with_bad_utf8(ctx, flow="ecert.fetch", where="header")
    return b.seen(to_hub(ctx, b.env), match="envelope_sha256", n=len(b.body))


def bad_utf8_in_payload(ctx: Ctx) -> Seen:
    b = _with_bad_utf8(ctx, flow="identity.verify", where="body")
    return b.seen(to_hub(ctx, b.env), n=len(b.body))


# -- header: time, address, replay ---------------------------------------------------

def expired_header(ctx: Ctx) -> Seen:
    b = build(ctx, now_ns=time.time_ns() - 120 * 10**9)
    return b.seen(to_hub(ctx, b.env), expired=b.header.expires_at.ToJsonString())


def header_from_the_future(ctx: Ctx) -> Seen:
    b = build(ctx, now_ns=time.time_ns() + 120 * 10**9)
    return b.seen(to_hub(ctx, b.env), issued=b.header.issued_at.ToJsonString())


def lifetime_beyond_policy(ctx: Ctx) -> Seen:
    b = build(ctx, lifetime_ms=86_400_000)
    return b.seen(to_hub(ctx, b.env))


def receiver_mismatch(ctx: Ctx) -> Seen:
    b = build(ctx, receiver="510000")  # addressed to 510000, delivered to 110000 directly
    return b.seen(to_province(ctx, b.env))


def request_skipping_the_hub(ctx: Ctx) -> Seen:
    b = build(ctx, receiver=TARGET)  # correct in every way, but sent to 110000 directly
    d = ctx.country.provinces[TARGET].core.current_directory()
    return b.seen(to_province(ctx, b.env), v=d.version, topology=d.topology)


def _captured(ctx: Ctx) -> services_pb2.SubmitResponse:
    """A real exchange 440000 -> 110000 through the hub, as a service window made it."""
    cert = _a_certificate(ctx.country, TARGET)
    reply = submit(ctx.country, ORIGIN, flow="ecert.fetch",
                   subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code))
    assert reply.outcome == "ok", reply.detail
    return reply


def _received(ctx: Ctx, node: str, message_id: str) -> int:
    ctx.country.flush_ledgers()
    return len(read_entries(ctx.country.data / f"{node}.sqlite", direction="received", message_id=message_id))


def replay_to_the_hub(ctx: Ctx) -> Seen:
    """The captured request again, byte for byte, by its own sender (the only TLS peer the hub
    takes it from): an idempotent retry. The hub answers with the recorded response and does
    not forward it again (nodes/admission.py)."""
    window = _captured(ctx)
    env = window.request
    header = payloads.parse_routed(env.payload_type, env.payload).header
    r = to_hub(ctx, env)
    if r[0] == OK:
        assert r[2].envelope == window.response  # the recorded answer, not a new one
    assert _received(ctx, TARGET, header.message_id) == 1  # 110000 processed it once
    return Seen(r[0], r[1], {"mid": header.message_id},
                ("request_digest", DsseEnvelope.from_pb(env).digest().hex()))


def replay_by_another_node(ctx: Ctx) -> Seen:
    """The captured request submitted by 510000 (say, after a leak): never a retry."""
    env = _captured(ctx).request
    header = payloads.parse_routed(env.payload_type, env.payload).header
    return Built(env, header, env.payload).seen(to_hub(ctx, env, tls=OTHER))


def message_id_reused_with_other_content(ctx: Ctx) -> Seen:
    """The sender signs a new request under a message id it already used."""
    old = _captured(ctx).request
    mid = payloads.parse_routed(old.payload_type, old.payload).header.message_id
    b = build(ctx, header={"message_id": mid})
    return b.seen(to_hub(ctx, b.env))


def replay_to_the_province(ctx: Ctx) -> Seen:
    """The captured request straight to its receiver, which has seen it (from the hub)."""
    env = _captured(ctx).request
    header = payloads.parse_routed(env.payload_type, env.payload).header
    return Built(env, header, env.payload).seen(to_province(ctx, env))


# -- access, binding, directory (rogue country) ---------------------------------------

def access_rule_denies_the_type(ctx: Ctx) -> Seen:
    c = ctx.country
    b = build(ctx)
    version = c.call(_async(c.hub.set_access_rules, (("*", "identity.verify", ()),
                                                      ("*", "ecert.fetch", ("NO-SUCH-TYPE",)))))
    try:
        r = to_hub(ctx, b.env)
    finally:
        c.call(_async(c.hub.set_access_rules, DEFAULT_ACCESS_RULES))
        _refresh_all(c)
    return b.seen(r, v=version, cert_type=b.header.subject.cert_type)


def response_bound_to_another_request(ctx: Ctx) -> Seen:
    c = ctx.country
    node = c.provinces[TARGET]
    assert isinstance(node, RogueProvince)
    bogus = DsseEnvelope.from_pb(build(ctx).env).digest()  # the digest of some other request
    b = build(ctx)
    node.bind_to = bogus
    try:
        r = to_hub(ctx, b.env)
        cert = _a_certificate(c, TARGET)
        window = submit(c, ORIGIN, flow="ecert.fetch",
                        subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code))
    finally:
        node.bind_to = None
    # what the service window sees
    want = DsseEnvelope.from_pb(window.request).digest()
    assert (window.outcome, window.detail) == (
        "bad_binding", f"hub refused: response carries request digest {bogus.hex()[:16]}…, expected "
                       f"{want.hex()[:16]}… of the request it answers")
    assert not window.HasField("response")
    return Seen(r[0], r[1], {"bogus": bogus.hex()[:16], "want": DsseEnvelope.from_pb(b.env).digest().hex()[:16]},
                ("trace_id", b.header.trace_id))


def hub_lists_a_key_it_minted(ctx: Ctx) -> Seen:
    """The hub signs the directory: can it vouch for a 510000 key of its own making and
    forge 510000's requests? Only the root's chain decides, and it says no."""
    c = ctx.country
    hub = c.hub
    out = ctx.tmp / "forged"
    path = issue_leaf(c.pki, OTHER, "sign", issuer_code=HUB_CODE, out_dir=out)
    cert = load_certificate_pem(path.read_bytes(), source=str(path))
    forger = Signer.from_private_key(load_private_key_pem((out / "sign.key").read_bytes()))
    honest = hub.members[OTHER]
    hub.members[OTHER] = dataclasses.replace(honest, signing_keys=((forger.keyid, cert.public_bytes(Encoding.DER)),))
    try:
        c.call(_async(hub.publish))
        _refresh_all(c)
        b = build(ctx, sender=OTHER, signer=forger, receiver=TARGET)
        r = to_province(ctx, b.env, tls=HUB_CODE)
    finally:
        hub.members[OTHER] = honest
        c.call(_async(hub.publish))
        _refresh_all(c)
    return b.seen(r)


def oversized_registration_endpoint(ctx: Ctx) -> Seen:
    """Registration.endpoint is a payload text field too; whatever the hub accepts there
    it signs into the directory that every node fetches."""
    c = ctx.country
    h = make_header(sender=OTHER, receiver=HUB_CODE, now_ns=time.time_ns(), lifetime_ms=30_000,
                    purpose="register node endpoint")
    data = directory_pb2.Registration(header=h, endpoint=HUGE).SerializeToString()
    b = Built(seal(payloads.REGISTRATION, data, _signer(ctx, OTHER)).to_pb(), h, data)
    with c.node_channel(OTHER) as ch:
        stub = services_pb2_grpc.HubServiceStub(ch)
        r = _rpc(lambda: stub.Register(services_pb2.RegisterRequest(envelope=b.env), timeout=10))
    if r[0] == OK:  # it was taken: put 510000's real endpoint back
        c.call(c.provinces[OTHER].register())
        _refresh_all(c)
    return b.seen(r, n=len(HUGE))


def directory_past_its_validity(ctx: Ctx) -> Seen:
    c = ctx.country
    assert isinstance(c, RogueCountry)
    d = c.provinces[TARGET].core.directory
    assert d is not None
    b = build(ctx)
    c.skew_ns = d.valid_until_ns - time.time_ns() + 3600 * 10**9  # 110000 is an hour past its directory
    try:
        r = to_hub(ctx, b.env)
    finally:
        c.skew_ns = 0
    return b.seen(r, v=d.version, until=d.pb.valid_until.ToJsonString())


# -- text fields: injection-like, oversized, not UTF-8 ----------------------------------

ODD = {
    "sql": "x'); DROP TABLE ledger; --\"",
    "nul": "a\x00b\x00",
    "emoji": "😀🏛️证照👨‍👩‍👧",
    "rtl": "\u202eevil\u200f\u2066abc\u2069\u200b",
}
HUGE = ("'; DROP TABLE ledger; -- 😀\u202e\x00" * 400)[:10_000]
#: header field -> its limit in characters (check_header_shape)
LIMITED = {"message_id": 64, "purpose": 200, "audit.organisation": 512, "audit.operator": 512,
           "audit.item_name": 512, "audit.item_code": 512, "audit.business_serial": 512,
           "subject.holder_id": 64, "subject.cert_type": 64}
#: header fields with a fixed format: anything odd is refused
FORMATTED = {
    "trace_id": "header trace_id: expected 32 lowercase hex characters, found {found}",
    "sender": "header sender: expected a six-digit node code, found {found}",
    "receiver": "header receiver: expected a six-digit node code or empty, found {found}",
}
#: payload fields (flow, field); none of them has a limit today. Flows added later (healthcode.check,
#: joint.act, transfer.*) should add their text fields here once their answers are settled.
PAYLOAD_FIELDS = (("ecert.fetch", "identifier"), ("identity.verify", "name"), ("identity.verify", "photo_sha256"))


def _text_attack(path: str, value: str, *, flow: str = "ecert.fetch", in_body: bool = False) -> Callable[[Ctx], Seen]:
    def attack(ctx: Ctx) -> Seen:
        v = value + "-" + uuid.uuid4().hex[:8] if path == "message_id" and len(value) < 40 else value
        fields = {path: v}
        b = build(ctx, flow=flow, receiver=TARGET, header=None if in_body else fields,
                  body=fields if in_body else None)
        r = to_hub(ctx, b.env)
        if r[0] == OK:
            # read the accepted message back from both ledgers: stored exactly as sent
            ctx.country.flush_ledgers()
            for node in (HUB_CODE, TARGET):
                rows = [x.entry for x in read_entries(ctx.country.data / f"{node}.sqlite", direction="received",
                                                      message_id=b.mid)]
                assert [(e.envelope_sha256, e.message_id, e.trace_id, e.sender) for e in rows] == [
                    (_env_sha(b.env), b.mid, b.header.trace_id, ORIGIN)], node
            assert payloads.parse_payload(r[2].envelope.payload_type, r[2].envelope.payload).header \
                .request_digest == DsseEnvelope.from_pb(b.env).digest()
        return b.seen(r, match="envelope_sha256", n=len(v), found=repr(v[:40]))
    attack.__name__ = f"text_{path}"
    return attack


def _text_cases() -> list[Case]:
    cases = []
    for path, limit in LIMITED.items():
        for kind, value in ODD.items():
            cases.append(Case(f"odd-{kind}-in-{path}", _text_attack(path, value), OK, "", (HUB_CODE, "ok")))
        cases.append(Case(f"oversized-{path}", _text_attack(path, HUGE), grpc.StatusCode.INVALID_ARGUMENT,
                          f"header {path}" + (" (用证事由)" if path == "purpose" else "")
                          + f": expected at most {limit} characters, found {{n}}", (HUB_CODE, "bad_header")))
    for path, template in FORMATTED.items():
        for kind, value in [*ODD.items(), ("oversized", HUGE)]:
            cases.append(Case(f"oversized-{path}" if kind == "oversized" else f"odd-{kind}-in-{path}",
                              _text_attack(path, value), grpc.StatusCode.INVALID_ARGUMENT, template,
                              (HUB_CODE, "bad_header")))
    for flow, name in PAYLOAD_FIELDS:
        for kind, value in ODD.items():
            cases.append(Case(f"odd-{kind}-in-{flow}.{name}", _text_attack(name, value, flow=flow, in_body=True),
                              OK, "", (HUB_CODE, "ok")))
        cases.append(Case(f"oversized-{flow}.{name}", _text_attack(name, HUGE, flow=flow, in_body=True),
                          grpc.StatusCode.INVALID_ARGUMENT,
                          f"payload {name}: expected at most {WILD} characters, found {{n}}",
                          (HUB_CODE, "malformed")))
    return cases


# -- the table -------------------------------------------------------------------------

UNAVAILABLE, UNAUTH = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
#: the client learns only that the server closed the connection during the handshake
HANDSHAKE = f"failed to connect to all addresses; last error: UNAVAILABLE: ipv4:{{target}}: {WILD}"
UNKNOWN_KEY = ("envelope from {sender} signed by key {kid}…, expected one of the directory's keys for {sender} "
               "(directory v{v}: {known}…)")
BAD_SIG = "envelope {mid} from 440000 (key {kid}…): signature does not verify"


CASES: list[Case] = [
    # the TLS transport: refused at the handshake by the node's TLS gate, which ledgers it
    # (the client learns only that the connection closed; see docs/security.md)
    Case("no-client-certificate", no_client_certificate, UNAVAILABLE, HANDSHAKE, (HUB_CODE, "tls_no_client_cert")),
    Case("no-client-certificate-at-a-province", no_client_certificate_at_a_province, UNAVAILABLE, HANDSHAKE,
         (TARGET, "tls_no_client_cert")),
    Case("certificate-from-a-foreign-ca", foreign_ca_certificate, UNAVAILABLE, HANDSHAKE, (HUB_CODE, "tls_unknown_ca")),
    Case("expired-tls-certificate", expired_tls_certificate, UNAVAILABLE, HANDSHAKE, (HUB_CODE, "tls_cert_expired")),
    Case("signing-certificate-as-tls-identity", _not_tls_certificate("sign"), UNAVAILABLE, HANDSHAKE,
         (HUB_CODE, "tls_not_tls_cert")),
    Case("issuing-authority-certificate-as-tls-identity", _not_tls_certificate("issuer"), UNAVAILABLE, HANDSHAKE,
         (HUB_CODE, "tls_not_tls_cert")),
    Case("message-over-the-transport-limit-9MiB", transport_oversize, grpc.StatusCode.RESOURCE_EXHAUSTED,
         f"{WILD}Received message larger than max ({{size}} vs. {MAX_GRPC})", None),
    # identity and keys
    Case("signing-key-not-in-the-directory", unlisted_signing_key, UNAUTH, UNKNOWN_KEY, (HUB_CODE, "unknown_key")),
    Case("issuing-authority-key-signing-a-message", issuing_key_used_to_sign_messages, UNAUTH, UNKNOWN_KEY,
         (HUB_CODE, "unknown_key")),
    Case("sender-claims-another-province", sender_claims_another_province, UNAUTH, UNKNOWN_KEY,
         (HUB_CODE, "unknown_key")),
    Case("envelope-relayed-by-another-tls-peer", envelope_relayed_by_another_tls_peer, UNAUTH,
         "envelope signed by 440000, but the TLS peer is '510000': expected the sender itself",
         (HUB_CODE, "peer_identity")),
    Case("window-client-calling-the-hub", window_client_calling_the_hub, UNAUTH,
         "envelope signed by 440000, but the TLS peer is 'window': expected the sender itself",
         (HUB_CODE, "peer_identity")),
    Case("node-certificate-calling-a-window-service", node_calling_a_window_service, UNAUTH,
         "WindowService serves the client 'window', found TLS peer '440000'", None),
    Case("window-certificate-minted-by-a-province-ca", window_certificate_minted_by_a_province, UNAUTH,
         f"{WILD}window{WILD}", None),
    Case("hub-tls-identity-minted-by-a-province-ca", hub_identity_minted_by_a_province, UNAUTH,
         f"{WILD}TLS peer{WILD}", (TARGET, "peer_identity")),
    # signatures
    Case("valid-signature-over-a-different-payload", signature_over_another_payload, UNAUTH, BAD_SIG,
         (HUB_CODE, "bad_signature")),
    Case("zero-signatures", zero_signatures, UNAUTH,
         f"envelope of type {payloads.ECERT_REQUEST}: expected exactly one signature, found {{n}}",
         (HUB_CODE, "bad_signature")),
    Case("duplicated-signatures", duplicated_signatures, UNAUTH,
         f"envelope of type {payloads.ECERT_REQUEST}: expected exactly one signature, found {{n}}",
         (HUB_CODE, "bad_signature")),
    Case("extra-unknown-signature", extra_unknown_signature, UNAUTH,
         f"envelope of type {payloads.ECERT_REQUEST}: expected exactly one signature, found {{n}}",
         (HUB_CODE, "bad_signature")),
    # payload type, size, encoding
    Case("request-sealed-under-the-response-type", request_sealed_as_response, INVALID,
         f"expected a request payload type, found {payloads.ECERT_RESPONSE} (a response)",
         (HUB_CODE, "payload_type")),
    Case("request-sealed-under-a-document-type", request_sealed_as_document, INVALID,
         f"expected a request payload type, found {payloads.ECERT} (a document)", (HUB_CODE, "payload_type")),
    Case("unknown-payload-type", unknown_payload_type, INVALID,
         f"unknown payload type 'application/vnd.evil.v1+proto', expected one of: {KNOWN_TYPES}",
         (HUB_CODE, "payload_type")),
    Case("registration-sent-to-exchange", registration_sent_as_exchange, grpc.StatusCode.PERMISSION_DENIED,
         "access rules of directory v{v} do not allow 440000 to request registration", (HUB_CODE, "access_denied")),
    Case("oversize-envelope-5MiB", oversize_envelope, grpc.StatusCode.RESOURCE_EXHAUSTED,
         f"envelope of {{size}} bytes, expected at most {MAX_ENVELOPE} bytes", (HUB_CODE, "too_large")),
    Case("malformed-payload-protobuf", malformed_payload, INVALID,
         f"payload of type {payloads.ECERT_REQUEST}: expected a serialised tongban.v1.RoutedPayload, found 4 bytes "
         "that do not parse (Error parsing message with type 'tongban.v1.RoutedPayload': Wire format was corrupt)",
         (HUB_CODE, "malformed")),
    Case("malformed-request-protobuf", malformed_request_message, INVALID,
         f"{WILD}tongban.v1.ExchangeRequest{WILD}", (HUB_CODE, "malformed")),
    Case("not-utf8-in-envelope-payload-type", bad_utf8_in_envelope_payload_type, INVALID,
         f"{WILD}tongban.v1.ExchangeRequest{WILD}", (HUB_CODE, "malformed")),
    Case("not-utf8-in-a-header-field", bad_utf8_in_header, INVALID,
         f"payload of type {payloads.ECERT_REQUEST}: expected a serialised tongban.v1.RoutedPayload, found {{n}} "
         "bytes that do not parse (Error parsing message with type 'tongban.v1.RoutedPayload': "
         "String field had bad UTF-8)", (HUB_CODE, "malformed")),
    Case("not-utf8-in-a-payload-field", bad_utf8_in_payload, INVALID,
         f"payload of type {payloads.IDENTITY_REQUEST}: expected a serialised tongban.v1.IdentityVerifyRequest, "
         "found {n} bytes that do not parse (Error parsing message with type 'tongban.v1.IdentityVerifyRequest': "
         "String field had bad UTF-8)", (HUB_CODE, "malformed")),
    # header: time, address, replay
    Case("header-expired", expired_header, UNAUTH,
         f"envelope {{mid}} from 440000 expired at {{expired}}: expected an unexpired message, it is now {WILD} "
         "(clock skew 5000 ms)", (HUB_CODE, "stale")),
    Case("header-from-the-future-beyond-the-skew", header_from_the_future, UNAUTH,
         f"envelope {{mid}} from 440000 issued at {{issued}}, in the future: expected no later than {WILD} "
         "(clock skew 5000 ms)", (HUB_CODE, "stale")),
    Case("header-lifetime-beyond-the-policy", lifetime_beyond_policy, UNAUTH,
         "envelope {mid} from 440000 lives 86400000 ms, expected between 1 and 60000 ms", (HUB_CODE, "stale")),
    Case("receiver-mismatch", receiver_mismatch, INVALID,
         "envelope {mid} from 440000 is addressed to 510000, expected 110000", (TARGET, "wrong_receiver")),
    Case("request-skipping-the-hub", request_skipping_the_hub, grpc.StatusCode.PERMISSION_DENIED,
         "directory v{v} ({topology} topology) routes 440000 to 110000 through the hub: expected the request from "
         "the hub, found it from 440000", (TARGET, "access_denied")),
    Case("replay-of-a-captured-envelope-to-the-hub", replay_to_the_hub, OK, "", (HUB_CODE, "retry")),
    Case("replay-of-a-captured-envelope-by-another-node", replay_by_another_node, grpc.StatusCode.ALREADY_EXISTS,
         "message {mid} from 440000 was already received: expected a new message id, found one seen inside the "
         "replay window", (HUB_CODE, "replay")),
    Case("message-id-reused-with-other-content", message_id_reused_with_other_content,
         grpc.StatusCode.ALREADY_EXISTS,
         "message {mid} from 440000 was already received: expected a new message id, found one seen inside the "
         "replay window", (HUB_CODE, "replay")),
    Case("replay-of-a-captured-envelope-to-the-province", replay_to_the_province, grpc.StatusCode.ALREADY_EXISTS,
         "message {mid} from 440000 was already received: expected a new message id, found one seen inside the "
         "replay window", (TARGET, "replay")),
    *_text_cases(),
    # misbehaving parties and changed hub state: the rogue country
    Case("hub-alters-a-forwarded-payload", tampered_by_the_hub, UNAUTH, "node 110000 refused: " + BAD_SIG,
         (TARGET, "bad_signature"), where="rogue"),
    Case("response-bound-to-another-request", response_bound_to_another_request, UNAUTH,
         "response carries request digest {bogus}…, expected {want}… of the request it answers",
         (HUB_CODE, "bad_binding"), where="rogue"),
    Case("hub-vouches-for-a-key-it-minted", hub_lists_a_key_it_minted, UNAUTH,
         "certificate CN=510000 OU=sign issued by 'CN=000000 intermediate CA', expected issuer "
         "'CN=510000 intermediate CA'", (TARGET, "bad_chain"), where="rogue"),
    Case("directory-past-its-validity", directory_past_its_validity, grpc.StatusCode.FAILED_PRECONDITION,
         "node 110000 refused: node 110000 holds directory v{v}, valid until {until}: expected a directory in force",
         (TARGET, "bad_directory"), where="rogue"),
    Case("certificate-type-denied-by-the-access-rules", access_rule_denies_the_type, grpc.StatusCode.PERMISSION_DENIED,
         "access rules of directory v{v} do not allow 440000 to request ecert.fetch of certificate type {cert_type}",
         (HUB_CODE, "access_denied"), where="rogue"),
    Case("oversized-registration.endpoint", oversized_registration_endpoint, INVALID,
         f"payload endpoint: expected at most {WILD} characters, found {{n}}", (HUB_CODE, "malformed"),
         where="rogue"),
    Case("revoked-key", revoked_key, UNAUTH,
         "envelope from 510000 signed by key {kid}…, which directory v{v} revoked (key compromise): "
         "expected a key in force", (HUB_CODE, "revoked_key"), where="rogue"),  # last: revocation is permanent
]


#: the ledger direction of a row whose outcome is not a refusal
DIRECTION = {"ok": "received", "retry": "forwarded"}


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.name, marks=marks)


def test_case_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_attack(case: Case, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    c: Country = request.getfixturevalue(case.where)
    seen = case.attack(Ctx(c, tmp_path))
    assert (seen.status, seen.details)[0] == case.status, seen.details
    assert _matches(case.message, seen.values, seen.details), (case.message, seen.values, seen.details)
    if case.ledger is not None and case.ledger[1].startswith("tls_"):
        node, outcome = case.ledger
        assert node == seen.values["node"]
        new = _tls_rows(c, node)[seen.values["before"]:]
        assert new and {r.outcome for r in new} == {outcome}, [(r.outcome, r.reason) for r in new]
        for row in new:  # grpc may try the handshake more than once; each try is one row
            assert re.fullmatch(r"127\.0\.0\.1:\d+", row.peer), row.peer
            assert _matches(TLS_REASONS[outcome].replace("{WILD}", WILD), {"peer": row.peer}, row.reason), row.reason
    elif case.ledger is not None:
        node, outcome = case.ledger
        assert seen.match is not None
        c.flush_ledgers()
        rows: list[LedgerEntry] = [
            r.entry for r in read_entries(c.data / f"{node}.sqlite",
                                          direction=DIRECTION.get(outcome, "rejected"), outcome=outcome)
            if getattr(r.entry, seen.match[0]) == seen.match[1]]
        assert rows, f"no {outcome} row in {node}'s ledger with {seen.match[0]}={seen.match[1]!r}"
        assert seen.details.endswith(rows[-1].reason), (rows[-1].reason, seen.details)
    # the attacked node still serves an ordinary flow (hub, 440000 and 110000 all take part)
    fetch_ok(c)


def test_docs_list_every_case() -> None:
    """docs/security.md names every row of the table and counts the string-field matrix."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    matrix = _text_cases()
    named = [c.name for c in CASES if c.name not in {m.name for m in matrix}]
    assert [n for n in named if f"`{n}`" not in doc] == []
    assert f"string-field matrix ({len(matrix)} rows" in doc
