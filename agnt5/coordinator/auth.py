"""The API-key check shared by the gRPC services and the HTTP gateway."""

from __future__ import annotations

import hmac

from agnt5.errors import UnauthenticatedError

__all__ = ["check_authorization"]


def check_authorization(api_key: str | None, header: str | None) -> None:
    """Raise `UnauthenticatedError` unless ``header`` is ``Bearer <api_key>`` (if a key is set)."""
    if api_key is None:
        return
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), api_key.encode()
    ):
        raise UnauthenticatedError(
            "missing or wrong API key: send the 'authorization: Bearer <key>' header"
        )
