"""The DSSE JSON that `tongban trace` writes verifies with an independent DSSE
implementation: securesystemslib's (the one python-tuf and in-toto use), with the
key taken from the signer certificate written beside each envelope."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography import x509

from tests.interop.conftest import Trace

pytestmark = pytest.mark.interop

dsse = pytest.importorskip("securesystemslib.dsse", reason="securesystemslib is not installed "
                           "(pip install 'securesystemslib>=1.3'; it is in the dev extra)")
signer = pytest.importorskip("securesystemslib.signer")
sslib_exceptions = pytest.importorskip("securesystemslib.exceptions")


def _key(pem_path: Path, keyid: str) -> object:
    """securesystemslib's key for the certificate's public key, under tongban's key id."""
    cert = x509.load_pem_x509_certificate(pem_path.read_bytes())
    return signer.SSlibKey.from_crypto(cert.public_key(), keyid=keyid)


def _envelopes(trace: Trace) -> list[Path]:
    files = sorted(trace.dir.glob("*.dsse.json"))
    assert [f.name for f in files] == ["01-request.dsse.json", "02-response.dsse.json", "03-certificate.dsse.json"]
    return files


def test_every_trace_envelope_verifies_with_securesystemslib(trace: Trace) -> None:
    for path in _envelopes(trace):
        env = dsse.Envelope.from_dict(json.loads(path.read_text(encoding="utf-8")))
        keyid = next(iter(env.signatures))
        key = _key(path.with_name(path.name.replace(".dsse.json", ".signer.pem")), keyid)
        verified = env.verify([key], 1)
        assert list(verified) == [keyid], path.name
        assert env.payload_type.startswith("application/vnd.tongban."), env.payload_type


def test_securesystemslib_refuses_a_changed_payload_byte(trace: Trace) -> None:
    path = trace.dir / "02-response.dsse.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    body = bytearray(base64.b64decode(doc["payload"]))
    body[-1] ^= 0x01
    doc["payload"] = base64.b64encode(bytes(body)).decode()
    env = dsse.Envelope.from_dict(doc)
    keyid = next(iter(env.signatures))
    key = _key(trace.dir / "02-response.signer.pem", keyid)
    with pytest.raises(sslib_exceptions.VerificationError):
        env.verify([key], 1)


def test_securesystemslib_refuses_another_nodes_key(trace: Trace) -> None:
    """The request is signed by the asking province: the answering province's key does not verify it."""
    doc = json.loads((trace.dir / "01-request.dsse.json").read_text(encoding="utf-8"))
    env = dsse.Envelope.from_dict(doc)
    keyid = next(iter(env.signatures))
    wrong = _key(trace.dir / "02-response.signer.pem", keyid)
    with pytest.raises(sslib_exceptions.VerificationError):
        env.verify([wrong], 1)
