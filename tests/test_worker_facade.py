"""`Worker` as the docs use it: `is_running`, a runtime patched out, the docs' own test file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest.mock import patch

import pytest
from _coordinator_support import agnt5_env

from agnt5 import Worker
from agnt5.coordinator import Coordinator

# The docs' "Testing Workers" example, as written there.
DOCS_TEST = textwrap.dedent(
    """
    import pytest
    from unittest.mock import AsyncMock, patch
    from agnt5 import Worker, function

    @function()
    def test_function(data: str) -> str:
        return data.upper()

    @pytest.fixture
    async def mock_worker():
        with patch('agnt5.worker.PyWorker'):
            worker = Worker("test-service")
            yield worker

    @pytest.mark.asyncio
    async def test_worker_registration(mock_worker):
        # Test component registration
        mock_worker._register_components()

        # Verify functions are registered
        from agnt5.decorators import get_registered_functions
        functions = get_registered_functions()
        assert "test_function" in functions

    @pytest.mark.asyncio
    async def test_worker_asgi_mode():
        app = Worker("test-service", runtime="asgi")
        assert callable(app)  # ASGI callable interface
    """
)


def test_a_patched_out_runtime_is_not_running() -> None:
    with patch("agnt5.worker.PyWorker"):
        worker = Worker("test-service")
        assert worker.is_running() is False


@pytest.mark.asyncio
async def test_a_standalone_worker_runs_from_run_until_it_stops() -> None:
    async with Coordinator(port=0) as coordinator:
        worker = Worker("running-service", coordinator_endpoint=coordinator.endpoint)
        assert worker.is_running() is False
        runner = asyncio.create_task(worker.run())
        for _ in range(500):  # until run() started (bounded: 5 s)
            if worker.is_running():
                break
            await asyncio.sleep(0.01)
        assert worker.is_running() is True
        worker.stop()
        await asyncio.wait_for(runner, 30)
        assert worker.is_running() is False


@pytest.mark.asyncio
async def test_an_asgi_worker_runs_from_startup_to_shutdown() -> None:
    app = Worker("web-service", runtime="asgi")
    assert app.is_running() is False
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    states: list[bool] = []

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        states.append(app.is_running())

    await app({"type": "lifespan"}, receive, send)
    assert states == [True, False]


def test_the_docs_test_file_passes_as_written(tmp_path: Path) -> None:
    (tmp_path / "test_docs_worker.py").write_text(DOCS_TEST)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-o", "asyncio_mode=auto", "test_docs_worker.py"],
        capture_output=True,
        cwd=tmp_path,
        env=agnt5_env(),
        timeout=120,
    )  # fmt: skip
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, output
    assert "2 passed" in output
