from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from exchange.dsse import DsseEnvelope, DsseSignature, envelope_from_bytes, envelope_to_bytes, from_json, pae, seal, to_json
from exchange.errors import MalformedError, SignatureError
from exchange.keys import Signer, key_id, verify_signature


def test_pae_matches_the_dsse_spec_example() -> None:
    # DSSE protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("类型", b"\xe4\xbd\xa0") == "DSSEv1 6 类型 3 ".encode() + b"\xe4\xbd\xa0"


def test_empty_payload() -> None:
    assert pae("", b"") == b"DSSEv1 0  0 "


@pytest.mark.parametrize("key", [ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()])
def test_seal_verifies_and_round_trips(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> None:
    signer = Signer.from_private_key(key)
    env = seal("application/vnd.tongban.test.v1+proto", b"\x00\x01payload", signer)
    assert env.signatures[0].keyid == key_id(key.public_key())
    verify_signature(key.public_key(), env.signatures[0].sig, env.pae(), what="test")
    assert envelope_from_bytes(envelope_to_bytes(env)) == env
    assert from_json(to_json(env)) == env
    with pytest.raises(SignatureError, match="^test: signature does not verify$"):
        verify_signature(key.public_key(), env.signatures[0].sig, pae(env.payload_type, b"other"), what="test")


def test_json_is_standard_dsse() -> None:
    env = DsseEnvelope("t", b"hello", (DsseSignature("k1", b"\x01\x02"),))
    doc = json.loads(to_json(env))
    assert doc == {"payloadType": "t", "payload": base64.b64encode(b"hello").decode(),
                   "signatures": [{"keyid": "k1", "sig": "AQI="}]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected a DSSE JSON object, found list"),
        ('{"payloadType": 1, "payload": "", "signatures": []}', "payloadType: expected a string, found 1"),
        ('{"payloadType": "t", "payload": "@@", "signatures": []}', "payload: expected standard base64"),
        ('{"payloadType": "t", "payload": "", "signatures": {}}', "signatures: expected a list, found dict"),
        ("not json", "expected DSSE JSON, found text that does not parse"),
    ],
)
def test_bad_json_names_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        from_json(text)


def test_garbage_bytes_are_malformed() -> None:
    with pytest.raises(MalformedError, match="expected a serialised tongban.v1.Envelope, found 3 bytes"):
        envelope_from_bytes(b"\xff\xff\xff")
