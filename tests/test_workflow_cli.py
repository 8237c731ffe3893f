"""examples/orders.py end to end: through ``agnt5 dev``, and through a coordinator with separate
workers driven by ``agnt5 invoke --submit``, ``agnt5 signal`` and ``agnt5 result``."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
from _coordinator_support import PYTHON, agnt5_env, coordinator_process
from _processes import spawn, stop

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "orders.py"


def agnt5(*args: str, cwd: Path, timeout: float = 60) -> str:
    """``python -m agnt5 *args``; its stdout (it must succeed)."""
    run = subprocess.run(
        [*PYTHON, "-m", "agnt5", *args],
        capture_output=True,
        env=agnt5_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    return run.stdout.decode()


@contextmanager
def workers(endpoint: str, count: int, cwd: Path) -> Iterator[None]:
    with ExitStack() as stack:
        for n in range(count):
            log = stack.enter_context(open(cwd / f"worker-{n}.log", "wb"))
            process = spawn(
                [*PYTHON, "-m", "agnt5", "worker", str(EXAMPLE), "--endpoint", endpoint],
                stdout=log, stderr=subprocess.STDOUT, env=agnt5_env(), cwd=cwd,
            )  # fmt: skip
            stack.callback(stop, process, 0)
        yield


def test_the_example_runs_under_agnt5_dev(tmp_path: Path) -> None:
    out = agnt5(
        "dev", str(EXAMPLE), "--port", "0", "--no-http", "--log-level", "WARNING",
        "--invoke", "process_order", '{"order_id": "o-1"}', cwd=tmp_path,
    )  # fmt: skip
    result = orjson.loads(out)  # only the result: status lines go to stderr
    assert result["status"] == "done" and result["approved"] is False  # nobody approved
    assert result["charge"] == {"charged": 42.5}
    assert result["named"] == {"db": "from the database", "api": "from the API"}


def test_the_example_runs_on_separate_workers_driven_from_the_cli(tmp_path: Path) -> None:
    with (
        coordinator_process("--no-http") as coordinator,
        workers(coordinator.endpoint, 2, tmp_path),
    ):
        endpoint = ["--endpoint", coordinator.endpoint]
        deadline = time.monotonic() + 30
        while '"in_flight"' not in agnt5("services", "--json", *endpoint, cwd=tmp_path):
            assert time.monotonic() < deadline, "the workers did not register"
            time.sleep(0.2)
        submitted = agnt5(
            "invoke", "orders", "process_order", '{"order_id": "o-7", "approval_ms": 600000}',
            "--submit", *endpoint, cwd=tmp_path,
        )  # fmt: skip
        invocation_id = submitted.strip()
        deadline = time.monotonic() + 30
        view: dict[str, Any] = {}
        while view.get("state") != "SUSPENDED" or view["steps"][-1]["kind"] != "signal":
            assert time.monotonic() < deadline, f"never waited for approval: {view}"
            time.sleep(0.2)
            view = orjson.loads(agnt5("result", invocation_id, "--json", *endpoint, cwd=tmp_path))
        signal = agnt5(
            "signal", invocation_id, "approved", '{"approved": true}', *endpoint, cwd=tmp_path
        )
        assert signal.strip() == "delivered"
        final = orjson.loads(
            agnt5("result", invocation_id, "--wait", "30", "--json", *endpoint, cwd=tmp_path)
        )
    assert final["state"] == "SUCCEEDED"
    assert final["result"]["approved"] is True and final["result"]["reserved"] == {
        "reserved": ["book"]
    }
    assert [(step["kind"], step["name"]) for step in final["steps"]] == [
        ("task", "orders/validate"),
        ("step", "charge"),
        ("task", "orders/reserve"),
        ("step", "mail"),
        ("task", "orders/a"),
        ("task", "orders/b"),
        ("sleep", ""),
        ("signal", "approved"),
    ]
    assert all(step["state"] == "completed" for step in final["steps"])
