"""Helpers shared by the coordinator's gRPC services: metadata lookup, authorization, aborts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from agnt5._wire.status import error_trailer, status_of
from agnt5.coordinator.auth import Grant
from agnt5.errors import AgntError

__all__ = ["header", "serve_call"]

T = TypeVar("T")


def header(context: grpc.aio.ServicerContext, name: str) -> str | None:
    """The value of request metadata ``name`` (first occurrence), if sent."""
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return None


async def serve_call(
    context: grpc.aio.ServicerContext,
    authorize: Callable[[str | None], Grant],
    work: Callable[[Grant], Awaitable[T]],
    refused: Callable[[AgntError], None],
) -> T:
    """Run ``work`` with what ``authorize`` grants the call's ``authorization`` header; an
    `AgntError` is told to ``refused`` and ends the call with its status and trailer."""
    try:
        return await work(authorize(header(context, "authorization")))
    except AgntError as error:
        refused(error)
        await context.abort(status_of(error), error.message, error_trailer(error))
        raise  # unreachable: abort raises
