"""Settings and defaults: every default agnt5 has, and the ``AGNT5_*`` variables that override them.

A worker setting resolves as constructor argument > ``AGNT5_*`` environment variable > default
(`WorkerConfig.resolve`); the command line reads the same variables through `setting`. The
module uses the standard library only (the build script reads `TRUTHY` from it).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "COORDINATOR_PORT",
    "DATA_DIR",
    "DEFAULT_ENDPOINT",
    "GATEWAY_PORT",
    "GATEWAY_WAIT",
    "HEARTBEAT_INTERVAL",
    "HEALTH_HOST",
    "HEALTH_PORT",
    "HEARTBEAT_TIMEOUT",
    "LEASE",
    "LOCALHOST",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MAX_BODY_BYTES",
    "MAX_ENDPOINTS",
    "MAX_OUTPUT_BYTES",
    "MAX_QUEUE",
    "MAX_QUEUED_BYTES",
    "RESULT_CACHE_BYTES",
    "RETENTION",
    "TRUTHY",
    "ConfigError",
    "Endpoint",
    "WorkerConfig",
    "env_flag",
    "env_text",
    "log_level",
    "parse_endpoint",
    "parse_endpoints",
    "parse_host",
    "setting",
]

TRUTHY = frozenset({"1", "true", "yes", "on"})
"""Values of a boolean environment variable that mean true (any case, surrounding space ignored)."""
_FALSY = frozenset({"0", "false", "no", "off", ""})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}  # as `logging` reads them
LOG_FORMATS = ("text", "json")
LOCALHOST = "127.0.0.1"
"""Where servers listen unless told otherwise: the coordinator, the ASGI worker's `run`."""
COORDINATOR_PORT = 9091
"""The coordinator's gRPC port, and the port of an endpoint that names none."""
GATEWAY_PORT = 8080
"""The coordinator's HTTP gateway port."""
DEFAULT_ENDPOINT = f"http://localhost:{COORDINATOR_PORT}"
MAX_BODY_BYTES = 10 * 1024 * 1024
"""The largest input accepted: an ASGI request body, or an invocation's input at the coordinator."""
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
"""The largest result a worker may return to the coordinator."""
MAX_QUEUE = 10_000
"""Invocations that may wait at the coordinator for a worker."""
MAX_QUEUED_BYTES = 256 * 1024 * 1024
"""Bytes of input that may wait at the coordinator for workers."""
RESULT_CACHE_BYTES = 256 * 1024 * 1024
"""Bytes of finished invocations the coordinator keeps in memory (older ones: the journal)."""
HEARTBEAT_INTERVAL = 5.0
"""Seconds between a worker's heartbeats (the coordinator may ask for them more often)."""
HEARTBEAT_TIMEOUT = 15.0
"""Seconds of silence after which the coordinator drops a worker and re-delivers its work."""
GATEWAY_WAIT = 60.0
"""Seconds the HTTP gateway's invoke waits for an outcome before answering 202."""
RETENTION = 24 * 3600.0
"""Seconds a finished invocation stays readable by id and idempotency key in the journal."""
HEALTH_HOST = "0.0.0.0"
"""Where a standalone worker's health server listens: every IPv4 interface, so a container's
probes reach it (Docker's ``HEALTHCHECK`` on localhost, a Kubernetes kubelet on the pod's
address)."""
HEALTH_PORT = 8000
"""The standalone worker's health port (``/health``, ``/ready``, ``/metrics``); 0 turns it off."""
DATA_DIR = "./.agnt5"
"""Where ``agnt5 coordinator`` journals invocations."""
LEASE = 10.0
"""Seconds a coordinator's claim on its work outlives its last renewal (``--database``)."""


class ConfigError(ValueError):
    """A setting's value is malformed; the message names the argument or variable."""


def env_text(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of the environment variable ``name``, stripped ("" when unset)."""
    return (os.environ if environ is None else environ).get(name, "").strip()


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment variable ``name`` is set to one of the `TRUTHY` values."""
    value = (os.environ if environ is None else environ).get(name, "")
    return value.strip().lower() in TRUTHY


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A coordinator address: the gRPC target (``host:port``) and whether it uses TLS."""

    target: str
    secure: bool

    @property
    def url(self) -> str:
        """The endpoint written as a URL (``http://host:port`` or ``https://host:port``)."""
        return f"{'https' if self.secure else 'http'}://{self.target}"


def parse_endpoint(url: str) -> Endpoint:
    """``http://host:port`` (plain), ``https://host:port`` (TLS) or a bare ``host:port``."""
    text = url.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme not in ("http", "https", "grpc", "grpcs") or not parts.hostname:
        raise ValueError(f"expected http(s)://host:port, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a coordinator endpoint has no path or query, got {url!r}")
    secure = parts.scheme in ("https", "grpcs")
    try:
        port = parts.port or (443 if secure else COORDINATOR_PORT)
    except ValueError:
        raise ValueError(f"invalid port in {url!r}") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Endpoint(f"{host}:{port}", secure)


MAX_ENDPOINTS = 64
"""Most coordinator endpoints one list may name."""


def parse_endpoints(urls: str | Sequence[str]) -> list[Endpoint]:
    """Coordinator endpoints: a list, or one string of them separated by commas
    (``http://a:9091,http://b:9091``); each as `parse_endpoint`, at least one."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    if not items or not all(isinstance(item, str) and item.strip() for item in items):
        raise ValueError(f"expected one or more endpoints separated by commas, got {urls!r}")
    if len(items) > MAX_ENDPOINTS:
        raise ValueError(f"at most {MAX_ENDPOINTS} coordinator endpoints, got {len(items)}")
    return [parse_endpoint(item) for item in items]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value.strip()


def _name(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def api_key(value: Any) -> str:
    """An API key as sent in the ``authorization`` header: visible ASCII, no spaces (a newline
    in it would make every call fail as invalid metadata, retried forever)."""
    text = _name(value)
    if not all("!" <= char <= "~" for char in text):
        raise ValueError("must be visible ASCII characters without spaces or line breaks")
    return text


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def log_level(value: Any) -> str:
    """A level name of `LOG_LEVELS`, any case; ``WARN`` and ``FATAL`` as `logging` reads them."""
    text = _text(value).upper()
    text = _LEVEL_ALIASES.get(text, text)
    if text not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return text


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in TRUTHY:
        return True
    if text in _FALSY:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _integer(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            number = int(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(f"expected an integer, got {value!r}") from None
        if isinstance(value, float) and value != number:
            raise ValueError(f"expected an integer, got {value!r}")
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"expected an integer {bound}, got {value!r}")
        return number

    return parse


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number of seconds, got {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"expected a finite number of seconds >= 0, got {value!r}")
    return number


_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def parse_host(value: Any) -> str:
    """An IP address or a host name to bind; `ValueError` otherwise."""
    text = _text(value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME.fullmatch(text):
            raise ValueError(f"expected an IP address or a host name, got {value!r}") from None
    return text


def _endpoint(value: Any) -> str:
    text = _text(value)
    parse_endpoints(text)
    return text


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None or value == "" else parse(value)


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclasses.dataclass(frozen=True)
class _Setting:
    parse: Callable[[Any], Any]
    default: Any = None
    default_factory: Callable[[], Any] | None = None

    def env_name(self, field: str) -> str:
        return f"AGNT5_{field.upper()}"


_SETTINGS: dict[str, _Setting] = {
    "service_name": _Setting(_name),
    "service_version": _Setting(_name, "1.0.0"),
    "coordinator_endpoint": _Setting(_endpoint, DEFAULT_ENDPOINT),
    "runtime": _Setting(_choice("standalone", "asgi"), "standalone"),
    "log_level": _Setting(log_level, "INFO"),
    "log_format": _Setting(_choice(*LOG_FORMATS), "text"),
    "disable_telemetry": _Setting(_flag, False),
    "api_key": _Setting(_optional(api_key)),
    "max_concurrency": _Setting(_integer(1), 100),
    "thread_pool_size": _Setting(_optional(_integer(1))),
    "drain_timeout": _Setting(_seconds, 30.0),
    "heartbeat_interval": _Setting(_seconds, HEARTBEAT_INTERVAL),
    "worker_id": _Setting(_name, default_factory=_default_worker_id),
    "health_host": _Setting(parse_host, HEALTH_HOST),
    "health_port": _Setting(_integer(0, 65535), HEALTH_PORT),
    "max_body_size": _Setting(_integer(1), MAX_BODY_BYTES),
    "http_host": _Setting(_name, LOCALHOST),
    "http_port": _Setting(_integer(0, 65535), 8000),
    "docs": _Setting(_flag, True),
    "workflow_suspend_after": _Setting(_seconds, 1.0),
}


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    """A worker's resolved settings. Build it with `WorkerConfig.resolve`."""

    service_name: str
    service_version: str
    coordinator_endpoint: str
    runtime: str
    log_level: str
    log_format: str
    disable_telemetry: bool
    api_key: str | None
    max_concurrency: int
    thread_pool_size: int | None
    drain_timeout: float
    heartbeat_interval: float
    worker_id: str
    health_host: str
    health_port: int
    max_body_size: int
    http_host: str
    http_port: int
    docs: bool
    """Whether the ASGI app serves ``/openapi.json`` and ``/docs`` (``AGNT5_DOCS``)."""
    workflow_suspend_after: float

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **given: Any) -> WorkerConfig:
        """Resolve every setting; a bad value is a `ValueError` naming its argument or variable."""
        environ = os.environ if environ is None else environ
        unknown = set(given) - set(_SETTINGS)
        if unknown:
            raise TypeError(f"unknown Worker option(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for field, spec in _SETTINGS.items():
            values[field] = _resolve_one(field, spec, given.get(field), environ)
        if values["service_name"] is None:
            raise ConfigError(
                "a service name is required: pass Worker(service_name=...) "
                "or set AGNT5_SERVICE_NAME"
            )
        return cls(**values)

    @property
    def endpoint(self) -> Endpoint:
        """The first coordinator endpoint, parsed."""
        return self.endpoints[0]

    @property
    def endpoints(self) -> list[Endpoint]:
        """Every coordinator endpoint (``coordinator_endpoint`` may list several), parsed."""
        return parse_endpoints(self.coordinator_endpoint)

    @property
    def serves_metrics(self) -> bool:
        """Whether this worker serves ``/metrics``: a standalone worker with a health port."""
        return self.runtime == "standalone" and self.health_port != 0

    @property
    def pool_size(self) -> int:
        """Threads for synchronous handlers: ``thread_pool_size``, else up to 32."""
        return self.thread_pool_size or min(32, self.max_concurrency)


def setting(field: str, environ: Mapping[str, str] | None = None) -> Any:
    """One worker setting from its ``AGNT5_*`` variable, else its default; parsed as `resolve` does."""
    return _resolve_one(field, _SETTINGS[field], None, os.environ if environ is None else environ)


def _resolve_one(field: str, spec: _Setting, given: Any, environ: Mapping[str, str]) -> Any:
    if given is not None:
        source, raw = field, given
    elif environ.get(spec.env_name(field), "").strip():
        source, raw = spec.env_name(field), environ[spec.env_name(field)]
    elif spec.default_factory is not None:
        return spec.default_factory()
    else:
        return spec.default
    try:
        return spec.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"invalid {source}: {exc}") from None
