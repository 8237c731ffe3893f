"""The serving commands: ``agnt5 coordinator``, ``agnt5 worker`` and ``agnt5 dev``.

Each runs until SIGINT or SIGTERM (one Ctrl+C is a graceful stop, like SIGTERM; a second one
hurries it) and exits 0 after it stopped cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TextIO

from agnt5 import config
from agnt5.cli._calls import print_json, read_input
from agnt5.cli._modules import load
from agnt5.cli._options import CommandError, UsageError

if TYPE_CHECKING:
    from agnt5.coordinator import Coordinator
    from agnt5.coordinator.auth import Key
    from agnt5.worker import Worker

__all__ = ["configure_logging", "coordinator", "dev", "new_coordinator", "serving", "worker"]

_REGISTER_WAIT = 30.0  # seconds `agnt5 dev --invoke` waits for its worker to register


def coordinator(args: argparse.Namespace) -> int:
    configure_logging(args)

    async def serve() -> None:
        async with serving(args) as (_, stop):
            await stop.wait()

    asyncio.run(serve())
    return 0


@contextlib.asynccontextmanager
async def serving(args: argparse.Namespace) -> AsyncIterator[tuple[Coordinator, asyncio.Event]]:
    """The coordinator of ``args``, started and announced, and an event SIGINT or SIGTERM sets;
    stopped, and said so, when the block ends."""
    from agnt5.runtimes._signals import ShutdownSignals

    made = new_coordinator(args)
    stop = asyncio.Event()
    signals = ShutdownSignals(lambda signum: _stopping(signum, stop))
    signals.install(asyncio.get_running_loop())
    try:
        await made.start()
        try:
            announce(made)
            yield made, stop
        finally:
            await made.stop()
    finally:
        signals.uninstall()
    stopped()


def worker(args: argparse.Namespace) -> int:
    module, named = load(args.target)
    served = named or _new_worker(args, module.__name__, args.endpoint, args.api_key)
    configure_logging(args, served.service_name)
    asyncio.run(served.run())
    return 0


def dev(args: argparse.Namespace) -> int:
    once = args.invoke
    if once is not None and len(once) > 2:
        raise UsageError("agnt5 dev: error: --invoke takes FUNCTION and at most one JSON input")
    value = read_input(once[1] if once and len(once) == 2 else None)
    if args.reload:
        if once is not None:
            raise UsageError("agnt5 dev: error: --reload and --invoke do not go together")
        from agnt5.cli._reload import supervise

        return supervise(args)
    module, named = load(args.target)  # before any port is bound
    configure_logging(args)
    status = sys.stdout if once is None else sys.stderr  # --invoke: stdout is the result alone

    async def serve() -> None:
        made = new_coordinator(args)
        await made.start()
        try:
            served = named or _new_worker(args, module.__name__, made.endpoint, args.api_key)
            runner = asyncio.create_task(served.run())  # until SIGINT/SIGTERM: it drains
            await _started(served, runner)  # it handles signals from now on
            announce(made, status)
            if once is None:
                print_usage(made, served.service_name, sorted(served.components))
                await runner
            else:
                await _invoke_once(made, served, runner, once[0], value, args.api_key)
        finally:
            await made.stop()
            stopped(status)

    asyncio.run(serve())
    return 0


async def _started(served: Worker, runner: asyncio.Task[None]) -> None:
    """Return once ``served`` runs (or ``runner`` ended: its error is raised when awaited)."""
    while not (served.is_running() or runner.done()):  # noqa: ASYNC110 - a few turns of the loop
        await asyncio.sleep(0)


async def _invoke_once(
    coordinator: Coordinator,
    served: Worker,
    runner: asyncio.Task[None],
    function: str,
    value: Any,
    api_key: str | None,
) -> None:
    """Run ``served`` until it answered one invocation of ``function``; print the result."""
    asking = asyncio.create_task(_invoke_when_ready(coordinator, served, function, value, api_key))
    try:
        await asyncio.wait({runner, asking}, return_when=asyncio.FIRST_COMPLETED)
        if not asking.done():  # the worker stopped (a signal) before it was asked
            asking.cancel()
            raise CommandError(f"the worker stopped before {function} was invoked")
        print_json(asking.result())
    finally:
        if served.is_running():  # not when a signal stopped it already
            served.stop()
        await runner


async def _invoke_when_ready(
    coordinator: Coordinator, served: Worker, function: str, value: Any, api_key: str | None
) -> Any:
    """Wait (up to `_REGISTER_WAIT`) for ``served`` to register, then invoke ``function``."""
    from agnt5.client import AsyncClient

    service = served.service_name
    async with AsyncClient(coordinator.endpoint, api_key) as client:
        for _ in range(int(_REGISTER_WAIT * 10)):  # bounded: every 0.1 s
            services = await client.list_services()
            if any(s["name"] == service and s["workers"] for s in services):
                return await client.invoke(service, function, value)
            await asyncio.sleep(0.1)
    raise CommandError(f"the worker did not register within {_REGISTER_WAIT:g} s")


def new_coordinator(args: argparse.Namespace) -> Coordinator:
    """The coordinator the options describe (`agnt5 dev`'s keeps its state in memory)."""
    from agnt5.coordinator import Coordinator, MemoryStore, SqliteStore, StateStore

    keys = _keys(args)
    store: StateStore
    if getattr(args, "in_memory", True):
        store = MemoryStore(max_finished_bytes=args.result_cache_bytes)
    elif database := _database_url(args):
        from agnt5.coordinator.postgres import PostgresStore

        store = PostgresStore(
            database,
            retention=args.retention,
            max_finished_bytes=args.result_cache_bytes,
            lease=args.lease,
        )
    else:
        store = SqliteStore(
            args.data_dir, retention=args.retention, max_finished_bytes=args.result_cache_bytes
        )
    return Coordinator(
        args.host,
        args.port,
        None if args.no_http else args.http_port,
        api_key=args.api_key,
        keys=keys,
        allowed_hosts=args.allowed_host,
        console=not args.no_console,
        docs=not args.no_docs,
        max_queue=args.max_queue,
        max_queue_per_service=args.max_queue_per_service,
        max_queued_bytes=args.max_queued_bytes,
        max_queued_bytes_per_service=args.max_queued_bytes_per_service,
        queue_expiry=args.queue_expiry,
        max_input_bytes=args.max_input_bytes,
        max_output_bytes=args.max_output_bytes,
        heartbeat_interval=min(config.HEARTBEAT_INTERVAL, args.heartbeat_timeout / 3),
        heartbeat_timeout=args.heartbeat_timeout,
        forget_services_after=getattr(args, "retention", config.RETENTION),
        store=store,
    )


def _database_url(args: argparse.Namespace) -> str | None:
    """The PostgreSQL URL to journal to: ``--database``, else ``$AGNT5_DATABASE_URL`` unless
    ``--data-dir`` is given; None for SQLite (``--data-dir``, or its default)."""
    from agnt5.coordinator.postgres import check_database_url

    url = args.database
    source = "--database"
    if url is None and args.data_dir is None:
        url, source = config.env_text("AGNT5_DATABASE_URL") or None, "AGNT5_DATABASE_URL"
    if url is None:
        args.data_dir = args.data_dir or config.DATA_DIR
        return None
    try:
        return check_database_url(url)
    except ValueError as exc:
        raise UsageError(f"agnt5: bad {source}: {exc}") from None


def _keys(args: argparse.Namespace) -> list[Key]:
    """The worker and client keys of the flags, else of the environment (none for commands
    without key options: `agnt5 dev` uses --api-key alone)."""
    from agnt5.coordinator.auth import Key, read_key_file

    keys: list[Key] = []
    if not hasattr(args, "worker_key"):
        return keys
    for role in ("worker", "client"):
        variable = f"AGNT5_{role.upper()}_KEY"
        specs = getattr(args, f"{role}_key") or config.env_text(variable).splitlines()
        files = getattr(args, f"{role}_key_file") or filter(
            None, [config.env_text(f"{variable}_FILE")]
        )
        try:
            specs = [*specs, *(spec for path in files for spec in read_key_file(path))]
            keys += [
                Key.parse(spec, worker=role == "worker", client=role == "client") for spec in specs
            ]
        except (OSError, ValueError) as exc:
            raise UsageError(f"agnt5: bad {role} key: {exc}") from None
    return keys


def _new_worker(
    args: argparse.Namespace, module_name: str, endpoint: str, api_key: str | None
) -> Worker:
    from agnt5.worker import Worker

    options: dict[str, Any] = {
        "coordinator_endpoint": endpoint,
        "api_key": api_key,
        "log_level": args.log_level,
        "log_format": args.log_format,
    }
    for option in ("max_concurrency", "health_host", "health_port"):
        if getattr(args, option) is not None:
            options[option] = getattr(args, option)
    service = args.service or config.setting("service_name") or module_name.rpartition(".")[2]
    try:
        return Worker(service, runtime="standalone", **options)
    except ValueError as error:  # a flag or an AGNT5_* variable with a bad value
        raise UsageError(f"error: {error}") from None


def configure_logging(args: argparse.Namespace, service_name: str | None = None) -> None:
    """The process's log lines (the SDK's and the application's) through the SDK's handler,
    unless the application configured logging itself (then its handlers print them)."""
    from agnt5.logging import install_opentelemetry_logging

    root = logging.getLogger()
    if not root.handlers:
        install_opentelemetry_logging(
            root, args.log_level, log_format=args.log_format, service_name=service_name
        )


def announce(made: Coordinator, stream: TextIO = sys.stdout) -> None:
    """Where the coordinator listens, and its console's address when it serves one."""
    http = f"{made.host}:{made.http_port}" if made.http_port is not None else "off"
    print(f"agnt5 coordinator: grpc={made.host}:{made.port} http={http}", file=stream, flush=True)
    if made.console_url is not None:
        print(f"agnt5 console: {made.console_url}", file=stream, flush=True)


def stopped(stream: TextIO = sys.stdout) -> None:
    print("agnt5 coordinator: stopped", file=stream, flush=True)


def _stopping(signum: int, stop: asyncio.Event) -> None:
    if not stop.is_set():
        logging.getLogger("agnt5.coordinator").info("stopping: %s", signal.Signals(signum).name)
        stop.set()


def print_usage(made: Coordinator, service: str, functions: list[str]) -> None:
    """How to call each of ``functions`` of ``service`` through ``made``."""
    lines = [f"serving {service!r}:"]
    for name in functions:
        lines.append(f"  agnt5 invoke --endpoint {made.endpoint} {service} {name} '<json>'")
        if made.http_port is not None:
            url = f"http://{made.host}:{made.http_port}/v1/services/{service}/functions/{name}"
            lines.append(f"  curl {url}/invoke -H 'content-type: application/json' -d '<json>'")
    print("\n".join(lines), flush=True)
