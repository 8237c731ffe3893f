"""Regenerate agnt5/_proto/ from protos/agnt5/v1/*.proto with grpc_tools.protoc.

Usage: ``python scripts/gen_protos.py [OUT_DIR]`` (default: ``agnt5/_proto``).

protoc names the modules after the proto paths (``agnt5/v1/worker.proto`` ->
``agnt5.v1.worker_pb2``), which would clash with the real ``agnt5`` package. The generated
files are therefore flattened into one package and their cross-imports rewritten to relative
ones (``from . import common_pb2``), so ``agnt5._proto.worker_pb2`` imports with no sys.path
changes while the descriptors keep their unique ``agnt5/v1/...`` names.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["PROTO_ROOT", "generate"]

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
_PACKAGE = "agnt5/v1"
_INIT = '"""Code generated from protos/agnt5/v1 by scripts/gen_protos.py: never edit by hand."""\n'
_IMPORT = re.compile(r"^from agnt5\.v1 import ", re.MULTILINE)


def generate(out_dir: Path, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Write the modules generated from ``proto_root`` (and ``__init__.py``) into ``out_dir``."""
    from grpc_tools import protoc

    protos = sorted((proto_root / _PACKAGE).glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {proto_root / _PACKAGE}")
    include = Path(protoc.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *(str(p.relative_to(proto_root)) for p in protos),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("grpc_tools.protoc failed")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [out_dir / "__init__.py"]
        written[0].write_text(_INIT)
        for source in sorted((Path(tmp) / _PACKAGE).iterdir()):
            text = source.read_text()
            if source.name.endswith("_grpc.py") and "Stub" not in text:
                continue  # a proto with messages only: its grpc module would be empty
            target = out_dir / source.name
            target.write_text(_IMPORT.sub("from . import ", text))
            written.append(target)
    return written


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else ROOT / "agnt5" / "_proto"
    if out_dir.exists() and not argv:
        shutil.rmtree(out_dir)
    for path in generate(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
