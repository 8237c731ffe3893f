"""The client-facing ``Invocations`` gRPC service: invoke, submit, fetch results, list services."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from agnt5._proto import common_pb2, invocations_pb2, invocations_pb2_grpc
from agnt5._wire.batching import Batcher
from agnt5._wire.records import ErrorItem, StreamCall, StreamOutcome
from agnt5.coordinator._grpc_util import header, serve_call
from agnt5.coordinator.auth import ANY_SERVICE, Credentials, Grant
from agnt5.coordinator.checks import cursor_text, invocation_query, milliseconds
from agnt5.coordinator.registry import Registry
from agnt5.coordinator.scheduler import Scheduler
from agnt5.coordinator.store import Invocation, InvocationPage, Listed, visible_state
from agnt5.errors import AgntError
from agnt5.workflows.journal import Entry
from agnt5.workflows.protocol import entry_message

__all__ = [
    "InvocationsService",
    "listing_message",
    "result_message",
    "services_message",
    "stream_outcome",
    "summary_message",
]


def _limit(field: str, value: int) -> float | None:
    """Seconds for a time limit in milliseconds (0: none)."""
    return milliseconds(field, value) or None


def result_message(
    invocation: Invocation, settled: bool = True, steps: list[Entry] | None = None
) -> invocations_pb2.InvocationResult:
    """An invocation as the ``InvocationResult`` the service returns (one whose outcome is not
    `Scheduler.settled` yet shows as running, without it), with a workflow's journal entries as
    its ``steps`` when given."""
    message = invocations_pb2.InvocationResult(
        invocation_id=invocation.id,
        state=visible_state(invocation, settled).value,
        attempt=invocation.attempt,
        duration_us=invocation.duration_us,
        service=invocation.service,
        function=invocation.function,
    )
    if steps:
        message.steps.extend(entry_message(entry, with_output=False) for entry in steps)
    if not settled:
        return message
    if invocation.error is not None:
        message.error.CopyFrom(common_pb2.Error(**invocation.error))
    elif invocation.output is not None:
        message.output = invocation.output
    return message


def summary_message(row: Listed) -> invocations_pb2.InvocationSummary:
    """A listed invocation as the ``InvocationSummary`` listings (and the gateway's events)
    carry."""
    return invocations_pb2.InvocationSummary(
        invocation_id=row.id,
        service=row.service,
        function=row.function,
        state=row.state.value,
        attempt=row.attempt,
        created_unix_ms=row.created_unix_ms,
        updated_unix_ms=row.updated_unix_ms,
        duration_us=row.duration_us,
        error_code=row.error_code,
    )


def listing_message(page: InvocationPage) -> invocations_pb2.ListInvocationsResponse:
    """A page of a listing as the ``ListInvocationsResponse`` the service returns."""
    return invocations_pb2.ListInvocationsResponse(
        invocations=[summary_message(row) for row in page.invocations],
        next_cursor=cursor_text(page.next_after),
    )


def stream_outcome(ref: int, invocation: Invocation) -> StreamOutcome:
    """A finished invocation as the `StreamOutcome` for the call numbered ``ref``."""
    if invocation.error is not None:
        return StreamOutcome(ref, invocation.id, None, ErrorItem(**invocation.error))
    return StreamOutcome(ref, invocation.id, invocation.output or b"", None)


def _metadata(sent: Any, traceparent: str | None) -> dict[str, str]:
    """The caller's metadata, plus the call's ``traceparent`` header when it sent none."""
    if not traceparent or "traceparent" in sent:
        return sent if type(sent) is dict else dict(sent)
    return {**sent, "traceparent": traceparent}


def _outcome_size(outcome: StreamOutcome) -> int:
    return 48 + len(outcome.output or b"") + (len(outcome.error.message) if outcome.error else 0)


_END: Any = object()  # on an InvokeStream outbox: every call has its outcome, end the stream


class _OpenCalls:
    """The calls of one InvokeStream still waiting for an outcome, and its outcome queue."""

    def __init__(self) -> None:
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.count = 0
        self.reading = True

    def opened(self) -> None:
        self.count += 1

    def finished(self, outcome: StreamOutcome) -> None:
        self.outbox.put_nowait(outcome)
        self.count -= 1
        self.end_if_done()

    def end_if_done(self) -> None:
        if not self.reading and self.count == 0:
            self.outbox.put_nowait(_END)


def services_message(
    registry: Registry, scheduler: Scheduler, grant: Grant = ANY_SERVICE
) -> invocations_pb2.ListServicesResponse:
    """Every known service ``grant`` allows, with its components, connected workers and queue
    length."""
    now = time.monotonic()
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
                        last_seen_ms_ago=int((now - worker.last_seen) * 1000),
                    )
                    for worker in entry.workers.values()
                ],
                queued=scheduler.queued(entry.name),
            )
            for entry in registry.services()
            if grant.allows(entry.name)
        ]
    )


class InvocationsService(invocations_pb2_grpc.InvocationsServicer):
    """Every call needs ``authorization: Bearer <key>`` with a client key when the coordinator
    has client keys, and reaches only the services its key is limited to."""

    def __init__(self, scheduler: Scheduler, registry: Registry, credentials: Credentials) -> None:
        self._scheduler = scheduler
        self._registry = registry
        self._authorize = credentials.client
        self._refused = scheduler.telemetry.refused

    async def Invoke(
        self, request: invocations_pb2.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.InvocationResult:
        async def work(grant: Grant) -> invocations_pb2.InvocationResult:
            wait = _limit("wait_ms", request.wait_ms)
            invocation = self._submit(request, context, grant)[0]
            settled = await self._scheduler.wait(invocation, wait)
            if not settled:
                await self._scheduler.saved()  # its id goes out only once it is journaled
            return result_message(invocation, settled)

        return await serve_call(context, self._authorize, work, self._refused)

    async def Submit(
        self, request: invocations_pb2.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.SubmitResponse:
        async def work(grant: Grant) -> invocations_pb2.SubmitResponse:
            invocation, deduplicated = self._submit(request, context, grant)
            if not self._scheduler.settled(invocation):
                await self._scheduler.saved()
            return invocations_pb2.SubmitResponse(
                invocation_id=invocation.id, deduplicated=deduplicated
            )

        return await serve_call(context, self._authorize, work, self._refused)

    async def GetResult(
        self, request: invocations_pb2.GetResultRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.InvocationResult:
        async def work(grant: Grant) -> invocations_pb2.InvocationResult:
            wait = milliseconds("wait_ms", request.wait_ms)
            invocation = self._scheduler.get(request.invocation_id)
            grant.check(invocation.service, "read results of")
            settled = await self._scheduler.wait(invocation, wait)
            steps = self._scheduler.workflows.steps(invocation) if request.include_steps else None
            return result_message(invocation, settled, steps)

        return await serve_call(context, self._authorize, work, self._refused)

    async def Signal(
        self, request: invocations_pb2.SignalRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.SignalResponse:
        async def work(grant: Grant) -> invocations_pb2.SignalResponse:
            invocation = self._scheduler.get(request.invocation_id)
            grant.check(invocation.service, "send signals to")
            delivered = await self._scheduler.workflows.signal(
                invocation, request.name, request.payload
            )
            return invocations_pb2.SignalResponse(delivered=delivered)

        return await serve_call(context, self._authorize, work, self._refused)

    async def ListInvocations(
        self, request: invocations_pb2.ListInvocationsRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.ListInvocationsResponse:
        async def work(grant: Grant) -> invocations_pb2.ListInvocationsResponse:
            if request.service:
                grant.check(request.service, "list invocations of")
            query = invocation_query(
                service=request.service,
                function=request.function,
                states=request.states,
                created_after_unix_ms=request.created_after_unix_ms,
                created_before_unix_ms=request.created_before_unix_ms,
                limit=request.limit,
                cursor=request.cursor,
                allowed=grant.services,
            )
            return listing_message(self._scheduler.list(query))

        return await serve_call(context, self._authorize, work, self._refused)

    async def Cancel(
        self, request: invocations_pb2.CancelRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.InvocationResult:
        async def work(grant: Grant) -> invocations_pb2.InvocationResult:
            invocation = self._scheduler.get(request.invocation_id)
            grant.check(invocation.service, "cancel invocations of")
            invocation = await self._scheduler.cancel(invocation.id, request.reason)
            return result_message(invocation, self._scheduler.settled(invocation))

        return await serve_call(context, self._authorize, work, self._refused)

    async def InvokeStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        """Start each call as it arrives; send each outcome, batched, once its invocation ends.

        The stream ends after the client stops writing and every call has had its outcome.
        An accepted stream gets its (empty) initial metadata at once: the client writes only
        after it, so a refusal reaches it as its own status, not as a failed write.
        """

        async def work(grant: Grant) -> None:
            await context.send_initial_metadata(())
            calls = _OpenCalls()
            traceparent = header(context, "traceparent")
            writer = asyncio.create_task(self._write_outcomes(context, calls.outbox))
            try:
                while True:  # one batch of calls per turn, until the client stops writing
                    batch = await context.read()
                    if batch is grpc.aio.EOF:
                        break
                    for call in batch:
                        self._start_call(call, traceparent, calls, grant)
                calls.reading = False
                calls.end_if_done()
                await writer
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

        await serve_call(context, self._authorize, work, self._refused)

    def _start_call(
        self, call: StreamCall, traceparent: str | None, calls: _OpenCalls, grant: Grant
    ) -> None:
        calls.opened()
        try:
            grant.check(call.service, "invoke")
            invocation, _ = self._scheduler.submit(
                call.service,
                call.function,
                call.input,
                idempotency_key=call.idempotency_key,
                timeout=_limit("timeout_ms", call.timeout_ms),
                metadata=_metadata(call.metadata, traceparent),
            )
        except AgntError as error:
            self._refused(error)
            calls.finished(StreamOutcome(call.ref, "", None, ErrorItem(**error.to_dict())))
            return
        ref = call.ref
        self._scheduler.on_finish(
            invocation, lambda done: calls.finished(stream_outcome(ref, done))
        )

    @staticmethod
    async def _write_outcomes(
        context: grpc.aio.ServicerContext, outbox: asyncio.Queue[Any]
    ) -> None:
        frames = Batcher(outbox, StreamOutcome, _outcome_size)
        while True:  # until _END, queued once every call has had its outcome
            frame = await frames.next()
            if frame is _END:
                return
            await context.write(frame)

    async def ListServices(
        self, request: invocations_pb2.ListServicesRequest, context: grpc.aio.ServicerContext
    ) -> invocations_pb2.ListServicesResponse:
        async def work(grant: Grant) -> invocations_pb2.ListServicesResponse:
            return services_message(self._registry, self._scheduler, grant)

        return await serve_call(context, self._authorize, work, self._refused)

    def _submit(
        self,
        request: invocations_pb2.InvokeRequest,
        context: grpc.aio.ServicerContext,
        grant: Grant,
    ) -> tuple[Invocation, bool]:
        grant.check(request.service, "invoke")
        return self._scheduler.submit(
            request.service,
            request.function,
            request.input,
            idempotency_key=request.idempotency_key,
            timeout=_limit("timeout_ms", request.timeout_ms),
            metadata=_metadata(request.metadata, header(context, "traceparent")),
        )
