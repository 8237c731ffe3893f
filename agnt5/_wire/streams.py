"""The batched streams on gRPC: the worker stream and ``InvokeStream`` through the frame codec.

Both ends of ``WorkerCoordinator.Connect`` and ``Invocations.InvokeStream`` (de)serialize with
`agnt5._speedups` (compiled or pure, one choice): batches travel as record lists, the rare
control messages as generated protobuf messages. Every other method keeps the generated code's
protobuf (de)serializers. Imports grpc and protobuf: load it only where they are wanted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message_factory

from agnt5 import _speedups as codec
from agnt5._proto import invocations_pb2, worker_pb2, workflow_pb2

__all__ = ["add_services", "invoke_stream", "worker_stream"]

_CONNECT = "/agnt5.v1.WorkerCoordinator/Connect"
_INVOKE_STREAM = "/agnt5.v1.Invocations/InvokeStream"
_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _worker_message(message: Any) -> bytes:
    if type(message) is list:
        if type(message[0]) is workflow_pb2.WorkflowCommand:
            commands = workflow_pb2.WorkflowCommands(commands=message)
            return bytes(worker_pb2.WorkerMessage(workflow_commands=commands).SerializeToString())
        return codec.encode_result_batch(message)
    return bytes(message.SerializeToString())


def _coordinator_message(message: Any) -> bytes:
    if type(message) is list:
        if type(message[0]) is workflow_pb2.WorkflowEvent:
            events = workflow_pb2.WorkflowEvents(events=message)
            return bytes(worker_pb2.CoordinatorMessage(workflow_events=events).SerializeToString())
        return codec.encode_invoke_batch(message)
    return bytes(message.SerializeToString())


def worker_stream(channel: grpc.aio.Channel, metadata: Any) -> Any:
    """Open ``WorkerCoordinator.Connect``: write lists of `ResultItem` or of ``WorkflowCommand``,
    or WorkerMessages; read ``(kind, body)`` pairs (``("invoke_batch", [InvokeItem, ...])`` for
    invocations)."""
    method = channel.stream_stream(
        _CONNECT,
        request_serializer=_worker_message,
        response_deserializer=codec.decode_coordinator_message,
    )
    return method(metadata=metadata)


def invoke_stream(channel: grpc.aio.Channel, metadata: Any) -> Any:
    """Open ``Invocations.InvokeStream``: write `StreamCall` lists, read `StreamOutcome` lists."""
    method = channel.stream_stream(
        _INVOKE_STREAM,
        request_serializer=codec.encode_stream_calls,
        response_deserializer=codec.decode_stream_outcomes,
    )
    return method(metadata=metadata)


def _handlers(
    servicer: Any, module: Any, service: str, codecs: dict[str, tuple[Callable[..., Any], ...]]
) -> tuple[str, dict[str, grpc.RpcMethodHandler]]:
    descriptor = module.DESCRIPTOR.services_by_name[service]
    handlers = {}
    for method in descriptor.methods:
        deserialize, serialize = codecs.get(method.name) or (
            message_factory.GetMessageClass(method.input_type).FromString,
            message_factory.GetMessageClass(method.output_type).SerializeToString,
        )
        make = _KINDS[method.client_streaming, method.server_streaming]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=deserialize,
            response_serializer=serialize,
        )
    return descriptor.full_name, handlers


def add_services(server: grpc.aio.Server, worker_servicer: Any, invocations_servicer: Any) -> None:
    """Serve ``WorkerCoordinator`` and ``Invocations`` on ``server``, batched streams via the codec."""
    services = [
        _handlers(worker_servicer, worker_pb2, "WorkerCoordinator", {
            "Connect": (codec.decode_worker_message, _coordinator_message),
        }),
        _handlers(invocations_servicer, invocations_pb2, "Invocations", {
            "InvokeStream": (codec.decode_stream_calls, codec.encode_stream_outcomes),
        }),
    ]  # fmt: skip
    for name, handlers in services:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
        server.add_registered_method_handlers(name, handlers)
