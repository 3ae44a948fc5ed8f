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
from exchange.directory import DirectoryView
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


def _check_choices(directory: DirectoryView, origin: str, cert_type: str, *, provinces: list[str]) -> None:
    """``--from`` must be a province of the PKI and ``--type`` (if given) a type of the catalogue."""
    if origin not in provinces:
        what = "the hub's code (the hub asks for nothing)" if origin == HUB_CODE else "not a province of the PKI"
        raise ConfigError(f"--from: expected the code of one of the PKI's {len(provinces)} provinces "
                          f"(e.g. 440000), found {origin[:40]!r}: {what}")
    if cert_type and not directory.cert_type_name(cert_type):
        known = ", ".join(f"{c.cert_type} ({c.cert_type_name})" for c in directory.pb.catalogue)
        raise ConfigError(f"--type: unknown certificate type {cert_type[:40]!r}: expected one of the "
                          f"{len(directory.pb.catalogue)} types of the catalogue: {known}")


def _pick_holder(scratch: Path, flow: str, origin: str, cert_type: str, provinces: list[str],
                 rng: random.Random) -> tuple[str, str]:
    """(holder, certificate type) for a trace without ``--holder``: a person of another
    province, or for ecert.fetch a certificate (of ``cert_type``, if given) held there."""
    others = [c for c in provinces if c != origin]
    rng.shuffle(others)
    for target in others:  # a rare type may be held in a few provinces only, at a small scale
        with ProvinceStore(scratch / f"{target}.sqlite", code=target) as store:
            if flow != "ecert.fetch":
                return store.sample_persons(rng, 1)[0].id_number, cert_type
            recs = store.sample_certificates(rng, 50, type_code=cert_type or None)
            if recs:
                rec = next((r for r in recs if r.state == "01"), recs[0])  # one in force, as a window would
                return rec.holder_code, rec.type_code
    raise ConfigError(f"--type {cert_type}: expected a type some other province than {origin} holds in the "
                      "trace's world, found none: pick another --type, or give --holder")


async def _submit(hub: HubNode, request: services_pb2.SubmitRequest, origin: str, target: str,
                  pki: Path, scratch: Path) -> services_pb2.SubmitResponse:
    """Start the hub and the two provinces, submit ``request`` at ``origin``'s window, stop
    the provinces (the caller stops the hub)."""
    hub_port = await hub.start("127.0.0.1:0")
    nodes: list[ProvinceNode] = []
    try:  # every node made is stopped, also when the next one cannot be made or started
        for c in (origin, target):
            nodes.append(ProvinceNode(code=c, pki_dir=pki, data_dir=scratch, hub=f"127.0.0.1:{hub_port}"))
            await nodes[-1].start("127.0.0.1:0")
        chain, key, root = load_client_credentials(pki)
        creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
        async with open_channel(nodes[0].endpoint, creds, peer=origin) as channel:
            return await services_pb2_grpc.WindowServiceStub(channel).Submit(request)
    finally:
        for n in nodes:
            await n.stop()


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
    try:  # the hub is stopped (its ledger closed, its server too once started) however this ends
        _check_choices(directory, origin, cert_type if flow == "ecert.fetch" else "", provinces=hub.codes)
        if not holder:
            holder, cert_type = _pick_holder(scratch, flow, origin, cert_type, hub.codes, random.Random())
        if flow == "ecert.fetch" and not cert_type:
            raise ConfigError("ecert.fetch with --holder: expected --type CODE as well, found none")
        target = directory.route_subject(holder, cert_type if flow == "ecert.fetch" else "")
        if target == origin:
            raise ConfigError(f"holder {holder} belongs to {origin} itself: a trace needs a cross-province pair")
        with ProvinceStore(scratch / f"{target}.sqlite", code=target) as store:
            person = store.person(holder)
        subject = header_pb2.Subject(holder_id=holder, cert_type=cert_type if flow == "ecert.fetch" else "")
        request = services_pb2.SubmitRequest(
            flow=flow, subject=subject,
            name=person.name if person else "", photo_sha256=person.photo_sha256 if person else "",
            purpose="tongban trace: one cross-province request",
            audit=header_pb2.AuditContext(organisation=f"{origin} 政务服务中心", operator="trace"))
        reply = await _submit(hub, request, origin, target, pki, scratch)
    finally:
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
