from . import common_pb2 as _common_pb2
from . import workflow_pb2 as _workflow_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerMessage(_message.Message):
    __slots__ = ("register", "result_batch", "heartbeat", "drain", "unregister", "workflow_commands")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    RESULT_BATCH_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_COMMANDS_FIELD_NUMBER: _ClassVar[int]
    register: Register
    result_batch: ResultBatch
    heartbeat: Heartbeat
    drain: Drain
    unregister: Unregister
    workflow_commands: _workflow_pb2.WorkflowCommands
    def __init__(self, register: _Optional[_Union[Register, _Mapping]] = ..., result_batch: _Optional[_Union[ResultBatch, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ..., unregister: _Optional[_Union[Unregister, _Mapping]] = ..., workflow_commands: _Optional[_Union[_workflow_pb2.WorkflowCommands, _Mapping]] = ...) -> None: ...

class CoordinatorMessage(_message.Message):
    __slots__ = ("register_ack", "invoke_batch", "cancel", "heartbeat_ack", "drain", "workflow_events")
    REGISTER_ACK_FIELD_NUMBER: _ClassVar[int]
    INVOKE_BATCH_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_EVENTS_FIELD_NUMBER: _ClassVar[int]
    register_ack: RegisterAck
    invoke_batch: InvokeBatch
    cancel: Cancel
    heartbeat_ack: HeartbeatAck
    drain: Drain
    workflow_events: _workflow_pb2.WorkflowEvents
    def __init__(self, register_ack: _Optional[_Union[RegisterAck, _Mapping]] = ..., invoke_batch: _Optional[_Union[InvokeBatch, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ..., workflow_events: _Optional[_Union[_workflow_pb2.WorkflowEvents, _Mapping]] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("service_name", "service_version", "worker_id", "components", "max_concurrency", "sdk_version")
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    service_name: str
    service_version: str
    worker_id: str
    components: _containers.RepeatedCompositeFieldContainer[_common_pb2.Component]
    max_concurrency: int
    sdk_version: str
    def __init__(self, service_name: _Optional[str] = ..., service_version: _Optional[str] = ..., worker_id: _Optional[str] = ..., components: _Optional[_Iterable[_Union[_common_pb2.Component, _Mapping]]] = ..., max_concurrency: _Optional[int] = ..., sdk_version: _Optional[str] = ...) -> None: ...

class RegisterAck(_message.Message):
    __slots__ = ("worker_id", "heartbeat_interval_ms", "heartbeat_timeout_ms", "max_result_bytes")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    heartbeat_interval_ms: int
    heartbeat_timeout_ms: int
    max_result_bytes: int
    def __init__(self, worker_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., heartbeat_timeout_ms: _Optional[int] = ..., max_result_bytes: _Optional[int] = ...) -> None: ...

class InvokeBatch(_message.Message):
    __slots__ = ("invocations",)
    INVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    invocations: _containers.RepeatedCompositeFieldContainer[Invoke]
    def __init__(self, invocations: _Optional[_Iterable[_Union[Invoke, _Mapping]]] = ...) -> None: ...

class Invoke(_message.Message):
    __slots__ = ("invocation_id", "component", "input", "metadata", "attempt", "deadline_unix_ms", "journal")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    component: str
    input: bytes
    metadata: _containers.ScalarMap[str, str]
    attempt: int
    deadline_unix_ms: int
    journal: bytes
    def __init__(self, invocation_id: _Optional[str] = ..., component: _Optional[str] = ..., input: _Optional[bytes] = ..., metadata: _Optional[_Mapping[str, str]] = ..., attempt: _Optional[int] = ..., deadline_unix_ms: _Optional[int] = ..., journal: _Optional[bytes] = ...) -> None: ...

class ResultBatch(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Result]
    def __init__(self, results: _Optional[_Iterable[_Union[Result, _Mapping]]] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("invocation_id", "attempt", "output", "error", "duration_us")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    attempt: int
    output: bytes
    error: _common_pb2.Error
    duration_us: int
    def __init__(self, invocation_id: _Optional[str] = ..., attempt: _Optional[int] = ..., output: _Optional[bytes] = ..., error: _Optional[_Union[_common_pb2.Error, _Mapping]] = ..., duration_us: _Optional[int] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("invocation_id", "reason")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    reason: str
    def __init__(self, invocation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("in_flight",)
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    in_flight: int
    def __init__(self, in_flight: _Optional[int] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("unix_ms",)
    UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    unix_ms: int
    def __init__(self, unix_ms: _Optional[int] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ("reason", "timeout_ms")
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    timeout_ms: int
    def __init__(self, reason: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class Unregister(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...
