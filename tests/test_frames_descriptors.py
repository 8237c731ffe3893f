"""Both codecs take every field number from the generated descriptors, none from their source.

A copy of the protos gains a message kind in both envelopes (the slots ``worker.proto`` keeps
free for later kinds) and moves fields to other numbers, two-byte tags included. Run against
code generated from that copy, the compiled codec and its pure twin still agree on every frame
and every record, and what they write is what protobuf reads.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from _coordinator_support import PYTHON, agnt5_env

pytestmark = pytest.mark.c_extension  # compares the compiled codec with its twin

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

CHANGES = [  # (pattern, replacement) applied to a copy of worker.proto
    (
        r"WorkflowEvents workflow_events = 6;\n  \}",
        "WorkflowEvents workflow_events = 6;\n    Pause pause = 7;\n  }",
    ),
    (
        r"WorkflowCommands workflow_commands = 6;\n  \}",
        "WorkflowCommands workflow_commands = 6;\n    Pause pause = 7;\n  }",
    ),
    (r"InvokeBatch invoke_batch = 2;", "InvokeBatch invoke_batch = 17;"),
    (r"ResultBatch result_batch = 2;", "ResultBatch result_batch = 23;"),
    (r"uint32 attempt = 5;\n  // Absolute", "uint32 attempt = 20;\n  // Absolute"),
    (r"uint64 deadline_unix_ms = 6;", "uint64 deadline_unix_ms = 2047;"),
    (r"repeated Result results = 1;", "repeated Result results = 3;"),
    (r"bytes output = 3;\n    // Why", "bytes output = 30;\n    // Why"),
]
PAUSE = (
    "\n// A later kind: not known to this source tree.\nmessage Pause {\n  string reason = 1;\n}\n"
)

CHECK = textwrap.dedent(
    """
    import importlib.util, sys
    from pathlib import Path

    generated, tests = Path(sys.argv[1]), sys.argv[2]
    import agnt5._proto as package  # the generated copy stands in for the real modules
    for name in ("common_pb2", "workflow_pb2", "invocations_pb2", "worker_pb2"):
        spec = importlib.util.spec_from_file_location(f"agnt5._proto.{name}", generated / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        setattr(package, name, module)

    sys.path.insert(0, tests)
    from _frames_support import compare, fuzz
    from agnt5._speedups import _frames as compiled, _frames_py as twin
    from agnt5._wire.records import ErrorItem, InvokeItem, ResultItem
    worker_pb2 = package.worker_pb2

    pause = worker_pb2.CoordinatorMessage(pause=worker_pb2.Pause(reason="later"))
    assert compare("decode_coordinator_message", pause.SerializeToString())[1][0] == "pause"
    pause = worker_pb2.WorkerMessage(pause=worker_pb2.Pause(reason="later"))
    assert compare("decode_worker_message", pause.SerializeToString())[1][0] == "pause"

    invokes = [InvokeItem("i", "f", b"[1]", {"k": "v"}, 3, 7)]
    written = compiled.encode_invoke_batch(invokes)
    assert written == twin.encode_invoke_batch(invokes)
    parsed = worker_pb2.CoordinatorMessage.FromString(written).invoke_batch.invocations[0]
    assert (parsed.attempt, parsed.deadline_unix_ms) == (3, 7)
    assert compare("decode_coordinator_message", written) == ("ok", ("invoke_batch", invokes))

    results = [ResultItem("i", 2, b"out", None, 5), ResultItem("j", 1, None, ErrorItem("E"), 0)]
    written = compiled.encode_result_batch(results)
    assert written == twin.encode_result_batch(results)
    assert worker_pb2.WorkerMessage.FromString(written).result_batch.results[0].output == b"out"
    assert compare("decode_worker_message", written) == ("ok", ("result_batch", results))

    counts = fuzz(2000, 7)
    assert counts["ok"] and counts["error"], counts
    print("agree", counts)
    """
)


def _changed_protos(directory: Path) -> Path:
    """A copy of protos/ with `CHANGES` and `PAUSE` applied to worker.proto."""
    root = directory / "protos"
    shutil.copytree(ROOT / "protos", root)
    worker = root / "agnt5" / "v1" / "worker.proto"
    text = worker.read_text()
    for pattern, replacement in CHANGES:
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"worker.proto no longer contains {pattern!r}: update this test"
    worker.write_text(text + PAUSE)
    return root


def _generate(protos: Path, out: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    gen_protos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_protos)
    gen_protos.generate(out, protos)


def test_a_new_kind_and_moved_fields_decode_and_encode_alike(tmp_path: Path) -> None:
    generated = tmp_path / "generated"
    _generate(_changed_protos(tmp_path), generated)
    run = subprocess.run(
        [*PYTHON, "-c", CHECK, str(generated), str(TESTS)],
        capture_output=True,
        text=True,
        env=agnt5_env(),
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert run.stdout.startswith("agree")
