"""The dev coordinator: routes invocations from clients to workers (state kept in memory)."""

from __future__ import annotations

from agnt5.coordinator.server import DEFAULT_MAX_INPUT_BYTES, Coordinator
from agnt5.coordinator.store import MemoryStore, StateStore

__all__ = ["DEFAULT_MAX_INPUT_BYTES", "Coordinator", "MemoryStore", "StateStore"]
