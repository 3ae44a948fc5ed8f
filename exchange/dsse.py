"""DSSE envelopes: PAE, sealing, and lossless conversion to standard DSSE JSON.

Pure functions over bytes; no clock, no I/O. Signatures are always computed over
``PAE(payload_type, payload)`` with the payload bytes exactly as carried, never
over a re-serialised protobuf.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from exchange.errors import MalformedError
from exchange.keys import Signer
from tongban.v1 import envelope_pb2

__all__ = [
    "DsseEnvelope",
    "DsseSignature",
    "envelope_from_bytes",
    "envelope_to_bytes",
    "from_json",
    "pae",
    "pae_digest",
    "seal",
    "to_json",
]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths as ASCII
    decimal byte counts.
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def pae_digest(payload_type: str, payload: bytes) -> bytes:
    """SHA-256 of the PAE: what a response's ``request_digest`` binds to."""
    return hashlib.sha256(pae(payload_type, payload)).digest()


@dataclass(frozen=True, slots=True)
class DsseSignature:
    """One signature: key id and raw signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class DsseEnvelope:
    """A DSSE envelope as a plain value."""

    payload_type: str
    payload: bytes
    signatures: tuple[DsseSignature, ...]

    def to_pb(self) -> envelope_pb2.Envelope:
        return envelope_pb2.Envelope(
            payload_type=self.payload_type,
            payload=self.payload,
            signatures=[envelope_pb2.Signature(keyid=s.keyid, sig=s.sig) for s in self.signatures],
        )

    @classmethod
    def from_pb(cls, pb: envelope_pb2.Envelope) -> DsseEnvelope:
        return cls(
            payload_type=pb.payload_type,
            payload=pb.payload,
            signatures=tuple(DsseSignature(keyid=s.keyid, sig=s.sig) for s in pb.signatures),
        )

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def digest(self) -> bytes:
        """SHA-256 of this envelope's PAE (the request digest responses carry)."""
        return pae_digest(self.payload_type, self.payload)


def seal(payload_type: str, payload: bytes, signer: Signer) -> DsseEnvelope:
    """Sign ``payload`` under ``payload_type`` with one key."""
    sig = signer.sign(pae(payload_type, payload))
    return DsseEnvelope(payload_type, payload, (DsseSignature(signer.keyid, sig),))


def envelope_to_bytes(env: DsseEnvelope) -> bytes:
    """Serialise as a tongban.v1.Envelope protobuf."""
    return env.to_pb().SerializeToString()


def envelope_from_bytes(data: bytes) -> DsseEnvelope:
    """Parse a tongban.v1.Envelope protobuf, or raise MalformedError."""
    pb = envelope_pb2.Envelope()
    try:
        pb.ParseFromString(data)
    except DecodeError as e:
        raise MalformedError(
            f"expected a serialised tongban.v1.Envelope, found {len(data)} bytes that do not parse: {e}"
        ) from e
    return DsseEnvelope.from_pb(pb)


def to_json(env: DsseEnvelope) -> str:
    """Standard DSSE JSON: payloadType, base64 payload, signatures[{keyid, sig}]."""
    doc = {
        "payloadType": env.payload_type,
        "payload": base64.b64encode(env.payload).decode("ascii"),
        "signatures": [
            {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
            for s in env.signatures
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedError(f"DSSE JSON {where}: expected a base64 string, found {type(value).__name__}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise MalformedError(f"DSSE JSON {where}: expected standard base64, found {value[:40]!r}") from e


def from_json(text: str | bytes) -> DsseEnvelope:
    """Parse standard DSSE JSON (either base64 alphabet padding form accepted)."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedError(f"expected DSSE JSON, found text that does not parse: {e}") from e
    if not isinstance(doc, dict):
        raise MalformedError(f"expected a DSSE JSON object, found {type(doc).__name__}")
    ptype = doc.get("payloadType")
    if not isinstance(ptype, str):
        raise MalformedError(f"DSSE JSON payloadType: expected a string, found {ptype!r}")
    sigs = doc.get("signatures")
    if not isinstance(sigs, list):
        raise MalformedError(f"DSSE JSON signatures: expected a list, found {type(sigs).__name__}")
    out = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict):
            raise MalformedError(f"DSSE JSON signatures[{i}]: expected an object, found {s!r}")
        keyid = s.get("keyid", "")
        if not isinstance(keyid, str):
            raise MalformedError(f"DSSE JSON signatures[{i}].keyid: expected a string, found {keyid!r}")
        out.append(DsseSignature(keyid, _b64(s.get("sig"), f"signatures[{i}].sig")))
    return DsseEnvelope(ptype, _b64(doc.get("payload"), "payload"), tuple(out))
