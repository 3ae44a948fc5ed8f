"""Bad input to ``tongban node``, ``tongban world generate`` and ``tongban run script.py``:
one ``tongban: error: …`` line and exit status 2, before anything starts or is overwritten."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tongban.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The error line ``tongban argv`` prints (asserting exit 2, one line, nothing on stdout)."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("tongban: error: ")
    return err.rstrip("\n").removeprefix("tongban: error: ")


# --------------------------------------------------------------------------- tongban node


@pytest.mark.parametrize("listen", ["127.0.0.1", "127.0.0.1:99999", "127.0.0.1:", ":7000", "127.0.0.1:x",
                                    "127.0.0.1:-1"])
def test_node_hub_refuses_a_bad_listen_address(listen: str, tmp_path: Path, pki_dir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["node", "hub", "--pki", str(pki_dir), "--data", str(tmp_path), "--listen", listen]
    assert _refused(argv, capsys) == f"--listen: expected HOST:PORT with a port 0-65535, found {listen!r}"


@pytest.mark.parametrize("hub", ["127.0.0.1", "127.0.0.1:99999", "127.0.0.1:0"])
def test_node_province_refuses_a_bad_hub_address(hub: str, tmp_path: Path, pki_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["node", "province", "440000", "--pki", str(pki_dir), "--data", str(tmp_path), "--hub", hub]
    assert _refused(argv, capsys) == f"--hub: expected HOST:PORT with a port 1-65535, found {hub!r}"
    argv = ["node", "province", "440000", "--pki", str(pki_dir), "--data", str(tmp_path), "--hub", "127.0.0.1:7000",
            "--listen", "127.0.0.1"]
    assert _refused(argv, capsys) == "--listen: expected HOST:PORT with a port 0-65535, found '127.0.0.1'"


def test_node_province_names_the_codes_of_the_pki(tmp_path: Path, pki_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--pki", str(pki_dir), "--data", str(tmp_path), "--hub", "127.0.0.1:7000"]
    assert _refused(["node", "province", "999999", *common], capsys) == \
        "999999 is not a node of this PKI (it has: 110000, 120000, 440000, 510000)"
    assert _refused(["node", "province", "440000", "000000", *common], capsys) == \
        "000000 is the hub: start it with `tongban node hub`"
    assert _refused(["node", "province", "440000", "440000", *common], capsys) == \
        "440000 is given twice: expected each province code once"
    assert _refused(["node", "province", "440000", "110000", *common, "--listen", "127.0.0.1:7044"], capsys) == \
        "--listen: several provinces in one process need port 0 (each gets a free port), found '127.0.0.1:7044'"
    missing = tmp_path / "no-pki"
    assert _refused(["node", "province", "440000", *common, "--pki", str(missing)], capsys) == \
        f"{missing / 'pki.json'}: missing; create the PKI with `tongban pki init {missing}`"


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "localhost:7000", "[::1]:65535"])
def test_node_starts_with_a_good_listen_address(listen: str, tmp_path: Path, pki_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import nodes.process

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(nodes.process, "run_hub", lambda **kw: started.append(kw))
    monkeypatch.setattr(nodes.process, "run_provinces", lambda **kw: started.append(kw))
    common = ["--pki", str(pki_dir), "--data", str(tmp_path), "--listen", listen]
    assert main(["node", "hub", *common]) == 0
    assert main(["node", "province", "440000", *common, "--hub", "127.0.0.1:7000"]) == 0
    assert [kw["listen"] for kw in started] == [listen, listen]
    assert started[1]["codes"] == ["440000"] and started[1]["hub"] == "127.0.0.1:7000"


# --------------------------------------------------------------------------- tongban world generate


def test_world_generate_refuses_a_directory_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = tmp_path / "world"
    world.mkdir()
    (world / "world.json").write_text("{}")
    (world / "440000.sqlite").write_bytes(b"440000's ledger")
    assert _refused(["world", "generate", str(world), "--scale", "1e-6"], capsys) == \
        f"{world}: expected an empty or new directory, found 2 files (a world generated earlier?); " \
        "use --force to replace it"
    assert (world / "440000.sqlite").read_bytes() == b"440000's ledger"
    (tmp_path / "afile").write_text("x")
    assert _refused(["world", "generate", str(tmp_path / "afile")], capsys) == \
        f"{tmp_path / 'afile'}: expected an empty or new directory, found a file"
    assert _refused(["world", "generate", str(world), "--scale", "0", "--force"], capsys) == \
        "--scale: expected a fraction of the population in (0, 1], found 0"
    assert (world / "440000.sqlite").read_bytes() == b"440000's ledger"  # a bad --scale deletes nothing


def test_world_generate_force_replaces_the_world_and_its_ledgers(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    world = tmp_path / "world"
    world.mkdir()
    (world / "000000.sqlite").write_bytes(b"the hub's ledger")
    (world / "000000.sqlite-wal").write_bytes(b"")
    (world / "440000.sqlite").write_bytes(b"440000's ledger")
    (world / "notes.txt").write_text("mine")
    assert main(["world", "generate", str(world), "--scale", "1e-6", "--force"]) == 0
    assert capsys.readouterr().out.startswith(f"world in {world}: ")
    names = {p.name for p in world.iterdir()}
    assert "000000.sqlite" not in names and "000000.sqlite-wal" not in names
    assert {"world.json", "notes.txt", "440000.sqlite"} <= names and len(names) == 34
    assert (world / "440000.sqlite").read_bytes().startswith(b"SQLite format 3\0")
    assert (world / "notes.txt").read_text() == "mine"


def test_world_generate_force_refuses_a_world_a_node_is_running_on(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    world = tmp_path / "world"
    world.mkdir()
    (world / "440000.sqlite").write_bytes(b"440000's ledger")
    (world / "world.json").write_text("{}")
    holder = subprocess.Popen(  # a node's process: it holds its ledger's writer lock
        [sys.executable, "-c", "import sys; from pathlib import Path; from exchange._ledger_db import WriterLock; "
         f"WriterLock.acquire(Path({str(world / '440000.sqlite')!r})); print('locked', flush=True); "
         "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert main(["world", "generate", str(world), "--scale", "1e-6", "--force"]) == 2
        err = capsys.readouterr().err
        assert err == (f"tongban: error: {world / '440000.sqlite'}: another process (pid {holder.pid}) is writing "
                       "this ledger (only one node may use a data dir); stop it first\n")
        assert (world / "440000.sqlite").read_bytes() == b"440000's ledger" and (world / "world.json").exists()
    finally:
        holder.communicate("")
    assert main(["world", "generate", str(world), "--scale", "1e-6", "--force"]) == 0  # stopped: replaced
    assert (world / "440000.sqlite").read_bytes().startswith(b"SQLite format 3\0")
    assert not (world / "440000.sqlite.lock").exists()


# --------------------------------------------------------------------------- tongban run script.py


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TONGBAN_SCRIPT_SECONDS", raising=False)
    path = tmp_path / "my-sweep.py"
    path.write_text('import os\nprint("seconds", os.environ.get("TONGBAN_SCRIPT_SECONDS", "15"))\n')
    return path


def test_run_script_passes_duration_and_refuses_seed_and_cache(script: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", str(script), "--duration", "3", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"seconds 3.0\nruns of my-sweep.py are in {out}\n"
    assert main(["run", str(script), "--out", str(out)]) == 0  # the variable does not outlive the run
    assert capsys.readouterr().out.startswith("seconds 15\n")
    assert _refused(["run", str(script), "--seed", "7"], capsys) == \
        '--seed applies to scenario files, not to scripts like my-sweep.py; a script sets its own seed ' \
        '(api.set_value(sc, "world.seed", N))'
    assert _refused(["run", str(script), "--cache", str(tmp_path / "c")], capsys) == \
        "--cache applies to scenario files, not to scripts like my-sweep.py; a script sets its own cache " \
        "(cache_dir= of api.run)"
    assert _refused(["run", str(script), "--duration", "-1"], capsys) == \
        "--duration: expected a number greater than 0 and at most 86400, found -1"


def test_run_script_refuses_duration_it_would_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fixed.py"
    path.write_text('print("runs for 15 s")\n')
    assert _refused(["run", str(path), "--duration", "3"], capsys) == \
        "--duration: expected a script that reads TONGBAN_SCRIPT_SECONDS, found fixed.py, which does not " \
        "(it sets its own durations)"


@pytest.mark.parametrize("budget", ["0", "-5", "nan"])
def test_sweep_refuses_a_budget_that_is_not_positive(budget: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", str(ROOT / "scenarios" / "quickstart.toml"), "--set", "load.rate_per_s=10",
                 "--budget-ms", budget, "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"tongban: error: --budget-ms: expected a p99 budget in ms greater than 0, "
                                       f"found {float(budget):g}\n")
    assert not out.exists()
