"""The committed generated code must be what `make proto` would write now."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: grpc_tools stamps its own patch release into every *_pb2_grpc.py; the committed stamp
#: (the oldest grpcio the code needs, within pyproject's grpcio-tools line) may be older
#: than the grpcio-tools a fresh set-up installs, and that is not staleness.
_STAMP = re.compile(rb"^GRPC_GENERATED_VERSION = '1\.85\.\d+'$", re.MULTILINE)


def _code(path: Path) -> bytes:
    return _STAMP.sub(b"GRPC_GENERATED_VERSION = '1.85.x'", path.read_bytes())


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    protos = sorted((ROOT / "proto" / "tongban" / "v1").glob("*.proto"))
    assert protos, "no .proto files found"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", *map(str, protos)],
        check=True,
    )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.py*"))
    assert generated, "protoc wrote nothing"
    stale = [str(rel) for rel in generated if _code(ROOT / rel) != _code(tmp_path / rel)]
    assert stale == [], f"generated code differs from proto/ — run `make proto`: {stale}"
