from . import common_pb2 as _common_pb2
from . import workflow_pb2 as _workflow_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InvocationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOCATION_STATE_UNSPECIFIED: _ClassVar[InvocationState]
    INVOCATION_STATE_PENDING: _ClassVar[InvocationState]
    INVOCATION_STATE_RUNNING: _ClassVar[InvocationState]
    INVOCATION_STATE_SUCCEEDED: _ClassVar[InvocationState]
    INVOCATION_STATE_FAILED: _ClassVar[InvocationState]
    INVOCATION_STATE_SUSPENDED: _ClassVar[InvocationState]
INVOCATION_STATE_UNSPECIFIED: InvocationState
INVOCATION_STATE_PENDING: InvocationState
INVOCATION_STATE_RUNNING: InvocationState
INVOCATION_STATE_SUCCEEDED: InvocationState
INVOCATION_STATE_FAILED: InvocationState
INVOCATION_STATE_SUSPENDED: InvocationState

class InvokeRequest(_message.Message):
    __slots__ = ("service", "function", "input", "idempotency_key", "timeout_ms", "wait_ms", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    service: str
    function: str
    input: bytes
    idempotency_key: str
    timeout_ms: int
    wait_ms: int
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, service: _Optional[str] = ..., function: _Optional[str] = ..., input: _Optional[bytes] = ..., idempotency_key: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., wait_ms: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("invocation_id", "deduplicated")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    deduplicated: bool
    def __init__(self, invocation_id: _Optional[str] = ..., deduplicated: _Optional[bool] = ...) -> None: ...

class GetResultRequest(_message.Message):
    __slots__ = ("invocation_id", "wait_ms", "include_steps")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_STEPS_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    wait_ms: int
    include_steps: bool
    def __init__(self, invocation_id: _Optional[str] = ..., wait_ms: _Optional[int] = ..., include_steps: _Optional[bool] = ...) -> None: ...

class InvocationResult(_message.Message):
    __slots__ = ("invocation_id", "state", "output", "error", "attempt", "duration_us", "service", "function", "steps")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    state: InvocationState
    output: bytes
    error: _common_pb2.Error
    attempt: int
    duration_us: int
    service: str
    function: str
    steps: _containers.RepeatedCompositeFieldContainer[_workflow_pb2.JournalEntry]
    def __init__(self, invocation_id: _Optional[str] = ..., state: _Optional[_Union[InvocationState, str]] = ..., output: _Optional[bytes] = ..., error: _Optional[_Union[_common_pb2.Error, _Mapping]] = ..., attempt: _Optional[int] = ..., duration_us: _Optional[int] = ..., service: _Optional[str] = ..., function: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[_workflow_pb2.JournalEntry, _Mapping]]] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[ServiceInfo]
    def __init__(self, services: _Optional[_Iterable[_Union[ServiceInfo, _Mapping]]] = ...) -> None: ...

class ServiceInfo(_message.Message):
    __slots__ = ("name", "version", "components", "workers", "queued")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    components: _containers.RepeatedCompositeFieldContainer[_common_pb2.Component]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    queued: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., components: _Optional[_Iterable[_Union[_common_pb2.Component, _Mapping]]] = ..., workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ..., queued: _Optional[int] = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("worker_id", "version", "max_concurrency", "in_flight", "draining", "last_seen_ms_ago")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_MS_AGO_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    version: str
    max_concurrency: int
    in_flight: int
    draining: bool
    last_seen_ms_ago: int
    def __init__(self, worker_id: _Optional[str] = ..., version: _Optional[str] = ..., max_concurrency: _Optional[int] = ..., in_flight: _Optional[int] = ..., draining: _Optional[bool] = ..., last_seen_ms_ago: _Optional[int] = ...) -> None: ...

class InvokeStreamRequest(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[StreamCall]
    def __init__(self, calls: _Optional[_Iterable[_Union[StreamCall, _Mapping]]] = ...) -> None: ...

class StreamCall(_message.Message):
    __slots__ = ("ref", "service", "function", "input", "idempotency_key", "timeout_ms", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REF_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ref: int
    service: str
    function: str
    input: bytes
    idempotency_key: str
    timeout_ms: int
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, ref: _Optional[int] = ..., service: _Optional[str] = ..., function: _Optional[str] = ..., input: _Optional[bytes] = ..., idempotency_key: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class InvokeStreamResponse(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[StreamOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[StreamOutcome, _Mapping]]] = ...) -> None: ...

class StreamOutcome(_message.Message):
    __slots__ = ("ref", "invocation_id", "output", "error")
    REF_FIELD_NUMBER: _ClassVar[int]
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ref: int
    invocation_id: str
    output: bytes
    error: _common_pb2.Error
    def __init__(self, ref: _Optional[int] = ..., invocation_id: _Optional[str] = ..., output: _Optional[bytes] = ..., error: _Optional[_Union[_common_pb2.Error, _Mapping]] = ...) -> None: ...

class ListInvocationsRequest(_message.Message):
    __slots__ = ("service", "function", "states", "created_after_unix_ms", "created_before_unix_ms", "limit", "cursor")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    service: str
    function: str
    states: _containers.RepeatedScalarFieldContainer[InvocationState]
    created_after_unix_ms: int
    created_before_unix_ms: int
    limit: int
    cursor: str
    def __init__(self, service: _Optional[str] = ..., function: _Optional[str] = ..., states: _Optional[_Iterable[_Union[InvocationState, str]]] = ..., created_after_unix_ms: _Optional[int] = ..., created_before_unix_ms: _Optional[int] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListInvocationsResponse(_message.Message):
    __slots__ = ("invocations", "next_cursor")
    INVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    invocations: _containers.RepeatedCompositeFieldContainer[InvocationSummary]
    next_cursor: str
    def __init__(self, invocations: _Optional[_Iterable[_Union[InvocationSummary, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class InvocationSummary(_message.Message):
    __slots__ = ("invocation_id", "service", "function", "state", "attempt", "created_unix_ms", "updated_unix_ms", "duration_us", "error_code")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    service: str
    function: str
    state: InvocationState
    attempt: int
    created_unix_ms: int
    updated_unix_ms: int
    duration_us: int
    error_code: str
    def __init__(self, invocation_id: _Optional[str] = ..., service: _Optional[str] = ..., function: _Optional[str] = ..., state: _Optional[_Union[InvocationState, str]] = ..., attempt: _Optional[int] = ..., created_unix_ms: _Optional[int] = ..., updated_unix_ms: _Optional[int] = ..., duration_us: _Optional[int] = ..., error_code: _Optional[str] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("invocation_id", "reason")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    reason: str
    def __init__(self, invocation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SignalRequest(_message.Message):
    __slots__ = ("invocation_id", "name", "payload")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    name: str
    payload: bytes
    def __init__(self, invocation_id: _Optional[str] = ..., name: _Optional[str] = ..., payload: _Optional[bytes] = ...) -> None: ...

class SignalResponse(_message.Message):
    __slots__ = ("delivered",)
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    delivered: bool
    def __init__(self, delivered: _Optional[bool] = ...) -> None: ...
