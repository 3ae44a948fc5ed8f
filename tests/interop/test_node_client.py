"""examples/node: a Node.js client (@grpc/grpc-js, @grpc/proto-loader, Node's
crypto) calls a running hub over mTLS as province 440000, seals a DSSE-signed
ecert.fetch and verifies every signature of the answer on its own."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.interop.conftest import ORIGIN, REPO, TARGET, Running, npm_install

pytestmark = pytest.mark.interop

EXAMPLE = REPO / "examples" / "node"
NODE = shutil.which("node")


def _forwarded(running: Running) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(running.hub.metrics_url, timeout=10).read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if (s.name == "tongban_envelopes_total" and s.labels.get("direction") == "forwarded"
                    and s.labels.get("flow") == "ecert.fetch" and s.labels.get("outcome") == "ok"):
                total += s.value
    return total


@pytest.fixture(scope="module")
def node_client(running: Running) -> list[str]:
    if NODE is None:
        pytest.skip("node not found: install Node.js 18 or later to run examples/node")
    major = int(re.match(r"v(\d+)", subprocess.run([NODE, "--version"], capture_output=True, text=True,
                                                   check=True).stdout).group(1))  # type: ignore[union-attr]
    if major < 18:
        pytest.skip(f"examples/node needs Node.js 18 or later, found {major}")
    npm_install(EXAMPLE)
    return [NODE, str(EXAMPLE / "client.js"), "--hub", running.hub_target, "--pki", str(running.pki),
            "--from", ORIGIN]


def test_node_client_fetches_and_verifies_an_ecert(node_client: list[str], running: Running) -> None:
    pytest.importorskip("prometheus_client", reason="prometheus_client is not installed (metrics extra)")
    holder, cert_type, identifier = running.holder()
    before = _forwarded(running)
    done = subprocess.run([*node_client, "--holder", holder, "--type", cert_type],
                          capture_output=True, text=True, timeout=60, check=False)
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr}"
    assert re.search(r"directory v\d+: 33 members, signed by the hub .* chain to the national root verified", out)
    assert f" from {TARGET} in " in out and "bound to our request" in out
    assert "status FETCH_STATUS_OK" in out
    assert f"e-certificate {identifier} " in out and "issuing authority" in out
    assert re.search(r"^traceparent 00-[0-9a-f]{32}-[0-9a-f]{16}-01$", out, re.M)
    assert out.rstrip().endswith("OK: every signature verified with Node's crypto")
    # The hub verified the Node-made signature and forwarded request and response.
    assert _forwarded(running) == before + 2


def test_node_client_verifies_a_signed_not_found(node_client: list[str], running: Running) -> None:
    """A type the holder does not hold: the province signs NOT_FOUND; still verified, no certificate."""
    holder, _, _ = running.holder()
    with sqlite3.connect(f"file:{running.data / f'{TARGET}.sqlite'}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT DISTINCT type_code FROM ecerts WHERE type_code NOT IN "
                           "(SELECT type_code FROM ecerts WHERE holder_code = ?) ORDER BY type_code LIMIT 1",
                           (holder,)).fetchone()
    conn.close()
    assert row is not None
    done = subprocess.run([*node_client, "--holder", holder, "--type", row[0]],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "status FETCH_STATUS_NOT_FOUND" in done.stdout
    assert "e-certificate " not in done.stdout


def test_node_client_error_is_one_line(node_client: list[str], running: Running) -> None:
    holder, _, _ = running.holder()
    done = subprocess.run([*node_client, "--holder", holder, "--type", "NOSUCHTYPE"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("client.js: NOT_FOUND: certificate type 'NOSUCHTYPE' "), done.stderr
    assert done.stderr.count("\n") == 1  # one line, no stack trace


def test_node_client_without_a_pki_says_so_in_one_line(node_client: list[str], tmp_path: Path) -> None:
    args = [*node_client]
    args[args.index("--pki") + 1] = str(tmp_path / "nowhere")
    done = subprocess.run([*args, "--holder", "110101199003074514", "--type", "X"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    first = done.stderr.splitlines()[0]
    assert first == (f"client.js: --pki: cannot read {tmp_path / 'nowhere' / 'ca' / 'root.crt'} (ENOENT); "
                     "expected a directory made by tongban pki init"), done.stderr
    assert done.stderr.startswith("client.js: ") and "    at " not in done.stderr  # no stack trace


def test_node_client_with_another_provinces_sign_key_is_refused(node_client: list[str], running: Running,
                                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """TLS says 440000 but the envelope is signed with 110000's key: the hub refuses it."""
    holder, cert_type, _ = running.holder()
    pki = tmp_path_factory.mktemp("mixed-pki")
    shutil.copytree(running.pki, pki, dirs_exist_ok=True)
    for name in ("sign.key", "sign.crt"):
        shutil.copy(running.pki / "nodes" / "110000" / name, pki / "nodes" / ORIGIN / name)
    args = list(node_client)
    args[args.index("--pki") + 1] = str(pki)
    done = subprocess.run([*args, "--holder", holder, "--type", cert_type],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("client.js: UNAUTHENTICATED: "), done.stderr
