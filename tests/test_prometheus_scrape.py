"""A real Prometheus server (Debian's package) on loopback scrapes a coordinator and a worker,
both started with the CLI, while invocations run; its HTTP API then answers the invocation rate
and the queue depth."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _coordinator_support import coordinator_process, unique
from _processes import spawn, stop
from test_standalone_worker import free_port, wait_for_service, worker_process

from agnt5.client import Client

pytestmark = pytest.mark.slow

MODULE = textwrap.dedent(
    """
    import asyncio

    from agnt5 import function


    @function()
    def quick(n: int) -> int:
        return n


    @function()
    async def slow(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds
    """
)


@contextlib.contextmanager
def prometheus(directory: Path, targets: dict[str, int]) -> Iterator[httpx.Client]:
    """``prometheus`` scraping each job's 127.0.0.1 port every second; a client for its API."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "prometheus is not installed (Debian: apt-get install prometheus; .ci/run does)"
        )
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        for job, port in targets.items()
    )
    config = directory / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}"
    )
    port = free_port()
    log = open(directory / "prometheus.log", "wb")
    process = spawn(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as api:
            _eventually(lambda: _ready(api), "prometheus did not start", process, log.name)
            yield api
    finally:
        stop(process)
        log.close()


def _ready(api: httpx.Client) -> bool:
    try:
        return api.get("/-/ready").status_code == 200
    except httpx.TransportError:
        return False


def _query(api: httpx.Client, promql: str) -> dict[str, float]:
    """An instant query's result: job -> value."""
    response = api.get("/api/v1/query", params={"query": promql})
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return {r["metric"].get("job", ""): float(r["value"][1]) for r in body["data"]["result"]}


def _eventually(
    check: object, message: str, process: subprocess.Popen[bytes] | None = None, log: str = ""
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # bounded by the deadline
        if check():  # type: ignore[operator]
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.25)
    raise AssertionError(f"{message}{': ' + Path(log).read_text() if log else ''}")


def test_prometheus_scrapes_a_coordinator_and_a_worker(tmp_path: Path) -> None:
    module = tmp_path / "scraped_app.py"
    module.write_text(MODULE)
    service, health = unique(), free_port()
    with coordinator_process() as coordinator:
        gateway = int(coordinator.http_address.rsplit(":", 1)[1])
        with (
            worker_process(
                module,
                coordinator.endpoint,
                service,
                "--max-concurrency",
                "1",
                AGNT5_HEALTH_PORT=str(health),
            ),
            Client(coordinator.endpoint) as client,
            prometheus(tmp_path, {"coordinator": gateway, "worker": health}) as api,
        ):
            wait_for_service(client, service)
            _eventually(
                lambda: _query(api, "up") == {"coordinator": 1.0, "worker": 1.0},
                "prometheus did not scrape both targets",
            )
            started = time.monotonic()
            count = 0
            while time.monotonic() - started < 4 and count < 2000:  # bounded in time and count
                assert client.invoke(service, "quick", count) == count
                count += 1
            rates = _query(api, "sum by (job) (rate(agnt5_invocations_total[10s]))")
            rates.update(
                _query(api, "sum by (job) (rate(agnt5_coordinator_invocations_total[10s]))")
            )
            assert rates["worker"] > 0 and rates["coordinator"] > 0, rates

            queued = [client.submit(service, "slow", 1.0) for _ in range(4)]
            depth = f'agnt5_coordinator_queue_depth{{agnt5_service="{service}"}}'
            _eventually(
                lambda: _query(api, depth).get("coordinator", 0) >= 2,
                "prometheus never saw the queue",
            )
            for invocation in queued:
                assert client.result(invocation, timeout=20) == 1.0
            _eventually(
                lambda: _query(api, depth).get("coordinator") == 0, "the queue did not drain"
            )
