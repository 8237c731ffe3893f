"""agnt5: serve Python functions as durable, observable workers.

Heavy dependencies (grpc, starlette, opentelemetry) load only when a runtime or client needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agnt5.context import Context
from agnt5.decorators import (
    Backoff,
    function,
    get_function_metadata,
    get_registered_functions,
    get_registered_workflows,
    workflow,
)
from agnt5.errors import (
    AgntError,
    ErrorCode,
    FailedPreconditionError,
    FunctionFailedError,
    InvalidArgumentError,
    InvocationCancelledError,
    InvocationTimeoutError,
    NonDeterministicError,
    NotFoundError,
    OutputNotSerializableError,
    PayloadTooLargeError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from agnt5.worker import Worker
from agnt5.workflows import WorkflowContext

if TYPE_CHECKING:
    from agnt5.client import AsyncClient, Client

from agnt5._version import __version__

__all__ = [
    "AgntError",
    "AsyncClient",
    "Backoff",
    "Client",
    "Context",
    "ErrorCode",
    "FailedPreconditionError",
    "FunctionFailedError",
    "InvalidArgumentError",
    "InvocationCancelledError",
    "InvocationTimeoutError",
    "NonDeterministicError",
    "NotFoundError",
    "OutputNotSerializableError",
    "PayloadTooLargeError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "Worker",
    "WorkflowContext",
    "__version__",
    "function",
    "get_function_metadata",
    "get_registered_functions",
    "get_registered_workflows",
    "workflow",
]

_LAZY = {"Client": "agnt5.client", "AsyncClient": "agnt5.client"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agnt5' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
