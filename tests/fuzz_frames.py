"""Differential fuzzer of the frame codec: ``python tests/fuzz_frames.py [ITERATIONS] [SEED]``.

Every iteration mutates a random valid frame and decodes it with the compiled codec and its
pure twin; they must agree (same records or the same `FrameError`), and nothing else may be
raised. Exits non-zero on the first disagreement or crash. CI runs a short version
(tests/test_frames_fuzz.py); this is the long run.
"""

from __future__ import annotations

import sys
import time

from _frames_support import fuzz

__all__ = ["main"]


def main(argv: list[str]) -> int:
    iterations = int(argv[0]) if argv else 1_000_000
    seed = int(argv[1]) if len(argv) > 1 else 0
    started = time.monotonic()

    def report(done: int, counts: dict[str, int]) -> None:
        elapsed = time.monotonic() - started
        print(f"{done} iterations in {elapsed:.0f}s: {counts}", flush=True)

    counts = fuzz(iterations, seed, report)
    elapsed = time.monotonic() - started
    print(f"done: {iterations} iterations, seed {seed}, {elapsed:.0f}s, no disagreement: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
