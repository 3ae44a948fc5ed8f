"""What a province answers for each flow, and how the asker checks the answer.

The answering side turns a verified request into a response payload; the asking
side checks the flow-specific content of a verified response (for ecert.fetch:
the certificate's own signature by the issuing authority, holder, type, state).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from google.protobuf.message import Message

from exchange import payloads
from exchange.directory import DirectoryView
from exchange.dsse import DsseEnvelope, seal
from exchange.errors import BindingError, MalformedError, PayloadTypeError, SignatureError
from exchange.keys import Signer, verify_signature
from exchange.opener import Opened
from exchange.trust import TrustStore
from nodes.store import CertRecord, ProvinceStore
from nodes.transfer_store import TransferStore, crash_point
from tongban.v1 import ecert_pb2, envelope_pb2, header_pb2, healthcode_pb2, identity_pb2, joint_pb2, transfer_pb2

__all__ = ["SERVED_FLOWS", "WINDOW_FLOWS", "Answerer", "FlowResult", "check_answer", "ecert_from_record",
           "verify_certificate"]

#: The flows a province answers.
SERVED_FLOWS = ("ecert.fetch", "healthcode.check", "identity.verify", "joint.act", "transfer.commit",
                "transfer.out")
#: The flows a service window may submit (WindowService): the exchanges a window asks
#: for, a 跨省通办 application and a certificate transfer. transfer.out and
#: transfer.commit are steps of ecert.transfer, sent by the node itself.
WINDOW_FLOWS = ("ecert.fetch", "ecert.transfer", "healthcode.check", "identity.verify", "joint.act",
                "tongban.apply")

_COLOURS = {healthcode_pb2.HEALTH_COLOUR_GREEN: "green", healthcode_pb2.HEALTH_COLOUR_YELLOW: "yellow",
            healthcode_pb2.HEALTH_COLOUR_RED: "red"}
_DAY_NS = 86_400 * 1_000_000_000


def health_colour(id_number: str, day: int) -> int:
    """The holder's colour on a given day: a deterministic stand-in for the home
    province's epidemiological data (about 96 % green, 3 % yellow, 1 % red)."""
    h = int.from_bytes(hashlib.sha256(f"{id_number}:{day}".encode()).digest()[:4], "big") % 1000
    if h < 10:
        return healthcode_pb2.HEALTH_COLOUR_RED
    if h < 40:
        return healthcode_pb2.HEALTH_COLOUR_YELLOW
    return healthcode_pb2.HEALTH_COLOUR_GREEN


@dataclass(frozen=True, slots=True)
class FlowResult:
    """Flow-level result at the asking side."""

    result: str
    identifier: str = ""


def ecert_from_record(rec: CertRecord, *, issuer_node: str, signed_at_ns: int) -> ecert_pb2.ECertificate:
    import json

    cert = ecert_pb2.ECertificate(
        identifier=rec.identifier, type_code=rec.type_code, type_name=rec.type_name,
        holder_code=rec.holder_code, holder_code_type=rec.holder_code_type, holder_name=rec.holder_name,
        issuer_code=rec.issuer_code, issuer_name=rec.issuer_name, issuer_node=issuer_node,
        issue_date=rec.issue_date, valid_from=rec.valid_from, valid_to=rec.valid_to or "",
        state=rec.state, operate_type=rec.operate_type, associated_id=rec.associated_id or "",
        area_code=rec.area_code,
        fields={str(k): str(v) for k, v in json.loads(rec.fields_json or "{}").items()},
    )
    cert.signed_at.FromNanoseconds(signed_at_ns)
    return cert


class Answerer:
    """Answers verified requests from a province's store."""

    def __init__(self, *, code: str, store: ProvinceStore, issuer: Signer, transfers: TransferStore | None = None,
                 cache_size: int = 4096) -> None:
        self.code = code
        self.transfers = transfers
        self.store = store
        self.issuer = issuer
        self._cache_size = cache_size
        self._sealed_env: OrderedDict[tuple[str, str], DsseEnvelope] = OrderedDict()

    def answer(self, opened: Opened, response_header: header_pb2.Header, *, now_ns: int) -> tuple[str, Message]:
        """(response media type, response payload) for a verified request."""
        flow = opened.spec.flow
        subject = opened.header.subject
        if flow == "identity.verify":
            req = opened.message
            assert isinstance(req, identity_pb2.IdentityVerifyRequest)
            person = self.store.person(subject.holder_id)
            match = (
                person is not None and person.name == req.name
                and (not req.photo_sha256 or req.photo_sha256 == person.photo_sha256)
            )
            result = identity_pb2.VERIFY_RESULT_MATCH if match else identity_pb2.VERIFY_RESULT_NO_MATCH
            return payloads.IDENTITY_RESPONSE, identity_pb2.IdentityVerifyResponse(
                header=response_header, result=result)
        if flow == "ecert.fetch":
            req = opened.message
            assert isinstance(req, ecert_pb2.EcertFetchRequest)
            rec = (self.store.certificate_by_id(req.identifier) if req.identifier
                   else self.store.certificate(subject.holder_id, subject.cert_type))
            if rec is None or rec.holder_code != subject.holder_id or rec.type_code != subject.cert_type:
                return payloads.ECERT_RESPONSE, ecert_pb2.EcertFetchResponse(
                    header=response_header, status=ecert_pb2.FETCH_STATUS_NOT_FOUND,
                    detail=f"{self.code} holds no certificate of type {subject.cert_type} for this holder")
            env = self._sealed_cert(rec, now_ns)
            return payloads.ECERT_RESPONSE, ecert_pb2.EcertFetchResponse(
                header=response_header, status=ecert_pb2.FETCH_STATUS_OK, certificate=env.to_pb())
        if flow in ("transfer.out", "transfer.commit") and self.transfers is not None:
            return self._transfer(opened, response_header, now_ns)
        if flow == "joint.act":
            req = opened.message
            assert isinstance(req, joint_pb2.JointActRequest)
            person = self.store.person(subject.holder_id)
            if person is None:
                return payloads.JOINT_RESPONSE, joint_pb2.JointActResponse(
                    header=response_header, confirmed=False, detail=f"{self.code} has no resident with this ID")
            reference = f"{self.code}-" + hashlib.sha256(opened.envelope.digest()).hexdigest()[:16]
            return payloads.JOINT_RESPONSE, joint_pb2.JointActResponse(
                header=response_header, confirmed=True, reference=reference)
        if flow == "healthcode.check":
            person = self.store.person(subject.holder_id)
            if person is None:
                return payloads.HEALTHCODE_RESPONSE, healthcode_pb2.HealthCodeCheckResponse(
                    header=response_header, found=False)
            day = now_ns // _DAY_NS
            code = healthcode_pb2.HealthCode(
                code_id=hashlib.sha256(f"{self.code}:{person.id_number}:{day}".encode()).hexdigest()[:32],
                holder_id=person.id_number, colour=health_colour(person.id_number, day), issuer_node=self.code)  # type: ignore[arg-type]
            code.generated_at.FromNanoseconds(day * _DAY_NS)
            code.valid_until.FromNanoseconds((day + 1) * _DAY_NS)
            return payloads.HEALTHCODE_RESPONSE, healthcode_pb2.HealthCodeCheckResponse(
                header=response_header, found=True, code=code)
        raise PayloadTypeError(f"node {self.code} serves {', '.join(SERVED_FLOWS)}, found {flow}")

    def _transfer(self, opened: Opened, response_header: header_pb2.Header, now_ns: int) -> tuple[str, Message]:
        """A's side of a transfer: mark 06 (idempotent by transfer id), or record completion."""
        assert self.transfers is not None
        msg, subject = opened.message, opened.header.subject
        if isinstance(msg, transfer_pb2.TransferOutRequest):
            rec = self.transfers.mark_out(msg.transfer_id, holder=subject.holder_id, cert_type=subject.cert_type,
                                          to_node=opened.header.sender, now_ns=now_ns)
            crash_point("transfer.out.after_mark")
            if rec is None:
                return payloads.TRANSFER_OUT_RESPONSE, transfer_pb2.TransferOutResponse(
                    header=response_header, found=False,
                    detail=f"{self.code} holds no valid certificate of type {subject.cert_type} for this holder")
            cert = ecert_from_record(rec, issuer_node=self.code, signed_at_ns=now_ns)
            env = seal(payloads.ECERT, cert.SerializeToString(), self.issuer)
            return payloads.TRANSFER_OUT_RESPONSE, transfer_pb2.TransferOutResponse(
                header=response_header, found=True, certificate=env.to_pb())
        assert isinstance(msg, transfer_pb2.TransferCommitRequest)
        recorded = self.transfers.commit_out(msg.transfer_id, new_identifier=msg.new_identifier,
                                             from_node=opened.header.sender, now_ns=now_ns)
        return payloads.TRANSFER_COMMIT_RESPONSE, transfer_pb2.TransferCommitResponse(
            header=response_header, recorded=recorded)

    def _sealed_cert(self, rec: CertRecord, now_ns: int) -> DsseEnvelope:
        """The certificate signed by the issuing authority (出证), cached per identifier."""
        env = self._sealed_env.get((rec.identifier, rec.state))
        if env is None:
            cert = ecert_from_record(rec, issuer_node=self.code, signed_at_ns=now_ns)
            env = seal(payloads.ECERT, cert.SerializeToString(), self.issuer)
            if len(self._sealed_env) >= self._cache_size:
                self._sealed_env.popitem(last=False)
            self._sealed_env[(rec.identifier, rec.state)] = env
        return env


def verify_certificate(pb: envelope_pb2.Envelope, *, answered_by: str, directory: DirectoryView,
                       trust: TrustStore, now_ns: int) -> ecert_pb2.ECertificate:
    """An e-certificate envelope checked against its issuing authority's key."""
    env = DsseEnvelope.from_pb(pb)
    if env.payload_type != payloads.ECERT or len(env.signatures) != 1:
        raise SignatureError(
            f"certificate from {answered_by}: expected one signature over a {payloads.ECERT}, "
            f"found {len(env.signatures)} over {env.payload_type[:80]!r}")
    cert = payloads.parse_payload(env.payload_type, env.payload)
    assert isinstance(cert, ecert_pb2.ECertificate)
    if cert.issuer_node != answered_by:
        raise BindingError(f"certificate issued by {cert.issuer_node}, but answered by {answered_by}")
    sig = env.signatures[0]
    # The key lookup runs every time (the directory may have revoked it since); the
    # signature itself only once per sealed certificate: a province hands out the
    # same sealed bytes to every asker, so the same triple recurs.
    key = directory.issuer_key(trust, node=cert.issuer_node, keyid=sig.keyid, now_ns=now_ns)
    seen = (sig.keyid, sig.sig, env.payload)
    if seen in _VERIFIED:
        _VERIFIED.move_to_end(seen)
        return cert
    verify_signature(key.public_key, sig.sig, env.pae(),
                     what=f"certificate {cert.identifier} by the issuing authority of {cert.issuer_node}")
    _VERIFIED[seen] = None
    if len(_VERIFIED) > _VERIFIED_MAX:
        _VERIFIED.popitem(last=False)
    return cert


#: Certificate signatures already verified: (key id, signature, payload), LRU.
_VERIFIED: OrderedDict[tuple[str, bytes, bytes], None] = OrderedDict()
_VERIFIED_MAX = 4096


def check_answer(opened: Opened, *, request_subject: header_pb2.Subject, directory: DirectoryView,
                 trust: TrustStore, now_ns: int) -> FlowResult:
    """Flow-specific checks of a verified response at the asking province."""
    msg = opened.message
    if isinstance(msg, identity_pb2.IdentityVerifyResponse):
        return FlowResult("match" if msg.result == identity_pb2.VERIFY_RESULT_MATCH else "no_match")
    if isinstance(msg, joint_pb2.JointActResponse):
        return FlowResult("confirmed" if msg.confirmed else "refused", msg.reference)
    if isinstance(msg, healthcode_pb2.HealthCodeCheckResponse):
        if not msg.found:
            return FlowResult("not_found")
        if msg.code.holder_id != request_subject.holder_id:
            raise BindingError("health code for another holder than the one asked about")
        if msg.code.valid_until.ToNanoseconds() < now_ns:
            return FlowResult("expired")
        return FlowResult(_COLOURS.get(msg.code.colour, "unknown"))
    if isinstance(msg, transfer_pb2.TransferOutResponse):
        if not msg.found:
            return FlowResult("not_found")
        cert = verify_certificate(msg.certificate, answered_by=opened.header.sender, directory=directory,
                                  trust=trust, now_ns=now_ns)
        return FlowResult("ok" if cert.state == "06" else f"state_{cert.state}", cert.identifier)
    if isinstance(msg, transfer_pb2.TransferCommitResponse):
        return FlowResult("recorded" if msg.recorded else "refused")
    if isinstance(msg, ecert_pb2.EcertFetchResponse):
        if msg.status != ecert_pb2.FETCH_STATUS_OK:
            return FlowResult("not_found")
        cert = verify_certificate(msg.certificate, answered_by=opened.header.sender, directory=directory,
                                  trust=trust, now_ns=now_ns)
        if cert.holder_code != request_subject.holder_id or cert.type_code != request_subject.cert_type:
            raise BindingError(
                f"certificate for holder/type {cert.holder_code[:6]}…/{cert.type_code}, expected "
                f"{request_subject.holder_id[:6]}…/{request_subject.cert_type}")
        return FlowResult("ok" if cert.state == "01" else f"state_{cert.state}", cert.identifier)
    raise MalformedError(f"unexpected response message {type(msg).__name__}")
