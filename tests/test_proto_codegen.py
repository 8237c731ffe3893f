"""The committed agnt5/_proto/ is exactly what scripts/gen_protos.py makes from protos/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "agnt5" / "_proto"

# Toolchain version stamps: a newer grpcio-tools changes them without the protos changing.
_STAMPS = [
    (re.compile(r"^GRPC_GENERATED_VERSION = .*$", re.MULTILINE), "GRPC_GENERATED_VERSION = <v>"),
    (
        re.compile(r"^# Protobuf Python Version: .*$", re.MULTILINE),
        "# Protobuf Python Version: <v>",
    ),
    (re.compile(r"(Domain\.PUBLIC,\n)(\s*\d+,\n){3}"), r"\1<v>\n"),
]


def _normalized(text: str) -> str:
    for pattern, replacement in _STAMPS:
        text = pattern.sub(replacement, text)
    return text


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    fresh = tmp_path / "_proto"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), str(fresh)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    expected = {p.name: _normalized(p.read_text()) for p in fresh.iterdir() if p.is_file()}
    actual = {p.name: _normalized(p.read_text()) for p in COMMITTED.iterdir() if p.is_file()}
    hint = "agnt5/_proto is stale: run `python scripts/gen_protos.py` and commit the result"
    assert sorted(actual) == sorted(expected), hint
    stale = [name for name in expected if actual[name] != expected[name]]
    assert not stale, f"{hint} (differs: {', '.join(stale)})"


def test_only_version_stamps_are_normalized() -> None:
    text = (COMMITTED / "worker_pb2.py").read_text()
    assert _normalized(text) != text
    assert _normalized(text).count("<v>") == 2
    assert "AddSerializedFile" in _normalized(text)


def test_generated_code_imports_as_a_package() -> None:
    from agnt5._proto import invocations_pb2_grpc, worker_pb2, worker_pb2_grpc

    batch = worker_pb2.InvokeBatch(invocations=[worker_pb2.Invoke(invocation_id="i", attempt=1)])
    assert worker_pb2.InvokeBatch.FromString(batch.SerializeToString()) == batch
    assert hasattr(worker_pb2_grpc, "WorkerCoordinatorStub")
    assert hasattr(invocations_pb2_grpc, "InvocationsStub")
