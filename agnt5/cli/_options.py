"""The command line's options, their argparse types, and the errors commands end with."""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

from agnt5 import config

__all__ = [
    "CommandError",
    "Parser",
    "UsageError",
    "add_client_options",
    "add_coordinator_options",
    "add_journal_options",
    "add_key_options",
    "add_log_options",
    "add_worker_options",
    "count",
    "endpoint",
    "log_level",
    "positive",
    "seconds",
]


class UsageError(Exception):
    """A mistake in the command line or its environment: one line, exit status 2."""


class CommandError(Exception):
    """A command that cannot do what it was asked: one line, exit status 1."""


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake as one line naming it (a `UsageError`), not the usage text."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def count(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _integer(text, 0)


def positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    return _integer(text, 1)


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def lease(text: str) -> float:
    """An argparse type: a lease of 3 to 3,600 seconds."""
    value = seconds(text)
    if not 3 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be 3 to 3600 seconds, got {text!r}")
    return value


def log_level(text: str) -> str:
    """An argparse type: a level name (see `config.log_level`)."""
    try:
        return config.log_level(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def api_key(text: str) -> str:
    """An argparse type: a key as sent in the ``authorization`` header (`config.api_key`)."""
    try:
        return config.api_key(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def endpoint(text: str) -> str:
    """An argparse type: coordinator endpoints, ``http(s)://host:port``, several separated by
    commas (coordinators sharing one database)."""
    try:
        config.parse_endpoints(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        type=endpoint,
        default=config.setting("coordinator_endpoint"),
        help="coordinator gRPC endpoint, https:// for TLS; several separated by commas "
        "(default: $AGNT5_COORDINATOR_ENDPOINT or %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        type=api_key,
        default=config.setting("api_key"),
        help="API key (default: $AGNT5_API_KEY)",
    )


def add_coordinator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=config.LOCALHOST, help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=config.COORDINATOR_PORT,
        help="gRPC port, 0 for any (default: %(default)s)",
    )
    parser.add_argument(
        "--http-port",
        type=_port,
        default=config.GATEWAY_PORT,
        help="HTTP gateway port, 0 for any (default: %(default)s)",
    )
    parser.add_argument("--no-http", action="store_true", help="run without the HTTP gateway")
    parser.add_argument(
        "--no-console", action="store_true", help="serve no web console on the HTTP port"
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="serve no /openapi.json or /docs on the HTTP port"
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="a Host name the HTTP gateway answers to besides IP addresses and localhost "
        "(default: --host); '*' for any; repeatable",
    )
    parser.add_argument(
        "--api-key",
        type=api_key,
        default=config.setting("api_key"),
        help="a key for workers and clients alike: both must send 'authorization: Bearer KEY' "
        "(default: $AGNT5_API_KEY)",
    )
    parser.add_argument(
        "--max-queue",
        type=count,
        default=config.MAX_QUEUE,
        help="invocations that may wait for a worker (default: %(default)s)",
    )
    parser.add_argument(
        "--max-queue-per-service",
        type=count,
        help="invocations of one service that may wait (default: half of --max-queue)",
    )
    parser.add_argument(
        "--max-queued-bytes",
        type=count,
        default=config.MAX_QUEUED_BYTES,
        help="bytes of input that may wait for workers (default: %(default)s)",
    )
    parser.add_argument(
        "--max-queued-bytes-per-service",
        type=count,
        help="bytes of input of one service that may wait (default: half of --max-queued-bytes)",
    )
    parser.add_argument(
        "--queue-expiry",
        type=seconds,
        help="fail an invocation that waited this many seconds for a worker (default: never)",
    )
    parser.add_argument(
        "--max-input-bytes",
        type=positive,
        default=config.MAX_BODY_BYTES,
        help="largest accepted input (default: %(default)s)",
    )
    parser.add_argument(
        "--max-output-bytes",
        type=positive,
        default=config.MAX_OUTPUT_BYTES,
        help="largest result a worker may return; a larger one fails its invocation "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--result-cache-bytes",
        type=count,
        default=config.RESULT_CACHE_BYTES,
        help="bytes of finished invocations kept in memory; older ones are read from the "
        "journal (--in-memory: forgotten) (default: %(default)s)",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=seconds,
        default=config.HEARTBEAT_TIMEOUT,
        help="drop a worker silent this long, re-delivering its work (default: %(default)s)",
    )


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    value = _integer(text, 0)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, got {text!r}")
    return value


def _host(text: str) -> str:
    """An argparse type: an IP address or a host name."""
    try:
        return config.parse_host(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_key_options(parser: argparse.ArgumentParser) -> None:
    for role, may in (("worker", "register workers"), ("client", "invoke functions")):
        variable = f"AGNT5_{role.upper()}_KEY"
        parser.add_argument(
            f"--{role}-key",
            action="append",
            metavar="'KEY [SERVICE ...]'",
            help=f"a key that may {may} (only for the SERVICEs, when listed); repeatable "
            f"(default: ${variable}, one a line)",
        )
        parser.add_argument(
            f"--{role}-key-file",
            action="append",
            metavar="FILE",
            help=f"{role} keys from FILE, one 'KEY [SERVICE ...]' a line, so they stay out of "
            f"ps; repeatable (default: ${variable}_FILE)",
        )


def add_journal_options(parser: argparse.ArgumentParser) -> None:
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument(
        "--data-dir",
        help="journal invocations to DIR/journal.db (SQLite) and recover them on restart "
        f"(default: {config.DATA_DIR})",
    )
    storage.add_argument(
        "--database",
        metavar="URL",
        help="journal invocations to this PostgreSQL database (postgresql://user@host/db), "
        "which several coordinators may share (default: $AGNT5_DATABASE_URL; without it, "
        "--data-dir)",
    )
    storage.add_argument(
        "--in-memory",
        action="store_true",
        help="keep state in memory only: lost when the coordinator stops",
    )
    parser.add_argument(
        "--retention",
        type=seconds,
        default=config.RETENTION,
        help="seconds finished results stay readable by id and idempotency key, and services "
        "with no worker stay listed (default: %(default)s)",
    )
    parser.add_argument(
        "--lease",
        type=lease,
        default=config.LEASE,
        help="with --database: seconds after a coordinator stops renewing its lease (every "
        "second) before another takes over its unfinished work (default: %(default)s)",
    )


def add_worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="MODULE[:ATTR]",
        help="module name or .py file whose @function handlers to serve; "
        "ATTR: a Worker object in it, run with its own settings",
    )
    parser.add_argument(
        "--service", help="service name (default: $AGNT5_SERVICE_NAME, else the module's name)"
    )
    parser.add_argument(
        "--max-concurrency", type=positive, help="invocations run at once (default: 100)"
    )
    parser.add_argument(
        "--health-host",
        type=_host,
        help="address of the worker's /health, /ready and /metrics "
        f"(default: $AGNT5_HEALTH_HOST or {config.HEALTH_HOST}, every interface, for probes)",
    )
    parser.add_argument(
        "--health-port",
        type=_port,
        help=f"port of /health, /ready and /metrics, 0 for none "
        f"(default: $AGNT5_HEALTH_PORT or {config.HEALTH_PORT})",
    )


def add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default=config.setting("log_level"),
        type=log_level,
        metavar="{" + ",".join(config.LOG_LEVELS) + "}",
        help="level of the log lines on stderr; WARN works too (default: $AGNT5_LOG_LEVEL or INFO)",
    )
    parser.add_argument(
        "--log-format",
        default=config.setting("log_format"),
        type=str.lower,
        choices=config.LOG_FORMATS,
        help="log lines as text or JSON (default: $AGNT5_LOG_FORMAT or text)",
    )
