"""Several coordinator endpoints: clients retry UNAVAILABLE on the next one; lists are checked."""

from __future__ import annotations

import asyncio
import socket

import pytest
from _coordinator_support import FakeWorker, echo, unique

from agnt5.client import AsyncClient, Client
from agnt5.config import MAX_ENDPOINTS, WorkerConfig, parse_endpoints
from agnt5.coordinator import Coordinator


def _dead_endpoint() -> str:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.asyncio
async def test_a_client_retries_on_the_next_endpoint_and_stays_there() -> None:
    service = unique()
    async with Coordinator(port=0) as live, FakeWorker(live.endpoint, service, {"f": echo}) as w:
        async with AsyncClient([_dead_endpoint(), live.endpoint], timeout=10) as client:
            assert await client.invoke(service, "f", 1, idempotency_key="k") == 1
            assert await client.invoke(service, "f", 2) == 2
            assert await client.invoke(service, "f", 1, idempotency_key="k") == 1
        assert len(w.invokes) == 2  # the retried call ran once
        with Client(f"{_dead_endpoint()},{live.endpoint}", timeout=10) as blocking:
            assert await asyncio.to_thread(blocking.invoke, service, "f", 3) == 3


@pytest.mark.parametrize(
    ("endpoints", "problem"),
    [
        ("", "one or more endpoints"),
        ("http://a:1,,http://b:2", "one or more endpoints"),
        (["http://a:1", 7], "one or more endpoints"),
        ("http://a:1,ftp://b:2", "expected http(s)://host:port"),
        (",".join(["http://a:1"] * (MAX_ENDPOINTS + 1)), f"at most {MAX_ENDPOINTS}"),
    ],
)
def test_a_bad_endpoint_list_is_a_clear_error(endpoints: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_endpoints(endpoints)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="AGNT5_COORDINATOR_ENDPOINT"):
        WorkerConfig.resolve(
            service_name="s", environ={"AGNT5_COORDINATOR_ENDPOINT": str(endpoints) or ","}
        )


def test_a_worker_reads_every_endpoint_of_its_setting() -> None:
    config = WorkerConfig.resolve(
        service_name="s",
        environ={"AGNT5_COORDINATOR_ENDPOINT": "http://a:9091, https://b:443"},
    )
    assert [(e.target, e.secure) for e in config.endpoints] == [("a:9091", False), ("b:443", True)]
    assert config.endpoint == config.endpoints[0]


@pytest.mark.asyncio
async def test_the_command_line_takes_several_endpoints(capsys: pytest.CaptureFixture[str]) -> None:
    """``--endpoint a,b``: a client command reaches the one that answers; none answering is
    one line naming them all."""
    from agnt5.cli import main

    service = unique()
    async with Coordinator(port=0) as live, FakeWorker(live.endpoint, service, {"f": echo}):
        endpoints = f"{_dead_endpoint()},{live.endpoint}"
        assert (
            await asyncio.to_thread(main, ["invoke", service, "f", "7", "--endpoint", endpoints])
            == 0
        )
        assert capsys.readouterr().out.strip() == "7"
    dead = f"{_dead_endpoint()},{_dead_endpoint()}"
    assert await asyncio.to_thread(main, ["services", "--endpoint", dead]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot reach the coordinator at {dead}: ")
