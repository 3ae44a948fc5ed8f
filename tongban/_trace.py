"""``tongban trace``: one flow, every hop shown, every envelope written out.

Starts the hub, the asking province and the answering province in this process
(real gRPC over mTLS on loopback ports, real ledgers in a scratch directory),
submits one request at the asking province's window, then reads the three
ledgers back by trace id to show who signed, who verified and how long each
hop took. Each envelope is written as standard DSSE JSON beside its signer's
certificate, so any DSSE implementation can check it.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certs.pki import HUB_CODE, load_client_credentials
from exchange import payloads
from exchange.dsse import DsseEnvelope, to_json
from exchange.errors import ConfigError
from exchange.ledger import read_entries
from exchange.runner import ensure_pki, ensure_world
from nodes._grpc import open_channel
from nodes.hub import HubNode
from nodes.province import ProvinceNode
from nodes.store import ProvinceStore
from tongban.v1 import ecert_pb2, header_pb2, services_pb2, services_pb2_grpc

__all__ = ["run_trace"]


def _write(out: Path, n: int, hop: str, env_pb: object, signer_der: bytes) -> tuple[str, str]:
    env = DsseEnvelope.from_pb(env_pb)  # type: ignore[arg-type]
    name = f"{n:02d}-{hop}"
    (out / f"{name}.dsse.json").write_text(to_json(env), encoding="utf-8")
    pem = x509.load_der_x509_certificate(signer_der).public_bytes(Encoding.PEM)
    (out / f"{name}.signer.pem").write_bytes(pem)
    return f"{name}.dsse.json", env.signatures[0].keyid


async def run_trace(*, flow: str, origin: str, holder: str, cert_type: str, out: Path, cache: Path) -> int:
    pki = ensure_pki(cache)
    world = ensure_world(cache, scale=1e-5, seed=2021)
    scratch = Path(tempfile.mkdtemp(prefix="tongban-trace-"))
    try:
        return await _trace(flow, origin, holder, cert_type, out, pki, world, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def _trace(flow: str, origin: str, holder: str, cert_type: str, out: Path,
                 pki: Path, world: Path, scratch: Path) -> int:
    for f in world.iterdir():
        shutil.copy(f, scratch / f.name)
    hub = HubNode(pki_dir=pki, data_dir=scratch)
    directory = hub.core.current_directory()
    rng = random.Random()
    if not holder:
        target = rng.choice([c for c in hub.codes if c != origin])
        with ProvinceStore(scratch / f"{target}.sqlite", code=target) as store:
            if flow == "ecert.fetch":
                recs = store.sample_certificates(rng, 50, type_code=cert_type or None)
                rec = next((r for r in recs if r.state == "01"), recs[0])  # one in force, as a window would
                holder, cert_type = rec.holder_code, rec.type_code
            else:
                holder = store.sample_persons(rng, 1)[0].id_number
    if flow == "ecert.fetch" and not cert_type:
        raise ConfigError("ecert.fetch with --holder: expected --type CODE as well, found none")
    target = directory.route_subject(holder, cert_type if flow == "ecert.fetch" else "")
    if target == origin:
        raise ConfigError(f"holder {holder} belongs to {origin} itself: a trace needs a cross-province pair")
    with ProvinceStore(scratch / f"{target}.sqlite", code=target) as store:
        person = store.person(holder)
        name = person.name if person else ""
        photo = person.photo_sha256 if person else ""

    hub_port = await hub.start("127.0.0.1:0")
    nodes = [ProvinceNode(code=c, pki_dir=pki, data_dir=scratch, hub=f"127.0.0.1:{hub_port}")
             for c in (origin, target)]
    try:
        for n in nodes:
            await n.start("127.0.0.1:0")
        chain, key, root = load_client_credentials(pki)
        creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
        async with open_channel(nodes[0].endpoint, creds, peer=origin) as channel:
            reply = await services_pb2_grpc.WindowServiceStub(channel).Submit(services_pb2.SubmitRequest(
                flow=flow, subject=header_pb2.Subject(holder_id=holder, cert_type=cert_type if flow == "ecert.fetch" else ""),
                name=name, photo_sha256=photo, purpose="tongban trace: one cross-province request",
                audit=header_pb2.AuditContext(organisation=f"{origin} 政务服务中心", operator="trace")))
    finally:
        for n in nodes:
            await n.stop()
        await hub.stop()

    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("[0-9][0-9]-*.dsse.json"), *out.glob("[0-9][0-9]-*.signer.pem")]:
        old.unlink()
    d = directory
    sign_der = {c: d.member(c).signing_keys[0].certificate for c in (origin, target)}
    files = [_write(out, 1, "request", reply.request, sign_der[origin])]
    if reply.outcome == "ok":
        files.append(_write(out, 2, "response", reply.response, sign_der[target]))
        if flow == "ecert.fetch":
            resp = ecert_pb2.EcertFetchResponse()
            resp.ParseFromString(reply.response.payload)
            if resp.certificate.payload:
                files.append(_write(out, 3, "certificate", resp.certificate, d.member(target).issuer_certificate))

    rows = []
    for code in (origin, HUB_CODE, target):
        for r in read_entries(scratch / f"{code}.sqlite", trace_id=reply.trace_id):
            rows.append((r.entry.at_ns, code, r.entry))
    rows.sort(key=lambda t: t[0])
    t0 = rows[0][0] if rows else 0
    print(f"trace {reply.trace_id}: {flow} from {origin} for holder {holder[:6]}… "
          f"({'type ' + cert_type if cert_type else 'identity'}) answered by {target}")
    print(f"{'#':>2} {'+ms':>8} {'hop ms':>7}  {'node':<7} what happened")
    prev = t0
    for i, (at, code, e) in enumerate(rows, 1):
        kind = payloads.spec_of(e.payload_type).kind if e.payload_type else "envelope"
        keyid = d.member(e.sender).signing_keys[0].keyid[:8] if e.sender in d.members else "?"
        what = {
            "sent": f"sealed the {kind}, signed by {e.sender} key {keyid}…, sent to {e.peer}",
            "received": f"verified the {kind}: signature of {e.sender} key {keyid}…, chain, freshness, replay",
            "forwarded": f"checked access and route, forwarded the {kind} unchanged to {e.peer}",
            "rejected": f"REFUSED the {kind} from {e.peer}: {e.reason}",
        }[e.direction]
        print(f"{i:>2} {(at - t0) / 1e6:>8.3f} {(at - prev) / 1e6:>7.3f}  {code:<7} {what}")
        prev = at
    if len(files) == 3:
        print(f"   the certificate itself is signed by {target}'s issuing authority, key {files[2][1][:8]}…: "
              f"verified by {origin}, and verifiable offline")
    print("   (a hop's first call on a new channel includes its TLS handshake)")
    print(f"outcome: {reply.outcome} {reply.result} {reply.identifier} {reply.detail}".rstrip())
    print(f"end to end at the window: {reply.latency_us / 1000:.3f} ms")
    for fname, keyid in files:
        print(f"wrote {out / fname} (keyid {keyid[:16]}…) and its .signer.pem")
    return 0 if reply.outcome == "ok" else 1
