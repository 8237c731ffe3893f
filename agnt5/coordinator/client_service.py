"""The client-facing ``Invocations`` gRPC service: invoke, submit, fetch results, list services."""

from __future__ import annotations

import grpc

from agnt5._proto import common_pb2, invocations_pb2, invocations_pb2_grpc
from agnt5.coordinator._grpc_util import header, serve_call
from agnt5.coordinator.registry import Registry
from agnt5.coordinator.scheduler import Scheduler
from agnt5.coordinator.store import Invocation

__all__ = ["InvocationsService", "result_message", "services_message"]


def _seconds(milliseconds: int) -> float | None:
    return milliseconds / 1000 if milliseconds else None


def result_message(invocation: Invocation) -> invocations_pb2.InvocationResult:
    """An invocation as the ``InvocationResult`` the service returns."""
    message = invocations_pb2.InvocationResult(
        invocation_id=invocation.id,
        state=invocation.state.value,
        attempt=invocation.attempt,
        duration_us=invocation.duration_us,
        service=invocation.service,
        function=invocation.function,
    )
    if invocation.error is not None:
        message.error.CopyFrom(common_pb2.Error(**invocation.error))
    elif invocation.output is not None:
        message.output = invocation.output
    return message


def services_message(
    registry: Registry, scheduler: Scheduler
) -> invocations_pb2.ListServicesResponse:
    """Every known service with its components, connected workers and queue length."""
    return invocations_pb2.ListServicesResponse(
        services=[
            invocations_pb2.ServiceInfo(
                name=entry.name,
                version=entry.version,
                components=list(entry.components.values()),
                workers=[
                    invocations_pb2.WorkerInfo(
                        worker_id=worker.worker_id,
                        version=worker.version,
                        max_concurrency=worker.max_concurrency,
                        in_flight=len(worker.in_flight),
                        draining=worker.draining,
                    )
                    for worker in entry.workers.values()
                ],
                queued=scheduler.queued(entry.name),
            )
            for entry in registry.services()
        ]
    )


class InvocationsService(invocations_pb2_grpc.InvocationsServicer):
    """Every call needs ``authorization: Bearer <key>`` when the coordinator has an API key."""

    def __init__(self, scheduler: Scheduler, registry: Registry, *, api_key: str | None) -> None:
        self._scheduler = scheduler
        self._registry = registry
        self._api_key = api_key

    async def Invoke(
        self, request: invocations_pb2.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.InvocationResult:
        async def work() -> invocations_pb2.InvocationResult:
            invocation = self._submit(request, context)[0]
            await self._scheduler.wait(invocation, _seconds(request.wait_ms))
            return result_message(invocation)

        return await serve_call(context, self._api_key, work)

    async def Submit(
        self, request: invocations_pb2.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.SubmitResponse:
        async def work() -> invocations_pb2.SubmitResponse:
            invocation, deduplicated = self._submit(request, context)
            return invocations_pb2.SubmitResponse(
                invocation_id=invocation.id, deduplicated=deduplicated
            )

        return await serve_call(context, self._api_key, work)

    async def GetResult(
        self, request: invocations_pb2.GetResultRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.InvocationResult:
        async def work() -> invocations_pb2.InvocationResult:
            invocation = self._scheduler.get(request.invocation_id)
            await self._scheduler.wait(invocation, request.wait_ms / 1000)
            return result_message(invocation)

        return await serve_call(context, self._api_key, work)

    async def ListServices(
        self, request: invocations_pb2.ListServicesRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.ListServicesResponse:
        async def work() -> invocations_pb2.ListServicesResponse:
            return services_message(self._registry, self._scheduler)

        return await serve_call(context, self._api_key, work)

    def _submit(
        self, request: invocations_pb2.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> tuple[Invocation, bool]:
        metadata = dict(request.metadata)
        traceparent = header(context, "traceparent")
        if traceparent and "traceparent" not in metadata:
            metadata["traceparent"] = traceparent
        return self._scheduler.submit(
            request.service,
            request.function,
            request.input,
            idempotency_key=request.idempotency_key,
            timeout=_seconds(request.timeout_ms),
            metadata=metadata,
        )
