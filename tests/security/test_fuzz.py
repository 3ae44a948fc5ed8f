"""Fuzzing running nodes with hypothesis: generated and mutated envelopes over mTLS.

Envelopes are sent to the hub's ``Exchange`` over 440000's TLS identity, as 440000
would send them, and to 110000's ``Handle`` over the hub's, as the hub would forward
them (a province takes requests from the hub; in a star topology only from it).
Properties, for every example:

- a success only ever answers an envelope carrying exactly one signature, by the
  key the PKI issued to the header's sender, over the PAE of the bytes sent
  (checked here independently of ``exchange.opener``), and the answer is itself
  signed by the answering province;
- a refusal has a known status (never UNKNOWN, INTERNAL or UNAVAILABLE) and
  carries a known tongban reason code;
- every refusal is in the ledger of the node that refused (exactly one row each).

After the run the nodes still serve, and the resident memory of this process,
which hosts every node, grew by less than 200 MB.

``TONGBAN_FUZZ_EXAMPLES`` sets the examples per target (default 1500).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.pki import HUB_CODE, load_node_credentials
from exchange import errors, payloads
from exchange.header import make_header
from exchange.keys import Signer
from exchange.ledger import read_entries
from nodes._status import REASON_KEY
from tests.integration.conftest import Country
from tests.integration.test_exchange import _a_certificate, _a_person, fetch_ok
from tongban.v1 import ecert_pb2, envelope_pb2, header_pb2, identity_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("TONGBAN_FUZZ_EXAMPLES", "1500"))
RSS_BUDGET_BYTES = 200 * 1024 * 1024
SENDER, TARGET, OTHER = "440000", "110000", "510000"

#: refusals a client may see; UNKNOWN/INTERNAL would be a node bug, UNAVAILABLE a dead node
KNOWN_STATUSES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
})
#: every reason code of the exception tree (read from it: new errors join automatically)
KNOWN_REASONS = frozenset(
    cls.code for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.TongbanError) and cls.code != "error"
) - {"internal"}
KNOWN_TYPES = sorted(v for v in (getattr(payloads, n) for n in payloads.__all__)
                     if isinstance(v, str) and v.startswith("application/vnd.tongban."))


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass
class Target:
    """Everything the examples need: channels, keys, a holder to ask about, tallies."""

    country: Country
    hub: services_pb2_grpc.HubServiceStub
    province: services_pb2_grpc.NodeServiceStub
    signers: dict[str, Signer]
    holder: str
    cert_type: str
    person: str
    rss_start: int
    seen: Counter[str] = field(default_factory=Counter)

    def signed_by_sender(self, env: envelope_pb2.Envelope) -> bool:
        """The oracle: one signature, by the sender's PKI key, over the PAE of these bytes."""
        if len(env.signatures) != 1:
            return False
        try:
            sender = header_pb2.RoutedPayload.FromString(env.payload).header.sender
        except DecodeError:
            return False
        signer = self.signers.get(sender)
        if signer is None or env.signatures[0].keyid != signer.keyid:
            return False
        public = signer.private_key.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        try:
            public.verify(env.signatures[0].sig, _pae(env.payload_type, env.payload), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def rejected(self, code: str) -> int:
        self.country.flush_ledgers()
        return len(read_entries(self.country.data / f"{code}.sqlite", direction="rejected"))

    def check(self, env: envelope_pb2.Envelope, call: Callable[[], Any]) -> None:
        try:
            reply = call()
        except grpc.RpcError as e:
            status = e.code()
            reasons = [v for k, v in (e.trailing_metadata() or ()) if k == REASON_KEY]
            assert status in KNOWN_STATUSES, (status, e.details())
            assert len(reasons) == 1 and reasons[0] in KNOWN_REASONS, (reasons, status, e.details())
            self.seen[f"{status.name}/{reasons[0]}"] += 1
            return
        assert self.signed_by_sender(env), f"accepted an envelope not signed by its sender: {env}"
        # the answer is signed by the province that answered (the request's receiver)
        answer = reply.envelope
        answerer = header_pb2.RoutedPayload.FromString(answer.payload).header.sender
        assert answerer != HUB_CODE and answerer in self.signers, answerer
        assert len(answer.signatures) == 1 and answer.signatures[0].keyid == self.signers[answerer].keyid
        public = self.signers[answerer].private_key.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(answer.signatures[0].sig, _pae(answer.payload_type, answer.payload), ec.ECDSA(hashes.SHA256()))
        self.seen["OK"] += 1


@pytest.fixture(scope="module")
def target(country: Country) -> Iterator[Target]:
    cert = _a_certificate(country, TARGET)
    signers = {code: load_node_credentials(country.pki, code).sign_signer for code in (HUB_CODE, SENDER, TARGET, OTHER)}
    with country.node_channel(SENDER) as hub_ch, \
            country.node_channel(HUB_CODE, target=country.provinces[TARGET].endpoint, peer=TARGET) as prov_ch:
        yield Target(country=country, hub=services_pb2_grpc.HubServiceStub(hub_ch),
                     province=services_pb2_grpc.NodeServiceStub(prov_ch), signers=signers,
                     holder=cert.holder_code, cert_type=cert.type_code,
                     person=_a_person(country, TARGET).id_number, rss_start=_rss_bytes())


# -- strategies ------------------------------------------------------------------------

junk_text = st.text(max_size=80)
payload_types = st.one_of(st.sampled_from(KNOWN_TYPES), junk_text,
                          st.sampled_from(KNOWN_TYPES).map(lambda t: t.upper()),
                          st.sampled_from(KNOWN_TYPES).map(lambda t: t + "\x00"))
signatures = st.lists(st.builds(envelope_pb2.Signature, keyid=junk_text, sig=st.binary(max_size=80)), max_size=3)
random_envelopes = st.builds(envelope_pb2.Envelope, payload_type=payload_types, payload=st.binary(max_size=600),
                             signatures=signatures)
# header fields a sender may get wrong (re-signed, so they reach the checks behind the signature)
HEADER_EDITS: dict[str, st.SearchStrategy[Any]] = {
    "message_id": st.one_of(junk_text, st.text(min_size=60, max_size=70)),
    "sender": st.sampled_from(["", HUB_CODE, TARGET, OTHER, "999999", "44000", "4400000", "440000\n"]),
    "receiver": st.one_of(st.sampled_from(["", HUB_CODE, TARGET, OTHER, "999999", SENDER]), junk_text),
    "purpose": st.one_of(st.just(""), st.text(max_size=260)),
    "trace_id": st.one_of(junk_text, st.just("A" * 32), st.just("0" * 32)),
    "request_digest": st.binary(max_size=40),
    "subject.holder_id": junk_text,
    "subject.cert_type": junk_text,
    "audit.operator": st.text(max_size=600),
    "issued_at.seconds": st.integers(-(2**63), 2**63 - 1),
    "expires_at.seconds": st.integers(-(2**63), 2**63 - 1),
    "expires_at.nanos": st.integers(-(2**31), 2**31 - 1),
}
MUTATIONS = ("none", "none", "flip", "truncate", "append", "splice", "type", "sig_flip", "sig_junk", "keyid",
             "extra_sig", "drop_sig", "dup_sig", "other_signer", "resign_junk", "resign_header", "resign_header",
             "random")


def _set(msg: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        msg = getattr(msg, p)
    setattr(msg, last, value)


def _fresh(t: Target, data: st.DataObject) -> tuple[envelope_pb2.Envelope, Any]:
    """A valid request from 440000 about a 110000 holder, issued now, never seen before."""
    receiver = data.draw(st.sampled_from(["", TARGET]), label="receiver")
    if data.draw(st.booleans(), label="ecert"):
        h = make_header(sender=SENDER, receiver=receiver, now_ns=time.time_ns(), lifetime_ms=30_000,
                        purpose="跨省通办 模糊测试", holder_id=t.holder, cert_type=t.cert_type,
                        message_id=str(uuid.uuid4()))
        msg: Any = ecert_pb2.EcertFetchRequest(header=h)
    else:
        h = make_header(sender=SENDER, receiver=receiver, now_ns=time.time_ns(), lifetime_ms=30_000,
                        purpose="跨省通办 模糊测试", holder_id=t.person)
        msg = identity_pb2.IdentityVerifyRequest(header=h, name=data.draw(st.text(max_size=20), label="name"))
    media = payloads.FLOWS["ecert.fetch" if isinstance(msg, ecert_pb2.EcertFetchRequest) else "identity.verify"]
    return _seal(media, msg.SerializeToString(), t.signers[SENDER]), msg


def _seal(media: str, body: bytes, signer: Signer) -> envelope_pb2.Envelope:
    sig = envelope_pb2.Signature(keyid=signer.keyid, sig=signer.sign(_pae(media, body)))
    return envelope_pb2.Envelope(payload_type=media, payload=body, signatures=[sig])


def _index(data: st.DataObject, n: int, label: str) -> int:
    """An index in 0..n-1 (0 when n is 0). Drawn independently of n: payload and signature
    lengths vary from run to run (timestamps, ECDSA), and hypothesis needs the same draws."""
    return data.draw(st.integers(0, 2**16), label=label) % max(n, 1)


def _flip(data: st.DataObject, b: bytes, label: str) -> bytes:
    i = _index(data, len(b), f"{label} index")
    bit = data.draw(st.integers(0, 7), label=f"{label} bit")
    if not b:
        return b"\x01"
    return b[:i] + bytes([b[i] ^ (1 << bit)]) + b[i + 1:]


def envelopes(t: Target, data: st.DataObject) -> envelope_pb2.Envelope:
    op = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    if op == "random":
        return data.draw(random_envelopes, label="envelope")
    env, msg = _fresh(t, data)
    sig = env.signatures[0]
    n = len(env.payload)
    if op == "flip":
        env.payload = _flip(data, env.payload, "payload")
    elif op == "truncate":
        env.payload = env.payload[:_index(data, n, "cut")]
    elif op == "append":
        env.payload += data.draw(st.binary(min_size=1, max_size=64), label="tail")
    elif op == "splice":
        i = _index(data, n + 1, "from")
        j = i + _index(data, n + 1 - i, "to")
        env.payload = env.payload[:i] + data.draw(st.binary(max_size=32), label="insert") + env.payload[j:]
    elif op == "type":
        env.payload_type = data.draw(payload_types.filter(lambda x: x != env.payload_type), label="type")
    elif op == "sig_flip":
        sig.sig = _flip(data, sig.sig, "sig")
    elif op == "sig_junk":
        sig.sig = data.draw(st.binary(max_size=80), label="sig")
    elif op == "keyid":
        sig.keyid = data.draw(st.one_of(junk_text, st.sampled_from([s.keyid for c, s in t.signers.items()
                                                                     if c != SENDER])), label="keyid")
    elif op == "extra_sig":
        env.signatures.extend(data.draw(signatures.filter(bool), label="extra"))
    elif op == "drop_sig":
        del env.signatures[:]
    elif op == "dup_sig":
        env.signatures.append(sig)
    elif op == "other_signer":
        env = _seal(env.payload_type, env.payload, t.signers[data.draw(st.sampled_from([HUB_CODE, TARGET, OTHER]))])
    elif op == "resign_junk":  # correctly signed bytes that are not a good payload
        body = env.payload[:_index(data, n + 1, "keep")] + data.draw(st.binary(max_size=64))
        env = _seal(env.payload_type, body, t.signers[SENDER])
    elif op == "resign_header":  # a bad header, correctly signed
        for path in data.draw(st.lists(st.sampled_from(sorted(HEADER_EDITS)), min_size=1, max_size=3, unique=True)):
            _set(msg.header, path, data.draw(HEADER_EDITS[path], label=path))
        env = _seal(env.payload_type, msg.SerializeToString(), t.signers[SENDER])
    return env


FUZZ = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _run(t: Target, refuser: str, send: Callable[[envelope_pb2.Envelope], Callable[[], Any]]) -> None:
    t.seen.clear()
    rejected_before = t.rejected(refuser)

    @FUZZ
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        env = envelopes(t, data)
        t.check(env, send(env))

    example()
    refusals = sum(n for k, n in t.seen.items() if k != "OK")
    # both branches were exercised, and every refusal is in the refusing node's ledger
    assert t.seen["OK"] > 0 and refusals > 0, t.seen
    assert t.rejected(refuser) - rejected_before == refusals, t.seen
    print(f"\nfuzz {refuser}: {sum(t.seen.values())} examples {dict(t.seen)}, "
          f"RSS +{(_rss_bytes() - t.rss_start) / 2**20:.0f} MiB")
    # no crash: the node still serves an ordinary flow; memory stayed bounded
    fetch_ok(t.country)
    grown = _rss_bytes() - t.rss_start
    assert grown < RSS_BUDGET_BYTES, f"RSS grew by {grown / 2**20:.0f} MiB over the fuzz run"


def test_fuzz_hub_exchange(target: Target) -> None:
    _run(target, HUB_CODE, lambda env: lambda: target.hub.Exchange(
        services_pb2.ExchangeRequest(envelope=env), timeout=10))


def test_fuzz_province_handle(target: Target) -> None:
    _run(target, TARGET, lambda env: lambda: target.province.Handle(
        services_pb2.HandleRequest(envelope=env), timeout=10))




def test_fuzz_hub_raw_request_bytes(target: Target) -> None:
    """Bytes on the wire, not protobuf messages: random, and mutations of a real ExchangeRequest."""
    t = target
    t.seen.clear()
    with t.country.node_channel(SENDER) as ch:
        exchange = ch.unary_unary("/tongban.v1.HubService/Exchange", request_serializer=None,
                                  response_deserializer=services_pb2.ExchangeResponse.FromString)

        @settings(FUZZ, max_examples=max(EXAMPLES // 3, 50))
        @given(data=st.data())
        def example(data: st.DataObject) -> None:
            if data.draw(st.booleans(), label="random"):
                raw = data.draw(st.binary(max_size=700), label="bytes")
            else:
                raw = services_pb2.ExchangeRequest(envelope=_fresh(t, data)[0]).SerializeToString()
                for _ in range(data.draw(st.integers(1, 3), label="flips")):
                    raw = _flip(data, raw, "request")
            try:
                env = services_pb2.ExchangeRequest.FromString(raw).envelope
            except DecodeError:
                env = envelope_pb2.Envelope()  # signed by nobody: must be refused
            t.check(env, lambda: exchange(raw, timeout=10))

        example()
    fetch_ok(t.country)
