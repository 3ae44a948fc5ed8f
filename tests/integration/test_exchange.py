"""End to end over mTLS: flows through the hub, and what each refusal looks like."""

from __future__ import annotations

import hashlib
import random
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from certs.pki import load_node_credentials, make_foreign_pki
from exchange import payloads
from exchange.dsse import DsseEnvelope, seal
from exchange.header import make_header
from exchange.keys import key_id, verify_signature
from exchange.ledger import read_entries
from nodes.hub import DEFAULT_ACCESS_RULES
from nodes.store import ProvinceStore
from tests.integration.conftest import Country
from tongban.v1 import ecert_pb2, envelope_pb2, header_pb2, identity_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration


def _store(country: Country, code: str) -> ProvinceStore:
    return ProvinceStore(country.data / f"{code}.sqlite", code=code)


def _a_certificate(country: Country, code: str) -> Any:
    with _store(country, code) as s:
        return next(c for c in s.sample_certificates(random.Random(1), 50) if c.state == "01")


def _a_person(country: Country, code: str) -> Any:
    with _store(country, code) as s:
        return s.sample_persons(random.Random(2), 1)[0]


def submit(country: Country, origin: str, **kw: Any) -> services_pb2.SubmitResponse:
    with country.window_channel(origin) as ch:
        return services_pb2_grpc.WindowServiceStub(ch).Submit(
            services_pb2.SubmitRequest(purpose="跨省通办 测试", **kw), timeout=10)


def fetch_ok(country: Country, origin: str = "440000", target: str = "110000") -> services_pb2.SubmitResponse:
    cert = _a_certificate(country, target)
    reply = submit(country, origin, flow="ecert.fetch",
                   subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code))
    assert (reply.outcome, reply.detail) == ("ok", "")
    return reply


def sealed_request(code: str, pki: Path, *, holder: str, cert_type: str = "", receiver: str = "",
                   now_ns: int | None = None, lifetime_ms: int = 30_000, **extra: Any) -> envelope_pb2.Envelope:
    creds = load_node_credentials(pki, code)
    header = make_header(sender=code, receiver=receiver, now_ns=now_ns or time.time_ns(), lifetime_ms=lifetime_ms,
                         purpose="跨省通办 测试", holder_id=holder, cert_type=cert_type, **extra)
    if cert_type:
        body: Any = ecert_pb2.EcertFetchRequest(header=header)
        media = payloads.ECERT_REQUEST
    else:
        body = identity_pb2.IdentityVerifyRequest(header=header, name="张三")
        media = payloads.IDENTITY_REQUEST
    return seal(media, body.SerializeToString(), creds.sign_signer).to_pb()


def exchange_as(country: Country, code: str, env: envelope_pb2.Envelope) -> services_pb2.ExchangeResponse:
    with country.node_channel(code) as ch:
        return services_pb2_grpc.HubServiceStub(ch).Exchange(services_pb2.ExchangeRequest(envelope=env), timeout=10)


def rejected_rows(country: Country, code: str, reason_code: str) -> list[Any]:
    country.flush_ledgers()
    return [r.entry for r in read_entries(country.data / f"{code}.sqlite", direction="rejected")
            if r.entry.outcome == reason_code]


# -- flows -----------------------------------------------------------------------

def test_fetch_between_two_provinces_is_verified_end_to_end(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    reply = submit(country, "440000", flow="ecert.fetch",
                   subject=header_pb2.Subject(holder_id=cert.holder_code, cert_type=cert.type_code))
    assert (reply.outcome, reply.result, reply.identifier) == ("ok", "ok", cert.identifier)
    # Anyone can check the answer with the answering province's certificate alone.
    resp_env = DsseEnvelope.from_pb(reply.response)
    sign = load_node_credentials(country.pki, "110000")
    assert resp_env.signatures[0].keyid == key_id(sign.sign_cert.public_key())
    verify_signature(sign.sign_cert.public_key(), resp_env.signatures[0].sig, resp_env.pae(), what="response")
    resp = ecert_pb2.EcertFetchResponse.FromString(reply.response.payload)
    assert resp.header.request_digest == DsseEnvelope.from_pb(reply.request).digest()
    inner = DsseEnvelope.from_pb(resp.certificate)
    assert sign.issuer_cert is not None
    verify_signature(sign.issuer_cert.public_key(), inner.signatures[0].sig, inner.pae(), what="certificate")
    assert ecert_pb2.ECertificate.FromString(inner.payload).holder_code == cert.holder_code
    # Every hop wrote it down: origin sent+received, hub 4 rows, target received+sent.
    country.flush_ledgers()
    trace = reply.trace_id
    seen = {code: [(r.entry.direction, r.entry.peer) for r in read_entries(country.data / f"{code}.sqlite")
                   if r.entry.trace_id == trace] for code in ("440000", "000000", "110000")}
    assert seen == {
        "440000": [("sent", "000000"), ("received", "000000")],
        "000000": [("received", "440000"), ("forwarded", "110000"), ("received", "110000"), ("forwarded", "440000")],
        "110000": [("received", "000000"), ("sent", "000000")],
    }


def test_identity_match_and_mismatch(country: Country) -> None:
    p = _a_person(country, "510000")
    ok = submit(country, "110000", flow="identity.verify", name=p.name, photo_sha256=p.photo_sha256,
                subject=header_pb2.Subject(holder_id=p.id_number))
    assert (ok.outcome, ok.result) == ("ok", "match")
    bad = submit(country, "110000", flow="identity.verify", name=p.name + "某",
                 subject=header_pb2.Subject(holder_id=p.id_number))
    assert (bad.outcome, bad.result) == ("ok", "no_match")
    # the answer discloses nothing but the verdict
    resp = identity_pb2.IdentityVerifyResponse.FromString(bad.response.payload)
    assert [f.name for f, _ in resp.ListFields()] == ["header", "result"]


# -- refusals ----------------------------------------------------------------------

def test_client_without_certificate_is_refused_at_the_handshake(country: Country) -> None:
    root = load_node_credentials(country.pki, "000000").root_pem
    creds = grpc.ssl_channel_credentials(root_certificates=root)
    with grpc.secure_channel(country.hub_target, creds, options=[
            ("grpc.ssl_target_name_override", "node-000000.tongban.test")]) as ch:
        with pytest.raises(grpc.RpcError) as e:
            services_pb2_grpc.HubServiceStub(ch).GetDirectory(services_pb2.GetDirectoryRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    # the client only learns that the connection closed during the handshake ...
    assert e.value.details().startswith("failed to connect to all addresses")
    # ... the hub's TLS gate ledgered why
    row = rejected_rows(country, "000000", "tls_no_client_cert")[-1]
    assert row.reason == (f"TLS handshake from {row.peer} refused: expected a client certificate issued under "
                          "the tongban national root CA, found none")
    fetch_ok(country)


def test_certificate_from_another_ca_is_refused_at_the_handshake(country: Country, tmp_path: Path) -> None:
    foreign = make_foreign_pki(tmp_path / "foreign", "440000")
    f = load_node_credentials(foreign.root, "440000")
    real_root = load_node_credentials(country.pki, "000000").root_pem
    creds = grpc.ssl_channel_credentials(root_certificates=real_root, private_key=f.tls_key_pem,
                                         certificate_chain=f.tls_chain_pem)
    with grpc.secure_channel(country.hub_target, creds, options=[
            ("grpc.ssl_target_name_override", "node-000000.tongban.test")]) as ch:
        with pytest.raises(grpc.RpcError) as e:
            services_pb2_grpc.HubServiceStub(ch).GetDirectory(services_pb2.GetDirectoryRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert e.value.details().startswith("failed to connect to all addresses")
    row = rejected_rows(country, "000000", "tls_unknown_ca")[-1]
    assert row.reason.startswith(f"TLS handshake from {row.peer} refused: expected a client certificate issued "
                                 "under the tongban national root CA, found one from another authority (")
    fetch_ok(country)


def _refused(country: Country, code: str, env: envelope_pb2.Envelope) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        exchange_as(country, code, env)
    return e.value


def test_replayed_message_id_is_refused(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    first = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
    header = payloads.parse_routed(first.payload_type, first.payload).header
    exchange_as(country, "440000", first)
    # a different envelope under a message id already seen
    replay = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code,
                            message_id=header.message_id)
    err = _refused(country, "440000", replay)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert err.details() == (f"message {header.message_id} from 440000 was already received: expected a new "
                             "message id, found one seen inside the replay window")
    assert [r.message_id for r in rejected_rows(country, "000000", "replay")][-1] == header.message_id
    fetch_ok(country)


def test_a_retry_gets_the_recorded_answer_and_is_not_processed_twice(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    env = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
    header = payloads.parse_routed(env.payload_type, env.payload).header
    first = exchange_as(country, "440000", env)
    again = exchange_as(country, "440000", env)  # byte for byte the same request, e.g. after a lost answer
    assert again.envelope == first.envelope
    country.flush_ledgers()
    at_target = [r.entry.direction for r in read_entries(country.data / "110000.sqlite", message_id=header.message_id)]
    assert at_target == ["received"]  # processed once
    hub = [(r.entry.direction, r.entry.outcome) for r in read_entries(country.data / "000000.sqlite")
           if r.entry.trace_id == header.trace_id]
    assert hub.count(("received", "ok")) == 2 and ("forwarded", "retry") in hub


def test_expired_header_is_refused(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    long_ago = time.time_ns() - 120 * 1_000_000_000
    env = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code,
                         now_ns=long_ago, lifetime_ms=30_000)
    err = _refused(country, "440000", env)
    header = payloads.parse_routed(env.payload_type, env.payload).header
    expired = header.expires_at.ToJsonString()
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.details().startswith(
        f"envelope {header.message_id} from 440000 expired at {expired}: expected an unexpired message, it is now ")
    assert err.details().endswith("(clock skew 5000 ms)")
    assert header.message_id in [r.message_id for r in rejected_rows(country, "000000", "stale")]
    fetch_ok(country)


def test_receiver_mismatch_is_refused_by_the_province(country: Country) -> None:
    p = _a_person(country, "440000")
    env = sealed_request("510000", country.pki, holder=p.id_number, receiver="440000")
    target = country.provinces["110000"].endpoint
    with country.node_channel("510000", target=target, peer="110000") as ch:
        with pytest.raises(grpc.RpcError) as e:
            services_pb2_grpc.NodeServiceStub(ch).Handle(services_pb2.HandleRequest(envelope=env), timeout=10)
    header = payloads.parse_routed(env.payload_type, env.payload).header
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == (f"envelope {header.message_id} from 510000 is addressed to 440000, expected 110000")
    assert header.message_id in [r.message_id for r in rejected_rows(country, "110000", "wrong_receiver")]
    fetch_ok(country, origin="510000")


def test_malformed_payload_is_refused(country: Country) -> None:
    creds = load_node_credentials(country.pki, "440000")
    env = seal(payloads.ECERT_REQUEST, b"\xff\xff\xff\xff", creds.sign_signer).to_pb()
    err = _refused(country, "440000", env)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(f"payload of type {payloads.ECERT_REQUEST}: expected a serialised "
                                    "tongban.v1.RoutedPayload, found 4 bytes that do not parse")
    assert [r.envelope_sha256 for r in rejected_rows(country, "000000", "malformed")][-1] == \
        hashlib.sha256(env.SerializeToString()).hexdigest()
    fetch_ok(country)


def test_flow_forbidden_by_access_rules_is_refused(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    hub = country.hub
    country.call(_async(hub.set_access_rules, (("*", "identity.verify", ()),
                                               ("*", "ecert.fetch", ("NO-SUCH-TYPE",)))))
    try:
        env = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
        err = _refused(country, "440000", env)
    finally:
        country.call(_async(hub.set_access_rules, DEFAULT_ACCESS_RULES))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == (f"access rules of directory v{hub.version - 1} do not allow 440000 to request "
                             f"ecert.fetch of certificate type {cert.type_code}")
    header = payloads.parse_routed(env.payload_type, env.payload).header
    assert header.message_id in [r.message_id for r in rejected_rows(country, "000000", "access_denied")]
    fetch_ok(country)


def test_a_province_skipping_the_hub_in_a_star_is_refused(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    env = sealed_request("440000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
    target = country.provinces["110000"].endpoint
    with country.node_channel("440000", target=target, peer="110000") as ch:
        with pytest.raises(grpc.RpcError) as e:
            services_pb2_grpc.NodeServiceStub(ch).Handle(services_pb2.HandleRequest(envelope=env), timeout=10)
    version = country.provinces["110000"].core.current_directory().version
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert e.value.details() == (f"directory v{version} (star topology) routes 440000 to 110000 through the hub: "
                                 "expected the request from the hub, found it from 440000")
    header = payloads.parse_routed(env.payload_type, env.payload).header
    assert header.message_id in [r.message_id for r in rejected_rows(country, "110000", "access_denied")]
    fetch_ok(country)


def test_revoked_sender_key_is_refused(country: Country) -> None:
    cert = _a_certificate(country, "110000")
    keyid = key_id(load_node_credentials(country.pki, "510000").sign_cert.public_key())
    version = country.call(_async(country.hub.revoke, keyid, reason="key compromise"))
    env = sealed_request("510000", country.pki, holder=cert.holder_code, cert_type=cert.type_code)
    err = _refused(country, "510000", env)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.details() == (f"envelope from 510000 signed by key {keyid[:12]}…, which directory v{version} "
                             "revoked (key compromise): expected a key in force")
    header = payloads.parse_routed(env.payload_type, env.payload).header
    assert header.message_id in [r.message_id for r in rejected_rows(country, "000000", "revoked_key")]
    fetch_ok(country)  # the others still work


async def _async(fn: Any, *args: Any, **kw: Any) -> Any:
    return fn(*args, **kw)


# -- standard services --------------------------------------------------------------

@pytest.mark.parametrize("code", ["000000", "440000"])
def test_every_node_serves_health_and_reflection(country: Country, code: str) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    target = country.hub_target if code == "000000" else country.provinces[code].endpoint
    with country.node_channel("110000", target=target, peer=code) as ch:
        status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        replies = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        names = sorted(s.name for r in replies for s in r.list_services_response.service)
    own = ["tongban.v1.HubService"] if code == "000000" else ["tongban.v1.NodeService", "tongban.v1.WindowService"]
    assert names == sorted([*own, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"])


def test_a_local_process_going_around_the_tls_gate_gets_no_identity(country: Country) -> None:
    """The hub's gRPC server behind its gate (an abstract Unix socket on Linux, loopback TCP
    elsewhere) answers health without TLS, but an envelope sent there has no TLS peer:
    refused, and in the ledger."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    assert country.hub.server is not None and country.hub.server.gate is not None
    backend = country.hub.server.gate.backend
    assert isinstance(backend, str) == sys.platform.startswith("linux")
    target = f"unix-abstract:{backend}" if isinstance(backend, str) else f"{backend[0]}:{backend[1]}"
    p = _a_person(country, "110000")
    env = sealed_request("440000", country.pki, holder=p.id_number)
    with grpc.insecure_channel(target) as ch:
        status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as e:
            services_pb2_grpc.HubServiceStub(ch).Exchange(services_pb2.ExchangeRequest(envelope=env), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert e.value.details() == "envelope signed by 440000, but the TLS peer is '': expected the sender itself"
    rows = rejected_rows(country, "000000", "peer_identity")
    assert [r.message_id for r in rows if r.message_id == env_id(env)] == [env_id(env)]


def env_id(env: envelope_pb2.Envelope) -> str:
    return str(payloads.parse_payload(env.payload_type, env.payload).header.message_id)
