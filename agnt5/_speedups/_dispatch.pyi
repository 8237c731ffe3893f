"""The hot-path API, identical in `_dispatch` (compiled) and `_dispatch_py` (pure Python)."""

from collections.abc import Callable, Mapping
from typing import Any

from agnt5._speedups._plan import Signature

__all__ = ["Handler", "decode_json", "dispatch", "encode_json", "lookup"]

class Handler:
    """A registered callable with its binding plan compiled for the hot path."""

    @property
    def name(self) -> str: ...
    @property
    def fn(self) -> Callable[..., Any]: ...
    @property
    def takes_ctx(self) -> bool: ...
    @property
    def is_async(self) -> bool: ...
    def __init__(self, name: str, fn: Callable[..., Any], signature: Signature) -> None: ...
    def bind(self, payload: bytes) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        """Decode and bind input: positional args and keyword args (`None` when there are none)."""
    def bind_value(self, value: Any) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        """Bind an already decoded JSON value by the binding rules."""
    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None, ctx: Any = None) -> Any:
        """Call the handler with bound arguments (and `ctx` first when it takes one)."""
    def encode(self, result: Any) -> bytes:
        """Encode the handler's result, or raise `OutputNotSerializableError`."""
    def fail(self, exc: BaseException) -> Exception:
        """The agnt5 error for an exception the handler raised."""
    def invoke(self, payload: bytes, ctx: Any = None) -> bytes:
        """Decode, bind, call (synchronous handlers only; async ones raise `TypeError`) and encode."""

def decode_json(payload: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON input; empty input is `None`; bad input is an `InvalidArgumentError`."""

def encode_json(value: Any) -> bytes:
    """Encode a result; dict keys that are not strings are stringified. Raises `TypeError`."""

def lookup(registry: Mapping[str, Handler], name: str) -> Handler:
    """The handler registered as `name`, or a `NotFoundError`."""

def dispatch(
    registry: Mapping[str, Handler],
    name: str,
    payload: bytes,
    make_context: Callable[[Handler], Any] | None = None,
) -> bytes:
    """Run a synchronous handler end to end: look up, decode, bind, call, encode."""
