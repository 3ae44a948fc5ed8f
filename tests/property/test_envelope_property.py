"""Any change to a signed envelope is refused; conversions are lossless."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.pki import HUB_CODE, load_node_credentials
from exchange import payloads
from exchange.directory import DirectoryContent, MemberInfo, build_directory, seal_directory, verify_directory
from exchange.dsse import DsseEnvelope, DsseSignature, envelope_from_bytes, envelope_to_bytes, from_json, seal, to_json
from exchange.errors import TongbanError
from exchange.header import make_header
from exchange.keys import key_id
from exchange.opener import open_envelope
from exchange.trust import TrustStore
from tongban.v1 import directory_pb2, identity_pb2

NOW = time.time_ns()


def _der(cert: object) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="module")
def world(pki_dir: Path) -> tuple[object, TrustStore, DsseEnvelope]:
    from cryptography import x509

    members = []
    for code in ("000000", "110000", "440000"):
        c = load_node_credentials(pki_dir, code)
        members.append(MemberInfo(code=code, name=code, kind=1 if code == HUB_CODE else 2, endpoint="127.0.0.1:1",
                                  intermediate_der=_der(c.intermediate_cert),
                                  signing_keys=((key_id(c.sign_cert.public_key()), _der(c.sign_cert)),)))
    content = DirectoryContent(version=1, hub=HUB_CODE, members=members, catalogue=(),
                               division_routes={"11": "110000", "44": "440000"},
                               access_rules=(("*", "identity.verify", ()),))
    hub = load_node_credentials(pki_dir, HUB_CODE)
    trust = TrustStore(x509.load_pem_x509_certificate(hub.root_pem))
    directory = verify_directory(seal_directory(build_directory(content, now_ns=NOW, validity_s=3600), hub.sign_signer),
                                 trust, now_ns=NOW)
    sender = load_node_credentials(pki_dir, "440000")
    header = make_header(sender="440000", receiver="110000", now_ns=NOW, lifetime_ms=30_000, purpose="测试",
                         holder_id="11010519491231002X")
    body = identity_pb2.IdentityVerifyRequest(header=header, name="张三").SerializeToString()
    env = seal(payloads.IDENTITY_REQUEST, body, sender.sign_signer)
    return directory, trust, env


def _open(world: tuple[object, TrustStore, DsseEnvelope], env: DsseEnvelope) -> None:
    directory, trust, _ = world
    open_envelope(env, directory=directory, trust=trust, me="110000", now_ns=NOW,  # type: ignore[arg-type]
                  expect="request", replay=None)


def test_the_untouched_envelope_opens(world: tuple[object, TrustStore, DsseEnvelope]) -> None:
    _open(world, world[2])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_bit_is_refused(world: tuple[object, TrustStore, DsseEnvelope], data: st.DataObject) -> None:
    raw = bytearray(envelope_to_bytes(world[2]))
    i = data.draw(st.integers(0, len(raw) - 1), label="byte")
    raw[i] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    try:
        env = envelope_from_bytes(bytes(raw))
    except TongbanError:
        return
    with pytest.raises(TongbanError):
        _open(world, env)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_replaced_byte_in_payload_type_payload_or_signature_is_refused(
        world: tuple[object, TrustStore, DsseEnvelope], data: st.DataObject) -> None:
    env = world[2]
    part = data.draw(st.sampled_from(["payload_type", "payload", "sig", "keyid"]))
    def mutate(b: bytes) -> bytes:
        i = data.draw(st.integers(0, len(b) - 1))
        v = data.draw(st.integers(0, 255).filter(lambda x: x != b[i]))
        return b[:i] + bytes([v]) + b[i + 1:]
    sig = env.signatures[0]
    if part == "payload":
        env = DsseEnvelope(env.payload_type, mutate(env.payload), env.signatures)
    elif part == "sig":
        env = DsseEnvelope(env.payload_type, env.payload, (DsseSignature(sig.keyid, mutate(sig.sig)),))
    elif part == "keyid":
        new = mutate(sig.keyid.encode()).decode("latin-1")
        env = DsseEnvelope(env.payload_type, env.payload, (DsseSignature(new, sig.sig),))
    else:
        new = mutate(env.payload_type.encode()).decode("latin-1")
        env = DsseEnvelope(new, env.payload, env.signatures)
    with pytest.raises(TongbanError):
        _open(world, env)


@given(ptype=st.text(max_size=80), payload=st.binary(max_size=512),
       sigs=st.lists(st.tuples(st.text(max_size=70), st.binary(max_size=80)), max_size=3))
def test_protobuf_and_json_round_trips_are_lossless(ptype: str, payload: bytes,
                                                    sigs: list[tuple[str, bytes]]) -> None:
    env = DsseEnvelope(ptype, payload, tuple(DsseSignature(k, s) for k, s in sigs))
    assert envelope_from_bytes(envelope_to_bytes(env)) == env
    assert from_json(to_json(env)) == env


def test_member_kinds_exist() -> None:
    assert directory_pb2.MEMBER_KIND_HUB == 1 and directory_pb2.MEMBER_KIND_PROVINCE == 2
