"""The process-wide registry of components: every `@function` and `@workflow`, by name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from agnt5.errors import NotFoundError

if TYPE_CHECKING:
    from agnt5.decorators import Component

__all__ = ["REGISTRY", "Registry"]


class Registry(Mapping[str, "Component"]):
    """A read-only mapping of name -> `Component`, with `add` and the one `lookup`."""

    __slots__ = ("_components", "get")

    def __init__(self) -> None:
        self._components: dict[str, Component] = {}
        self.get = self._components.get  # type: ignore[method-assign] # the dict's own: fast

    def __getitem__(self, name: str) -> Component:
        return self._components[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._components)

    def __len__(self) -> int:
        return len(self._components)

    def lookup(self, name: str) -> Component:
        """The component registered as ``name``, or `NotFoundError` ("Function 'x' not found")."""
        component = self._components.get(name) if type(name) is str else None
        if component is None:
            raise NotFoundError(f"Function {name!r} not found")
        return component

    def add(self, component: Component) -> None:
        """Register ``component`` under its name (replacing what was there: `function` checks)."""
        self._components[component.name] = component


REGISTRY = Registry()
"""Every component registered in this process; what workers serve and `agnt5.testing` runs."""
