"""Who may do what: worker keys register workers, client keys invoke; either may be limited to
some services. Shared by the gRPC services and the HTTP gateway.

A role with no key configured is open to anyone (the local default); once a role has keys,
every call in it must send ``authorization: Bearer <key>`` with one of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path

from agnt5.coordinator.checks import MAX_NAME_LENGTH
from agnt5.errors import UnauthenticatedError

__all__ = ["ANY_SERVICE", "Credentials", "Grant", "Key", "read_key_file"]

_MISSING = "missing or wrong API key: send the 'authorization: Bearer <key>' header"


@dataclasses.dataclass(frozen=True)
class Key:
    """A secret and what it may do: register workers and/or invoke as a client, for the
    listed ``services`` only (None: every service)."""

    secret: str
    worker: bool = False
    client: bool = False
    services: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.secret or self.secret != self.secret.strip():
            raise ValueError("a key is a non-empty secret with no surrounding whitespace")

    @classmethod
    def parse(cls, spec: str, *, worker: bool = False, client: bool = False) -> Key:
        """A key from ``SECRET`` or ``SECRET SERVICE [SERVICE ...]`` (the services it is
        limited to), the form of ``--worker-key``, ``--client-key`` and key file lines."""
        words = spec.split()
        if not words:
            raise ValueError("an empty key")
        secret, *services = words
        if any(len(service) > MAX_NAME_LENGTH for service in services):
            raise ValueError(f"a key's service name is over {MAX_NAME_LENGTH} characters")
        return cls(secret, worker, client, frozenset(services) if services else None)


def read_key_file(path: str | Path) -> list[str]:
    """The key specs in a file, one a line (blank lines and ``#`` comments skipped)."""
    lines = Path(path).read_text().splitlines()
    specs = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not specs:
        raise ValueError(f"no keys in {path}")
    return specs


@dataclasses.dataclass(frozen=True)
class Grant:
    """What an authenticated caller may reach: every service, or those listed."""

    services: frozenset[str] | None = None

    def allows(self, service: str) -> bool:
        return self.services is None or service in self.services

    def check(self, service: str, action: str) -> None:
        """Raise `UnauthenticatedError` unless the caller may ``action`` ``service``."""
        if not self.allows(service):
            raise UnauthenticatedError(f"this key may not {action} service {service!r}")

    def merged(self, other: Grant) -> Grant:
        if self.services is None or other.services is None:
            return ANY_SERVICE
        return Grant(self.services | other.services)


ANY_SERVICE = Grant()


class Credentials:
    """The keys of each role, looked up by digest (no secret is compared byte by byte)."""

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self._roles: dict[str, dict[bytes, Grant]] = {"worker": {}, "client": {}}
        for key in keys:
            grant = Grant(key.services)
            for role, granted in (("worker", key.worker), ("client", key.client)):
                if granted:
                    table = self._roles[role]
                    digest = _digest(key.secret)
                    table[digest] = table[digest].merged(grant) if digest in table else grant

    def open_roles(self) -> list[str]:
        """The roles anyone may take: no key is configured for them."""
        return [role for role, table in self._roles.items() if not table]

    def worker(self, authorization: str | None) -> Grant:
        """What a worker sending this ``authorization`` header may register for."""
        return self._grant("worker", "client", authorization)

    def client(self, authorization: str | None) -> Grant:
        """What a client sending this ``authorization`` header may invoke."""
        return self._grant("client", "worker", authorization)

    def _grant(self, role: str, other: str, authorization: str | None) -> Grant:
        table = self._roles[role]
        if not table:
            return ANY_SERVICE
        scheme, _, token = (authorization or "").partition(" ")
        digest = _digest(token.strip())
        grant = table.get(digest) if scheme.lower() == "bearer" else None
        if grant is not None:
            return grant
        if scheme.lower() == "bearer" and digest in self._roles[other]:
            raise UnauthenticatedError(f"this key is not a {role} key")
        raise UnauthenticatedError(_MISSING)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
