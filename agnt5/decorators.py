"""`@function` and `@workflow`: register handlers, with their metadata, in the process-wide registry."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from agnt5 import _speedups
from agnt5._registry import REGISTRY
from agnt5._speedups._plan import Signature, read_signature
from agnt5.errors import NotFoundError
from agnt5.schema import input_schema, output_schema

if TYPE_CHECKING:
    from agnt5._speedups import HandlerAPI

__all__ = [
    "Backoff",
    "Component",
    "FunctionConfig",
    "function",
    "get_function_metadata",
    "get_registered_functions",
    "get_registered_workflows",
    "workflow",
]

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["function", "workflow"]

DEFAULT_RETRIES = 3


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Exponential backoff between attempts: ``initial`` seconds, times ``multiplier``, up to ``maximum``."""

    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 60.0

    def __post_init__(self) -> None:
        if not _positive(self.initial):
            raise ValueError(
                f"backoff initial must be a positive number of seconds, got {self.initial!r}"
            )
        if not _number(self.multiplier) or self.multiplier < 1:
            raise ValueError(f"backoff multiplier must be a number >= 1, got {self.multiplier!r}")
        if not _number(self.maximum) or self.maximum < self.initial:
            raise ValueError(f"backoff maximum must be a number >= initial, got {self.maximum!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        return min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))


@dataclasses.dataclass(frozen=True)
class FunctionConfig:
    """Execution settings of one handler.

    ``timeout`` is in seconds (``None``: none); ``retries`` is how many more attempts a retryable
    failure (worker loss, drain, timeout, an error raised as retryable) gets; ``inline`` runs a
    cheap synchronous handler on the event loop instead of the worker's thread pool.
    """

    timeout: float | None = None
    retries: int = DEFAULT_RETRIES
    backoff: Backoff = dataclasses.field(default_factory=Backoff)
    inline: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, eq=False)
class Component:
    """A registered function or workflow: the user's callable, its hot-path handler and metadata."""

    name: str
    kind: Kind
    fn: Callable[..., Any]
    description: str
    config: FunctionConfig
    signature: Signature
    handler: HandlerAPI

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        return input_schema(self.signature)

    @cached_property
    def output_schema(self) -> dict[str, Any]:
        return output_schema(self.signature)

    def metadata(self) -> dict[str, Any]:
        """Name, kind, description, parameters, JSON Schemas, async-ness and config."""
        schema_properties = self.input_schema.get("properties", {})
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "parameters": [
                {
                    "name": param.name,
                    "required": param.required,
                    "keyword_only": param.keyword_only,
                    "schema": schema_properties.get(param.name, {}),
                }
                for param in self.signature.params
            ],
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "is_async": self.signature.is_async,
            "takes_context": self.signature.takes_ctx,
            "config": self.config.to_dict(),
        }


@overload
def function(fn: F, /) -> F: ...
@overload
def function(
    name: str,
    /,
    *,
    description: str | None = ...,
    timeout: float | None = ...,
    retries: int = ...,
    backoff: float | Backoff | None = ...,
    inline: bool = ...,
) -> Callable[[F], F]: ...
@overload
def function(
    *,
    name: str | None = ...,
    description: str | None = ...,
    timeout: float | None = ...,
    retries: int = ...,
    backoff: float | Backoff | None = ...,
    inline: bool = ...,
) -> Callable[[F], F]: ...
def function(fn: Callable[..., Any] | str | None = None, /, **options: Any) -> Any:
    """Register a handler: ``@function``, ``@function()``, ``@function("name")`` or
    ``@function(name=..., timeout=...)``.

    The decorated callable is returned unchanged, so it stays directly callable.
    """
    return _decorate("function", fn, options)


@overload
def workflow(fn: F, /) -> F: ...
@overload
def workflow(
    name: str,
    /,
    *,
    description: str | None = ...,
    timeout: float | None = ...,
    retries: int = ...,
    backoff: float | Backoff | None = ...,
    inline: bool = ...,
) -> Callable[[F], F]: ...
@overload
def workflow(
    *,
    name: str | None = ...,
    description: str | None = ...,
    timeout: float | None = ...,
    retries: int = ...,
    backoff: float | Backoff | None = ...,
    inline: bool = ...,
) -> Callable[[F], F]: ...
def workflow(fn: Callable[..., Any] | str | None = None, /, **options: Any) -> Any:
    """Register a workflow, with the same forms and options as `function`."""
    return _decorate("workflow", fn, options)


def get_registered_functions() -> dict[str, Callable[..., Any]]:
    """Registered functions by name (a copy: changing it changes nothing)."""
    return {name: c.fn for name, c in REGISTRY.items() if c.kind == "function"}


def get_registered_workflows() -> dict[str, Callable[..., Any]]:
    """Registered workflows by name (a copy)."""
    return {name: c.fn for name, c in REGISTRY.items() if c.kind == "workflow"}


def get_function_metadata(name: str) -> dict[str, Any]:
    """Metadata of a registered function or workflow; `NotFoundError` when there is none."""
    return REGISTRY.lookup(name).metadata()


def component_of(fn_or_name: Callable[..., Any] | str) -> Component:
    """The component for a registered callable or a registered name."""
    if isinstance(fn_or_name, str):
        return REGISTRY.lookup(fn_or_name)
    component = getattr(fn_or_name, "__agnt5_component__", None)
    if component is None:
        raise NotFoundError(f"{fn_or_name!r} is not registered with @function or @workflow")
    return component


_OPTIONS = frozenset({"name", "description", "timeout", "retries", "backoff", "inline"})


def _decorate(kind: Kind, fn: Callable[..., Any] | str | None, options: dict[str, Any]) -> Any:
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"@{kind}() got unknown option(s): {', '.join(sorted(unknown))}")
    if isinstance(fn, str):  # @workflow("name")
        if "name" in options:
            raise TypeError(f"@{kind}() got the name twice: {fn!r} and name={options['name']!r}")
        options = {**options, "name": fn}
        fn = None
    if fn is not None:
        return _register(kind, fn, **options)
    return lambda target: _register(kind, target, **options)


def _register(
    kind: Kind,
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff: float | Backoff | None = None,
    inline: bool = False,
) -> Any:
    if not callable(fn):
        raise TypeError(f"@{kind} needs a callable, got {fn!r}")
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise TypeError(f"@{kind} cannot serve generator {_qualified(fn)}: return a value instead")
    name = name if name is not None else getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"@{kind} needs a non-empty string name, got {name!r}")
    config = FunctionConfig(
        timeout=_timeout(timeout),
        retries=_retries(retries),
        backoff=_backoff(backoff),
        inline=bool(inline),
    )
    existing = REGISTRY.get(name)
    if existing is not None and _identity(existing.fn) != _identity(fn):
        raise ValueError(
            f"{kind} name {name!r} is already registered by {_qualified(existing.fn)}; "
            f"give {_qualified(fn)} another name with @{kind}(name=...)"
        )
    signature = read_signature(fn)
    component = Component(
        name=name,
        kind=kind,
        fn=fn,
        description=description if description is not None else (inspect.getdoc(fn) or ""),
        config=config,
        signature=signature,
        handler=_speedups.Handler(name, fn, signature),
    )
    REGISTRY.add(component)
    try:
        fn.__agnt5_component__ = component  # type: ignore[attr-defined]
        # A handler is not a test: pytest skips a `test_*` handler defined in a test module
        # (as in the docs' own example test) instead of calling it without its arguments.
        fn.__test__ = False  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # builtins and slotted callables cannot carry it
        pass
    return fn


def _identity(fn: Callable[..., Any]) -> tuple[Any, ...]:
    """Where a callable was defined: the same module imported twice gives the same identity."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return (id(fn),)
    return (os.path.realpath(code.co_filename), getattr(fn, "__qualname__", ""))


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value: Any) -> bool:
    return _number(value) and value > 0


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if not _positive(value):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {value!r}")
    return float(value)


def _retries(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"retries must be a non-negative integer, got {value!r}")
    return value


def _backoff(value: Any) -> Backoff:
    if value is None:
        return Backoff()
    if isinstance(value, Backoff):
        return value
    if not _positive(value):
        raise ValueError(
            f"backoff must be a positive number of seconds or a Backoff, got {value!r}"
        )
    return Backoff(initial=float(value), maximum=max(60.0, float(value)))
