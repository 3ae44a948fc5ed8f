"""The ``tongban`` command as a user runs it: pki, world, ledger, trace, run."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tongban.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _children() -> list[int]:
    me, kids = os.getpid(), []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                kids.append(int(d.name))
    return kids


def test_pki_init_with_ed25519_signing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "init", str(tmp_path / "pki"), "--sign-alg", "ed25519"]) == 0
    node = tmp_path / "pki" / "nodes" / "440000"
    sign = x509.load_pem_x509_certificate((node / "sign.crt").read_bytes())
    tls = x509.load_pem_x509_certificate((node / "tls.crt").read_bytes())
    assert isinstance(sign.public_key(), ed25519.Ed25519PublicKey)
    assert isinstance(tls.public_key(), ec.EllipticCurvePublicKey)
    assert stat.S_IMODE((node / "sign.key").stat().st_mode) == 0o600
    assert "PKI created in" in capsys.readouterr().out
    # a second init into the same directory is refused with one clear line
    assert main(["pki", "init", str(tmp_path / "pki")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tongban: error: ") and str(tmp_path / "pki") in err and err.count("\n") == 1


def test_ledger_verify_names_the_first_broken_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from exchange.ledger import Ledger, LedgerEntry

    db = tmp_path / "n.sqlite"
    with Ledger(db, node_code="440000") as led:
        for i in range(5):
            led.append(LedgerEntry(at_ns=i, direction="received", message_id=f"m{i}", payload_type="t", flow="f",
                                   sender="110000", receiver="440000", peer="000000", envelope_sha256="0" * 64,
                                   size_bytes=1, expires_at_ns=0, outcome="ok", reason="", trace_id="",
                                   request_digest=""))
    assert main(["ledger", "verify", str(db)]) == 0
    assert "5 rows, hash chain intact" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE ledger SET sender = '510000' WHERE seq = 3")
    conn.close()
    assert main(["ledger", "verify", str(db)]) == 2
    err = capsys.readouterr().err
    assert "row 3 (message m2, received from 000000): hash mismatch" in err


def _verify_dsse(doc_path: Path, pem_path: Path) -> bytes:
    """Verify a DSSE JSON file with its signer certificate, written from the DSSE spec, not our code."""
    doc = json.loads(doc_path.read_text())
    body = base64.b64decode(doc["payload"])
    ptype = doc["payloadType"].encode()
    pae = b"DSSEv1 " + str(len(ptype)).encode() + b" " + ptype + b" " + str(len(body)).encode() + b" " + body
    key = x509.load_pem_x509_certificate(pem_path.read_bytes()).public_key()
    (sig,) = doc["signatures"]
    raw = base64.b64decode(sig["sig"])
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(raw, pae, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.verify(raw, pae + b"x", ec.ECDSA(hashes.SHA256()))
    return body


def test_trace_writes_envelopes_any_dsse_verifier_accepts(tmp_path: Path, cache: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "trace"
    assert main(["trace", "--flow", "ecert.fetch", "--from", "440000", "--out", str(out), "--cache", str(cache)]) == 0
    printed = capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["01-request.dsse.json", "01-request.signer.pem", "02-response.dsse.json",
                     "02-response.signer.pem", "03-certificate.dsse.json", "03-certificate.signer.pem"]
    for n in ("01-request", "02-response", "03-certificate"):
        _verify_dsse(out / f"{n}.dsse.json", out / f"{n}.signer.pem")
    # eight hops: sent, hub received + forwarded, target received + sent, hub received + forwarded, received
    hops = [line for line in printed.splitlines() if line[:2].strip().isdigit()]
    assert len(hops) == 8
    assert "sealed the request, signed by 440000" in hops[0]
    assert "verified the response" in hops[-1] and hops[-1].split()[3] == "440000"
    assert "outcome: ok ok 1.2.156.3005.2." in printed


def _catalogue() -> str:
    from nodes.world_catalogue import CERT_TYPES

    return ", ".join(f"{t.code} ({t.name_zh})" for t in CERT_TYPES)


@pytest.mark.parametrize(("args", "message"), [
    (["--type", "NOPE"], ("--type: unknown certificate type 'NOPE': expected one of the 14 types of the catalogue: "
                          f"{_catalogue()}")),
    (["--from", "999999"], ("--from: expected the code of one of the PKI's 32 provinces (e.g. 440000), "
                            "found '999999': not a province of the PKI")),
    (["--from", "000000"], ("--from: expected the code of one of the PKI's 32 provinces (e.g. 440000), "
                            "found '000000': the hub's code (the hub asks for nothing)")),
])
def test_trace_with_a_bad_choice_is_one_line_and_leaves_nothing_running(tmp_path: Path, cache: Path,
                                                                       args: list[str], message: str) -> None:
    # Its own process: a node left running shows only when its interpreter exits (grpc's
    # Server.__del__ on a closed event loop prints a traceback after the error line).
    done = subprocess.run([sys.executable, "-m", "tongban", "trace", *args, "--out", str(tmp_path / "trace"),
                           "--cache", str(cache)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"tongban: error: {message}\n"
    assert done.stdout == "" and not (tmp_path / "trace").exists()


def test_trace_stops_the_nodes_it_started_when_the_next_cannot_start(
        tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import tongban._trace as trace
    from exchange.errors import TongbanError

    events: list[str] = []
    hubs: list[trace.HubNode] = []
    made: list[str] = []

    class Hub(trace.HubNode):
        async def start(self, listen: str) -> int:
            events.append("start hub")
            hubs.append(self)
            return await super().start(listen)

        async def stop(self, grace_s: float = 2.0) -> None:
            events.append("stop hub")
            await super().stop(grace_s)

    class Province(trace.ProvinceNode):
        def __init__(self, *, code: str, **kw: Any) -> None:
            if made:  # the second province cannot be made (a missing key, say)
                raise TongbanError(f"node {code}: cannot be made (test)")
            made.append(code)
            super().__init__(code=code, **kw)

        async def start(self, listen: str, *, advertise_host: str | None = None) -> int:
            events.append(f"start {self.code}")
            port = await super().start(listen, advertise_host=advertise_host)
            # The hub connects to each node that registers: let that handshake end, or
            # stopping now leaves its socket to the garbage collector (a ResourceWarning
            # that a later test would report).
            await asyncio.gather(*hubs[0]._tasks)
            for served in (hubs[0].server, self.server):
                if served is not None and served.gate is not None:
                    await served.gate.handshakes_done()
            return port

        async def stop(self, grace_s: float = 2.0) -> None:
            events.append(f"stop {self.code}")
            await super().stop(grace_s)

    monkeypatch.setattr(trace, "HubNode", Hub)
    monkeypatch.setattr(trace, "ProvinceNode", Province)
    assert main(["trace", "--from", "440000", "--out", str(tmp_path / "trace"), "--cache", str(cache)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tongban: error: node ") and err.endswith(": cannot be made (test)\n") and err.count("\n") == 1
    assert events == ["start hub", "start 440000", "stop 440000", "stop hub"]


def _scenario(path: Path, *, topology: str, seconds: float, flows: str) -> Path:
    """A small scenario file: the world at 1e-5, ``topology`` lines, ``seconds`` of ``flows``."""
    path.write_text(f'[world]\nscale = 1e-5\nseed = 2021\n[topology]\n{topology}\n[load]\nduration_s = {seconds}\n'
                    f'{flows}', encoding="utf-8")
    return path


def test_run_a_short_scenario_prints_the_summary_and_leaves_no_process(
        tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = _scenario(tmp_path / "short.toml", topology="province_processes = 2", seconds=3,
                         flows='[load.flows."identity.verify"]\nrate_per_s = 20\n'
                               '[load.flows."ecert.fetch"]\nrate_per_s = 10\n')
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--out", str(out), "--cache", str(cache)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    flows = report["flows"]
    assert set(flows) == {"ecert.fetch", "identity.verify"}
    for f in flows.values():
        assert f["count"] > 0 and f["ok"] == f["count"] and f["failed_by_reason"] == {}
        assert 0 < f["latency_ms"]["p50"] <= f["latency_ms"]["p99"] <= f["latency_ms"]["max"]
    rec = report["reconciliation"]
    assert rec["lost"] == 0 and rec["sent"] == rec["delivered"] == rec["fired"] == rec["planned"] > 0
    assert len(report["ledgers"]) == 33 and all(v["verified"] for v in report["ledgers"].values())
    assert "every hash chain verified" in printed and "identity.verify" in printed
    assert _children() == []


def test_scenario_errors_name_file_key_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[load]\nduration_s = 3\nrate = 5\n', encoding="utf-8")
    assert main(["run", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"tongban: error: {bad}: load.rate: unknown key (expected one of: apply, duration_s, flows, gravity_exponent, "
        "identity_mismatch_ratio, loadgen_processes, matrix, ramps, request_timeout_s, selection, warmup_s)\n")


def test_sweep_prints_each_topology_and_a_knee_above_the_loads_tried(
        tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = _scenario(tmp_path / "small.toml", topology='nodes = ["110000", "120000", "440000"]\n'
                                                           'province_processes = 1', seconds=2,
                         flows='[load.flows."identity.verify"]\nrate_per_s = 10\n[report]\nlatency_budget_ms = 3000\n')
    out = tmp_path / "sweep"
    assert main(["sweep", str(scenario), "--set", "load.rate_per_s=10", "--set", "topology.kind=star,direct",
                 "--out", str(out), "--cache", str(cache)]) == 0
    printed = capsys.readouterr().out
    for kind in ("star", "direct"):  # the series' label in brackets, not eaten as rich markup
        assert (f"small [topology.kind={kind}]: knee at least 10 req/s (no load tried broke the budget) "
                "(p99 budget 3000 ms)") in printed
    doc = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert doc["knee_bounds"] == {"topology.kind=star": "above_range", "topology.kind=direct": "above_range"}
