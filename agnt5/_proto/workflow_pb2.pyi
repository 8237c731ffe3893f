from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_UNSPECIFIED: _ClassVar[EntryKind]
    ENTRY_KIND_STEP: _ClassVar[EntryKind]
    ENTRY_KIND_TASK: _ClassVar[EntryKind]
    ENTRY_KIND_SLEEP: _ClassVar[EntryKind]
    ENTRY_KIND_SIGNAL: _ClassVar[EntryKind]
    ENTRY_KIND_NOW: _ClassVar[EntryKind]
    ENTRY_KIND_RANDOM: _ClassVar[EntryKind]
    ENTRY_KIND_UUID: _ClassVar[EntryKind]

class EntryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_STATE_UNSPECIFIED: _ClassVar[EntryState]
    ENTRY_STATE_PENDING: _ClassVar[EntryState]
    ENTRY_STATE_COMPLETED: _ClassVar[EntryState]
    ENTRY_STATE_FAILED: _ClassVar[EntryState]
ENTRY_KIND_UNSPECIFIED: EntryKind
ENTRY_KIND_STEP: EntryKind
ENTRY_KIND_TASK: EntryKind
ENTRY_KIND_SLEEP: EntryKind
ENTRY_KIND_SIGNAL: EntryKind
ENTRY_KIND_NOW: EntryKind
ENTRY_KIND_RANDOM: EntryKind
ENTRY_KIND_UUID: EntryKind
ENTRY_STATE_UNSPECIFIED: EntryState
ENTRY_STATE_PENDING: EntryState
ENTRY_STATE_COMPLETED: EntryState
ENTRY_STATE_FAILED: EntryState

class JournalEntry(_message.Message):
    __slots__ = ("seq", "kind", "name", "state", "output", "error", "attempt", "started_unix_ms", "finished_unix_ms", "duration_us", "child_id", "fire_unix_ms", "timeout_unix_ms")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    CHILD_ID_FIELD_NUMBER: _ClassVar[int]
    FIRE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: EntryKind
    name: str
    state: EntryState
    output: bytes
    error: _common_pb2.Error
    attempt: int
    started_unix_ms: int
    finished_unix_ms: int
    duration_us: int
    child_id: str
    fire_unix_ms: int
    timeout_unix_ms: int
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[_Union[EntryKind, str]] = ..., name: _Optional[str] = ..., state: _Optional[_Union[EntryState, str]] = ..., output: _Optional[bytes] = ..., error: _Optional[_Union[_common_pb2.Error, _Mapping]] = ..., attempt: _Optional[int] = ..., started_unix_ms: _Optional[int] = ..., finished_unix_ms: _Optional[int] = ..., duration_us: _Optional[int] = ..., child_id: _Optional[str] = ..., fire_unix_ms: _Optional[int] = ..., timeout_unix_ms: _Optional[int] = ...) -> None: ...

class Journal(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[JournalEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[JournalEntry, _Mapping]]] = ...) -> None: ...

class WorkflowCommands(_message.Message):
    __slots__ = ("commands",)
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedCompositeFieldContainer[WorkflowCommand]
    def __init__(self, commands: _Optional[_Iterable[_Union[WorkflowCommand, _Mapping]]] = ...) -> None: ...

class WorkflowCommand(_message.Message):
    __slots__ = ("invocation_id", "attempt", "seq", "kind", "name", "step", "task", "sleep", "signal", "suspend")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    SLEEP_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    attempt: int
    seq: int
    kind: EntryKind
    name: str
    step: StepOutcome
    task: TaskStart
    sleep: SleepStart
    signal: SignalWait
    suspend: Suspend
    def __init__(self, invocation_id: _Optional[str] = ..., attempt: _Optional[int] = ..., seq: _Optional[int] = ..., kind: _Optional[_Union[EntryKind, str]] = ..., name: _Optional[str] = ..., step: _Optional[_Union[StepOutcome, _Mapping]] = ..., task: _Optional[_Union[TaskStart, _Mapping]] = ..., sleep: _Optional[_Union[SleepStart, _Mapping]] = ..., signal: _Optional[_Union[SignalWait, _Mapping]] = ..., suspend: _Optional[_Union[Suspend, _Mapping]] = ...) -> None: ...

class StepOutcome(_message.Message):
    __slots__ = ("output", "error", "duration_us", "step_attempt")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    STEP_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    output: bytes
    error: _common_pb2.Error
    duration_us: int
    step_attempt: int
    def __init__(self, output: _Optional[bytes] = ..., error: _Optional[_Union[_common_pb2.Error, _Mapping]] = ..., duration_us: _Optional[int] = ..., step_attempt: _Optional[int] = ...) -> None: ...

class TaskStart(_message.Message):
    __slots__ = ("service", "function", "input")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    service: str
    function: str
    input: bytes
    def __init__(self, service: _Optional[str] = ..., function: _Optional[str] = ..., input: _Optional[bytes] = ...) -> None: ...

class SleepStart(_message.Message):
    __slots__ = ("delay_ms",)
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    delay_ms: int
    def __init__(self, delay_ms: _Optional[int] = ...) -> None: ...

class SignalWait(_message.Message):
    __slots__ = ("timeout_ms", "has_timeout")
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    HAS_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    timeout_ms: int
    has_timeout: bool
    def __init__(self, timeout_ms: _Optional[int] = ..., has_timeout: _Optional[bool] = ...) -> None: ...

class Suspend(_message.Message):
    __slots__ = ("waiting",)
    WAITING_FIELD_NUMBER: _ClassVar[int]
    waiting: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, waiting: _Optional[_Iterable[int]] = ...) -> None: ...

class WorkflowEvents(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[WorkflowEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[WorkflowEvent, _Mapping]]] = ...) -> None: ...

class WorkflowEvent(_message.Message):
    __slots__ = ("invocation_id", "entry")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    entry: JournalEntry
    def __init__(self, invocation_id: _Optional[str] = ..., entry: _Optional[_Union[JournalEntry, _Mapping]] = ...) -> None: ...
