"""The ``agnt5`` command: run a dev coordinator or a worker, invoke functions, see and cancel
invocations, signal a workflow, list services.

Every mistake is one line on stderr naming the flag, variable, module or port at fault: exit
status 2 for a mistake in the command line or its environment, 1 for a command that could not
do its work. Never a traceback, except the user's own when their module fails to import.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence

from agnt5 import config
from agnt5.cli import _calls, _serve
from agnt5.cli._modules import UserCodeError
from agnt5.cli._options import (
    CommandError,
    Parser,
    UsageError,
    add_client_options,
    add_coordinator_options,
    add_journal_options,
    add_key_options,
    add_log_options,
    add_worker_options,
    positive,
    seconds,
)
from agnt5.errors import AgntError

__all__ = ["main"]

_STATES = ("PENDING", "RUNNING", "SUSPENDED", "SUCCEEDED", "FAILED")
_EPILOG = f"""\
examples:
  agnt5 coordinator                           # gRPC on 127.0.0.1:{config.COORDINATOR_PORT}, HTTP on :{config.GATEWAY_PORT}
  agnt5 worker examples/hello.py              # serve its @function handlers as service 'hello'
  agnt5 invoke hello hello '{{"name": "Ada"}}'  # call service hello's function hello
  agnt5 invoke hello hello '"Bob"' --submit   # ... print its invocation id instead
  agnt5 result ID                             # that invocation's result
  agnt5 result ID --json                      # ... all of it: state, error, workflow steps
  agnt5 signal ID approved '{{"approved": true}}'  # wake a workflow waiting in ctx.signal
  agnt5 invocations --service hello           # recent invocations and their states
  agnt5 cancel ID                             # cancel a queued or running invocation
  agnt5 services                              # what the coordinator serves
  agnt5 dev examples/hello.py                 # coordinator + worker in one process
  agnt5 dev examples/hello.py --reload        # ... restarting the worker when files change
  agnt5 dev examples/hello.py --invoke hello '{{"name": "Ada"}}'   # ... invoke once, exit
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``agnt5`` command line; returns the exit status."""
    try:
        try:
            args = _parser().parse_args(argv)
            return int(args.run(args))
        except (UsageError, config.ConfigError) as error:
            _say(str(error) if isinstance(error, UsageError) else f"error: {error}")
            return 2
        except UserCodeError as error:
            sys.stderr.write(error.report)
            return 1
        except CommandError as error:
            _say(f"error: {error}")
            return 1
        except AgntError as error:
            _say(f"error: {error.code}: {error.message}")
            return 1
        except BrokenPipeError:
            raise
        except OSError as error:
            _say(f"error: {error}")
            return 1
    except BrokenPipeError:  # `agnt5 services | head`: the reader has what it wanted
        _quiet_stdout()
        return 1
    except KeyboardInterrupt:
        return 130


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _version() -> str:
    from agnt5 import __version__
    from agnt5._speedups import USE_EXTENSIONS

    twins = "compiled" if USE_EXTENSIONS else "pure-Python"
    return f"agnt5 {__version__} ({twins} hot path, Python {platform.python_version()})"


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="agnt5",
        description="Serve Python functions as workers, and invoke them.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    coordinator = commands.add_parser(
        "coordinator",
        help="run the dev coordinator (gRPC + HTTP gateway, invocations journaled)",
        description="Run the dev coordinator: workers connect over gRPC, clients invoke over gRPC "
        "or the HTTP gateway. Invocations are journaled to --data-dir (SQLite) and those "
        "unfinished are run again after a restart; --in-memory keeps nothing. Prints "
        "'agnt5 coordinator: grpc=HOST:PORT http=HOST:PORT' once it serves, and "
        "'agnt5 coordinator: stopped' after SIGINT (Ctrl+C) or SIGTERM.",
    )
    add_coordinator_options(coordinator)
    add_key_options(coordinator)
    add_log_options(coordinator)
    add_journal_options(coordinator)
    coordinator.set_defaults(run=_serve.coordinator)

    worker = commands.add_parser(
        "worker",
        help="serve a module's functions through a coordinator",
        description="Import MODULE (so its @function / @workflow handlers register) and run a "
        "standalone Worker connected to the coordinator until SIGINT (Ctrl+C) or SIGTERM: "
        "in-flight work finishes, a second signal cancels it.",
    )
    add_worker_options(worker)
    add_client_options(worker)
    add_log_options(worker)
    worker.set_defaults(run=_serve.worker)

    dev = commands.add_parser(
        "dev",
        help="coordinator and a module's worker in one process",
        description="Local development: an embedded coordinator (in memory) plus a worker "
        "serving MODULE. Prints how to invoke the functions.",
    )
    add_worker_options(dev)
    add_coordinator_options(dev)
    dev.add_argument(
        "--invoke",
        nargs="+",
        metavar=("FUNCTION", "JSON"),
        help="invoke FUNCTION once (with the JSON input), print only its result on stdout and exit",
    )
    dev.add_argument(
        "--reload",
        action="store_true",
        help="restart the worker whenever a .py file under the module's directory changes",
    )
    add_log_options(dev)
    dev.set_defaults(run=_serve.dev)

    invoke = commands.add_parser(
        "invoke",
        help="invoke a function and print its result",
        description="Invoke SERVICE/FUNCTION with a JSON input and print the JSON result. "
        "Errors go to stderr with their code; the exit status is then 1. With no worker of "
        "the service connected it says so at once, and waits for one.",
    )
    invoke.add_argument("service", metavar="SERVICE")
    invoke.add_argument("function", metavar="FUNCTION")
    invoke.add_argument(
        "input", metavar="JSON", nargs="?", help="the input as JSON, '-' for stdin (default: none)"
    )
    invoke.add_argument(
        "--timeout",
        type=seconds,
        help="the invocation's deadline in seconds: past it, it fails with TIMEOUT "
        f"(default: none; the command waits {_calls.DEFAULT_TIMEOUT:g} s for it)",
    )
    invoke.add_argument("--idempotency-key", help="requests with the same key share one invocation")
    invoke.add_argument(
        "--submit", action="store_true", help="do not wait: print the invocation id"
    )
    add_client_options(invoke)
    invoke.set_defaults(run=_calls.invoke)

    result = commands.add_parser(
        "result",
        help="print an invocation's result",
        description="Print the JSON result of invocation ID (from 'agnt5 invoke --submit' or "
        "'agnt5 invocations'), as 'agnt5 invoke' does; a failed or unfinished one is an error.",
    )
    result.add_argument("invocation_id", metavar="ID")
    result.add_argument(
        "--wait",
        type=seconds,
        help="seconds to wait for it to finish (default: none, as it stands now)",
    )
    result.add_argument(
        "--json",
        action="store_true",
        help="print the whole invocation, in any state: its state, attempt, result or error, and "
        "a workflow's steps (seq, kind, name, state, attempt, duration)",
    )
    add_client_options(result)
    result.set_defaults(run=_calls.result, wait=0.0)

    listing = commands.add_parser(
        "invocations",
        help="list recent invocations and their states",
        description="List recent invocations, newest first: id, state, service/function, "
        "attempt, when it was accepted, how long its last attempt ran, and a failure's code.",
    )
    listing.add_argument("--service", help="only this service's")
    listing.add_argument("--function", help="only this function's")
    listing.add_argument(
        "--state",
        action="append",
        type=str.upper,
        choices=_STATES,
        help="only in this state; repeatable",
    )
    listing.add_argument(
        "--limit", type=positive, default=20, help="how many at most (default: %(default)s)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_client_options(listing)
    listing.set_defaults(run=_calls.invocations)

    cancel = commands.add_parser(
        "cancel",
        help="cancel a queued or running invocation",
        description="Cancel invocation ID: a queued one never runs, a running one is cancelled "
        "on its worker; it fails with CANCELLED. A finished one cannot be cancelled.",
    )
    cancel.add_argument("invocation_id", metavar="ID")
    cancel.add_argument("--reason", help="why, for the invocation's error message")
    add_client_options(cancel)
    cancel.set_defaults(run=_calls.cancel)

    signal = commands.add_parser(
        "signal",
        help="send a signal to a workflow invocation",
        description="Send signal NAME with a JSON payload to workflow invocation ID; prints "
        "'delivered' when a waiting ctx.signal took it, 'kept' when it waits for a later one.",
    )
    signal.add_argument("invocation_id", metavar="ID")
    signal.add_argument("name", metavar="NAME")
    signal.add_argument(
        "payload",
        metavar="JSON",
        nargs="?",
        help="the payload as JSON, '-' for stdin (default: null)",
    )
    add_client_options(signal)
    signal.set_defaults(run=_calls.signal)

    services = commands.add_parser(
        "services",
        help="list services and their functions",
        description="List the services a coordinator knows.",
    )
    services.add_argument("--json", action="store_true", help="print JSON")
    add_client_options(services)
    services.set_defaults(run=_calls.services)
    return parser
