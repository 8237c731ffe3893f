"""Client and AsyncClient: the blocking API, error mapping, timeouts and TLS endpoints."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from _coordinator_support import (
    CoordinatorProcess,
    FakeWorker,
    blocker,
    coordinator_process,
    echo,
    unique,
)

from agnt5._proto import invocations_pb2, invocations_pb2_grpc, worker_pb2_grpc
from agnt5._wire.records import StreamOutcome
from agnt5._wire.status import ERROR_METADATA_KEY, error_from_rpc, error_trailer, status_of
from agnt5._wire.streams import add_services
from agnt5.client import AsyncClient, Client
from agnt5.errors import (
    _BY_CODE,
    AgntError,
    InvalidArgumentError,
    InvocationTimeoutError,
    NotFoundError,
    OutputNotSerializableError,
    PayloadTooLargeError,
    UnavailableError,
)


@pytest.fixture(scope="module")
def coordinator() -> Iterator[CoordinatorProcess]:
    with coordinator_process("--no-http") as process:
        yield process


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.asyncio
async def test_blocking_client_round_trip(coordinator: CoordinatorProcess) -> None:
    service = unique()
    release = asyncio.Event()
    async with FakeWorker(coordinator.endpoint, service, {"echo": echo, "hold": blocker(release)}):

        def use_client() -> None:
            with Client(coordinator.endpoint, timeout=10) as client:
                assert client.invoke(service, "echo", {"a": [1, "b"]}) == {"a": [1, "b"]}
                invocation_id = client.submit(service, "echo", 7)
                assert client.result(invocation_id) == 7
                names = [s["name"] for s in client.list_services()]
                assert service in names
                with pytest.raises(NotFoundError):
                    client.invoke(service, "missing")
                running = client.submit(service, "hold")
                with pytest.raises(InvocationTimeoutError, match=running) as caught:
                    client.result(running, timeout=0.2)
                assert caught.value.retryable
                release_soon()
                assert client.result(running, timeout=10) == "released"

        loop = asyncio.get_running_loop()

        def release_soon() -> None:
            loop.call_soon_threadsafe(release.set)

        await asyncio.to_thread(use_client)


@pytest.mark.asyncio
async def test_invoke_without_timeout_waits_at_most_the_client_timeout(
    coordinator: CoordinatorProcess,
) -> None:
    service = unique()
    release = asyncio.Event()
    async with (
        FakeWorker(coordinator.endpoint, service, {"hold": blocker(release)}),
        AsyncClient(coordinator.endpoint, timeout=0.3) as client,
    ):
        with pytest.raises(InvocationTimeoutError, match="still running") as caught:
            await client.invoke(service, "hold")
        running = caught.value.message.split()[1]  # "Invocation <id> did not finish ..."
        release.set()
        assert await client.result(running, timeout=10) == "released"


def test_unreachable_coordinator_is_unavailable() -> None:
    with Client(f"http://127.0.0.1:{_closed_port()}", timeout=5) as client:
        with pytest.raises(UnavailableError) as caught:
            client.list_services()
    assert caught.value.retryable


def test_https_endpoint_speaks_tls(coordinator: CoordinatorProcess) -> None:
    # the coordinator serves plaintext: a TLS client cannot complete a handshake with it
    with Client(f"https://{coordinator.grpc_address}", timeout=5) as client:
        with pytest.raises(UnavailableError):
            client.list_services()


def test_bad_arguments_fail_before_any_call() -> None:
    with Client("http://127.0.0.1:1") as client:
        with pytest.raises(InvalidArgumentError, match="JSON-serializable"):
            client.invoke("s", "f", {"x": object()})
        with pytest.raises(ValueError, match="timeout"):
            client.invoke("s", "f", timeout=-1)
    with pytest.raises(ValueError, match="expected http"):
        Client("ftp://host")


@pytest.mark.parametrize("code", sorted(_BY_CODE))
def test_errors_survive_the_trip_through_grpc(code: str) -> None:
    sent = _BY_CODE[code]("boom", error_type="KeyError", retryable=True)
    failure = grpc.aio.AioRpcError(
        status_of(sent), grpc.aio.Metadata(), grpc.aio.Metadata(*error_trailer(sent)), "boom"
    )
    received = error_from_rpc(failure)
    assert type(received) is type(sent)
    assert received.to_dict() == sent.to_dict()


def test_status_alone_maps_to_the_error_type() -> None:
    def failure(code: grpc.StatusCode) -> AgntError:
        return error_from_rpc(
            grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "details")
        )

    assert isinstance(failure(grpc.StatusCode.UNAVAILABLE), UnavailableError)
    assert isinstance(failure(grpc.StatusCode.DEADLINE_EXCEEDED), InvocationTimeoutError)
    internal = failure(grpc.StatusCode.INTERNAL)
    assert type(internal) is AgntError and internal.code == "INTERNAL"
    garbled = grpc.aio.Metadata((ERROR_METADATA_KEY, b"not json"))
    out_of_range = grpc.aio.AioRpcError(
        grpc.StatusCode.OUT_OF_RANGE, grpc.aio.Metadata(), garbled, "x"
    )
    assert error_from_rpc(out_of_range).code == "OUT_OF_RANGE"
    assert status_of(PayloadTooLargeError("x")) == grpc.StatusCode.OUT_OF_RANGE


class _GarbledInvocations(invocations_pb2_grpc.InvocationsServicer):
    """A server that answers every call with a result whose output is not JSON."""

    async def Invoke(self, request: Any, context: Any) -> invocations_pb2.InvocationResult:
        return invocations_pb2.InvocationResult(
            invocation_id="i", state=invocations_pb2.INVOCATION_STATE_SUCCEEDED, output=b"{bad"
        )

    async def InvokeStream(self, request_iterator: Any, context: Any) -> None:
        async for calls in request_iterator:
            await context.write([StreamOutcome(call.ref, "i", b"{bad", None) for call in calls])


@pytest.mark.asyncio
async def test_an_output_that_is_not_json_is_an_agnt5_error() -> None:
    server = grpc.aio.server()
    add_services(server, worker_pb2_grpc.WorkerCoordinatorServicer(), _GarbledInvocations())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        async with AsyncClient(endpoint, timeout=5) as client:
            with pytest.raises(OutputNotSerializableError, match="invocation i is not valid JSON"):
                await client.invoke("svc", "f")
            (outcome,) = [r async for r in client.invoke_many("svc", "f", [1])]
            assert isinstance(outcome.error, OutputNotSerializableError)

        def blocking() -> None:
            with Client(endpoint, timeout=5) as client, pytest.raises(OutputNotSerializableError):
                client.invoke("svc", "f")

        await asyncio.to_thread(blocking)
    finally:
        await server.stop(0)
