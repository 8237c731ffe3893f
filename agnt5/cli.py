"""The ``agnt5`` command: run a dev coordinator or a worker, invoke functions, show an
invocation, signal a workflow, list services."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from agnt5 import config
from agnt5.errors import AgntError

if TYPE_CHECKING:
    from agnt5.coordinator import Coordinator
    from agnt5.coordinator.auth import Key
    from agnt5.worker import Worker

__all__ = ["main"]

_EPILOG = f"""\
examples:
  agnt5 coordinator                           # gRPC on 127.0.0.1:{config.COORDINATOR_PORT}, HTTP on :{config.GATEWAY_PORT}
  agnt5 worker examples/hello.py              # serve a module's @function handlers
  agnt5 invoke hello hello '{{"name": "Ada"}}'  # call hello/hello, print the result
  agnt5 result ID                             # an invocation: state, output, workflow steps
  agnt5 signal ID approved '{{"approved": true}}'  # wake a workflow waiting in ctx.signal
  agnt5 services                              # what the coordinator serves
  agnt5 dev examples/hello.py                 # coordinator + worker in one process
  agnt5 dev examples/hello.py --invoke hello '{{"name": "Ada"}}'   # ... invoke once, exit
"""


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        default=config.setting("coordinator_endpoint"),
        help="coordinator gRPC endpoint, https:// for TLS "
        "(default: $AGNT5_COORDINATOR_ENDPOINT or %(default)s)",
    )
    parser.add_argument(
        "--api-key", default=config.setting("api_key"), help="API key (default: $AGNT5_API_KEY)"
    )


def _add_coordinator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=config.LOCALHOST, help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=config.COORDINATOR_PORT,
        help="gRPC port, 0 for any (default: %(default)s)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=config.GATEWAY_PORT,
        help="HTTP gateway port, 0 for any (default: %(default)s)",
    )
    parser.add_argument("--no-http", action="store_true", help="run without the HTTP gateway")
    parser.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="a Host name the HTTP gateway answers to besides IP addresses and localhost "
        "(default: --host); '*' for any; repeatable",
    )
    parser.add_argument(
        "--api-key",
        default=config.setting("api_key"),
        help="a key for workers and clients alike: both must send 'authorization: Bearer KEY' "
        "(default: $AGNT5_API_KEY)",
    )
    parser.add_argument(
        "--max-queue",
        type=_count,
        default=config.MAX_QUEUE,
        help="invocations that may wait for a worker (default: %(default)s)",
    )
    parser.add_argument(
        "--max-queue-per-service",
        type=_count,
        help="invocations of one service that may wait (default: half of --max-queue)",
    )
    parser.add_argument(
        "--max-queued-bytes",
        type=_count,
        default=config.MAX_QUEUED_BYTES,
        help="bytes of input that may wait for workers (default: %(default)s)",
    )
    parser.add_argument(
        "--max-queued-bytes-per-service",
        type=_count,
        help="bytes of input of one service that may wait (default: half of --max-queued-bytes)",
    )
    parser.add_argument(
        "--queue-expiry",
        type=_seconds,
        help="fail an invocation that waited this many seconds for a worker (default: never)",
    )
    parser.add_argument(
        "--max-input-bytes",
        type=_size,
        default=config.MAX_BODY_BYTES,
        help="largest accepted input (default: %(default)s)",
    )
    parser.add_argument(
        "--max-output-bytes",
        type=_size,
        default=config.MAX_OUTPUT_BYTES,
        help="largest result a worker may return; a larger one fails its invocation "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--result-cache-bytes",
        type=_count,
        default=config.RESULT_CACHE_BYTES,
        help="bytes of finished invocations kept in memory; older ones are read from the "
        "journal (--in-memory: forgotten) (default: %(default)s)",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=_seconds,
        default=config.HEARTBEAT_TIMEOUT,
        help="drop a worker silent this long, re-delivering its work (default: %(default)s)",
    )


def _count(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _integer(text, 0)


def _size(text: str) -> int:
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


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _add_key_options(parser: argparse.ArgumentParser) -> None:
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
        except ValueError as exc:
            raise SystemExit(f"agnt5: bad {role} key: {exc}") from None
    return keys


def _add_journal_options(parser: argparse.ArgumentParser) -> None:
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument(
        "--data-dir",
        default=config.DATA_DIR,
        help="journal invocations to DIR/journal.db (SQLite) and recover them on restart "
        "(default: %(default)s)",
    )
    storage.add_argument(
        "--in-memory",
        action="store_true",
        help="keep state in memory only: lost when the coordinator stops",
    )
    parser.add_argument(
        "--retention",
        type=_seconds,
        default=config.RETENTION,
        help="seconds finished results stay readable by id and idempotency key, and services "
        "with no worker stay listed (default: %(default)s)",
    )


def _add_worker_options(parser: argparse.ArgumentParser) -> None:
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
        "--max-concurrency", type=int, help="invocations run at once (default: 100)"
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


def _add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default=config.setting("log_level"),
        type=str.upper,
        choices=config.LOG_LEVELS,
        help="level of the log lines on stderr (default: $AGNT5_LOG_LEVEL or INFO)",
    )
    parser.add_argument(
        "--log-format",
        default=config.setting("log_format"),
        type=str.lower,
        choices=config.LOG_FORMATS,
        help="log lines as text or JSON (default: $AGNT5_LOG_FORMAT or text)",
    )


def _configure_logging(args: argparse.Namespace, service_name: str | None = None) -> None:
    """The process's log lines (the SDK's and the application's) through the SDK's handler."""
    from agnt5.logging import install_opentelemetry_logging

    install_opentelemetry_logging(
        logging.getLogger(),
        args.log_level,
        log_format=args.log_format,
        service_name=service_name,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agnt5",
        description="Serve Python functions as workers, and invoke them.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    coordinator = commands.add_parser(
        "coordinator",
        help="run the dev coordinator (gRPC + HTTP gateway, invocations journaled)",
        description="Run the dev coordinator: workers connect over gRPC, clients invoke over gRPC "
        "or the HTTP gateway. Invocations are journaled to --data-dir (SQLite) and those "
        "unfinished are run again after a restart; --in-memory keeps nothing. Prints "
        "'agnt5 coordinator: grpc=HOST:PORT http=HOST:PORT' once it serves.",
    )
    _add_coordinator_options(coordinator)
    _add_key_options(coordinator)
    _add_log_options(coordinator)
    _add_journal_options(coordinator)
    coordinator.set_defaults(run=_coordinator)

    worker = commands.add_parser(
        "worker",
        help="serve a module's functions through a coordinator",
        description="Import MODULE (so its @function / @workflow handlers register) and run a "
        "standalone Worker connected to the coordinator until SIGINT/SIGTERM.",
    )
    _add_worker_options(worker)
    _add_client_options(worker)
    _add_log_options(worker)
    worker.set_defaults(run=_worker)

    dev = commands.add_parser(
        "dev",
        help="coordinator and a module's worker in one process",
        description="Local development: an embedded coordinator plus a worker serving MODULE, "
        "in one process. Prints how to invoke the functions.",
    )
    _add_worker_options(dev)
    _add_coordinator_options(dev)
    dev.add_argument(
        "--invoke",
        nargs="+",
        metavar=("FUNCTION", "JSON"),
        help="invoke FUNCTION once (with the JSON input), print the result and exit",
    )
    _add_log_options(dev)
    dev.set_defaults(run=_dev)

    invoke = commands.add_parser(
        "invoke",
        help="invoke a function and print its result",
        description="Invoke SERVICE/FUNCTION with a JSON input and print the JSON result. "
        "Errors go to stderr with their code; the exit status is then 1.",
    )
    invoke.add_argument("service", metavar="SERVICE")
    invoke.add_argument("function", metavar="FUNCTION")
    invoke.add_argument(
        "input", metavar="JSON", nargs="?", help="the input as JSON, '-' for stdin (default: none)"
    )
    invoke.add_argument("--timeout", type=float, help="invocation deadline in seconds")
    invoke.add_argument("--idempotency-key", help="requests with the same key share one invocation")
    invoke.add_argument(
        "--submit", action="store_true", help="do not wait: print the invocation id"
    )
    _add_client_options(invoke)
    invoke.set_defaults(run=_invoke)

    result = commands.add_parser(
        "result",
        help="show an invocation: its state, output or error, and a workflow's steps",
        description="Print invocation ID as JSON: state, attempt, output or error, and for a "
        "workflow its steps (seq, kind, name, state, attempt, duration).",
    )
    result.add_argument("invocation_id", metavar="ID")
    result.add_argument(
        "--wait", type=float, default=0.0, help="seconds to wait for it to finish (default: 0)"
    )
    _add_client_options(result)
    result.set_defaults(run=_result)

    signal_ = commands.add_parser(
        "signal",
        help="send a signal to a workflow invocation",
        description="Send signal NAME with a JSON payload to workflow invocation ID; prints "
        "'delivered' when a waiting ctx.signal took it, 'kept' when it waits for a later one.",
    )
    signal_.add_argument("invocation_id", metavar="ID")
    signal_.add_argument("name", metavar="NAME")
    signal_.add_argument(
        "payload",
        metavar="JSON",
        nargs="?",
        help="the payload as JSON, '-' for stdin (default: null)",
    )
    _add_client_options(signal_)
    signal_.set_defaults(run=_signal)

    services = commands.add_parser(
        "services",
        help="list services and their functions",
        description="List the services a coordinator knows.",
    )
    services.add_argument("--json", action="store_true", help="print JSON")
    _add_client_options(services)
    services.set_defaults(run=_services)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``agnt5`` command line; returns the exit status."""
    try:
        parser = _parser()
    except ValueError as error:  # an AGNT5_* variable with a bad value
        print(f"error: {error}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        return int(args.run(args, parser))
    except AgntError as error:
        print(f"error: {error.code}: {error.message}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _new_coordinator(args: argparse.Namespace) -> Coordinator:
    from agnt5.coordinator import Coordinator, MemoryStore, SqliteStore, StateStore

    keys = _keys(args)
    store: StateStore
    if getattr(args, "in_memory", True):  # `agnt5 dev` keeps state in memory
        store = MemoryStore(max_finished_bytes=args.result_cache_bytes)
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


def _announce(coordinator: Coordinator) -> None:
    http = (
        f"{coordinator.host}:{coordinator.http_port}"
        if coordinator.http_port is not None
        else "off"
    )
    print(f"agnt5 coordinator: grpc={coordinator.host}:{coordinator.port} http={http}", flush=True)


def _coordinator(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _configure_logging(args)

    async def serve() -> None:
        coordinator = _new_coordinator(args)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await coordinator.start()
        try:
            _announce(coordinator)
            await stop.wait()
        finally:
            await coordinator.stop()

    asyncio.run(serve())
    return 0


def _load_worker(args: argparse.Namespace, endpoint: str, api_key: str | None) -> Worker:
    """Import the target module (its handlers register) and return the Worker to run."""
    from agnt5.worker import Worker

    module_name, _, attr = args.target.partition(":")
    module = _import(module_name)
    if attr:
        worker = getattr(module, attr, None)
        if not isinstance(worker, Worker):
            raise SystemExit(f"agnt5: {module_name}:{attr} is not an agnt5 Worker")
        return worker
    options: dict[str, Any] = {
        "coordinator_endpoint": endpoint,
        "api_key": api_key,
        "log_level": args.log_level,
        "log_format": args.log_format,
    }
    for option in ("max_concurrency", "health_host", "health_port"):
        if getattr(args, option) is not None:
            options[option] = getattr(args, option)
    service = args.service or config.setting("service_name") or module.__name__.rpartition(".")[2]
    return Worker(service, runtime="standalone", **options)


def _import(name: str) -> Any:
    """A module by dotted name (from the current directory too) or by ``.py`` path."""
    if name.endswith(".py") or os.sep in name:
        path = Path(name).resolve()
        if not path.is_file():
            raise SystemExit(f"agnt5: no such file: {name}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"agnt5: cannot import {name}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return importlib.import_module(name)


def _worker(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    worker = _load_worker(args, args.endpoint, args.api_key)
    _configure_logging(args, worker.service_name)
    asyncio.run(worker.run())
    return 0


def _dev(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _configure_logging(args)
    once = args.invoke
    if once is not None and len(once) > 2:
        parser.error("--invoke takes FUNCTION and at most one JSON input")
    value = _read_input(once[1] if once and len(once) == 2 else None, parser)

    async def serve() -> None:
        coordinator = _new_coordinator(args)
        await coordinator.start()
        try:
            worker = _load_worker(args, coordinator.endpoint, args.api_key)
            _announce(coordinator)
            if once is None:
                _print_usage(coordinator, worker)
                await worker.run()  # until SIGINT/SIGTERM: the worker drains, then returns
                return
            runner = asyncio.create_task(worker.run())
            try:
                result = await _invoke_when_ready(coordinator, worker, once[0], value, args.api_key)
                print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode(), flush=True)
            finally:
                worker.stop()
                await runner
        finally:
            await coordinator.stop()

    asyncio.run(serve())
    return 0


async def _invoke_when_ready(
    coordinator: Coordinator, worker: Worker, function: str, value: Any, api_key: str | None
) -> Any:
    """Wait (up to 30 s) for the worker to register, then invoke ``function`` once."""
    from agnt5.client import AsyncClient

    async with AsyncClient(coordinator.endpoint, api_key) as client:
        for _ in range(300):  # bounded: 300 x 0.1 s
            services = await client.list_services()
            if any(s["name"] == worker.service_name and s["workers"] for s in services):
                return await client.invoke(worker.service_name, function, value)
            await asyncio.sleep(0.1)
    raise SystemExit("agnt5: the worker did not register within 30 s")


def _print_usage(coordinator: Coordinator, worker: Worker) -> None:
    service = worker.service_name
    lines = [f"serving {service!r}:"]
    for name in sorted(worker.components):
        lines.append(f"  agnt5 invoke --endpoint {coordinator.endpoint} {service} {name} '<json>'")
        if coordinator.http_port is not None:
            base = f"http://{coordinator.host}:{coordinator.http_port}"
            url = f"{base}/v1/services/{service}/functions/{name}/invoke"
            lines.append(f"  curl {url} -H 'content-type: application/json' -d '<json>'")
    print("\n".join(lines), flush=True)


def _read_input(text: str | None, parser: argparse.ArgumentParser) -> Any:
    if text is None:
        return None
    raw = sys.stdin.read() if text == "-" else text
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        parser.error(f"JSON input is not valid JSON: {exc}")


def _invoke(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from agnt5.client import Client

    value = _read_input(args.input, parser)
    with Client(args.endpoint, args.api_key) as client:
        if args.submit:
            print(
                client.submit(
                    args.service,
                    args.function,
                    value,
                    idempotency_key=args.idempotency_key,
                    timeout=args.timeout,
                )
            )
            return 0
        result = client.invoke(
            args.service,
            args.function,
            value,
            idempotency_key=args.idempotency_key,
            timeout=args.timeout,
        )
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


def _result(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from agnt5.client import Client

    if not 0 <= args.wait < float("inf"):
        parser.error(f"--wait must be a number of seconds >= 0, got {args.wait}")
    with Client(args.endpoint, args.api_key) as client:
        if args.wait:
            try:
                client.result(args.invocation_id, timeout=args.wait)
            except AgntError:  # failed, or still running: describe says which
                pass
        view = client.describe(args.invocation_id)
    print(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())
    return 0


def _signal(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from agnt5.client import Client

    payload = _read_input(args.payload, parser)
    with Client(args.endpoint, args.api_key) as client:
        delivered = client.signal(args.invocation_id, args.name, payload)
    print("delivered" if delivered else "kept")
    return 0


def _services(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from agnt5.client import Client

    with Client(args.endpoint, args.api_key) as client:
        services = client.list_services()
    if args.json:
        print(orjson.dumps(services, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not services:
        print("no services registered")
    for service in services:
        print(
            f"{service['name']} {service['version']}  workers={len(service['workers'])} "
            f"queued={service['queued']}"
        )
        for component in service["components"]:
            summary = (
                component["description"].strip().splitlines()[0]
                if component["description"].strip()
                else ""
            )
            print(f"  {component['name']} ({component['kind']}){'  ' + summary if summary else ''}")
    return 0
