"""The client commands: ``invoke``, ``result``, ``invocations``, ``cancel``, ``signal`` and
``services``.

Each first checks that the coordinator answers (within `REACH_TIMEOUT`), so a coordinator that
is not running is reported at once, not after the call's whole timeout of retries.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

from agnt5 import config
from agnt5.cli._options import CommandError, UsageError
from agnt5.client import DEFAULT_TIMEOUT, Client
from agnt5.errors import AgntError, InvalidArgumentError

__all__ = [
    "REACH_TIMEOUT",
    "cancel",
    "invocations",
    "invoke",
    "print_json",
    "read_input",
    "result",
    "services",
    "signal",
]

REACH_TIMEOUT = 5.0
"""Seconds a command gives the coordinator to accept a connection."""
_CALL_TIMEOUT = 10.0  # seconds for the calls that do not wait for an invocation
_MARGIN = 0.3  # seconds a wait outlasts an invocation's deadline, so the deadline ends it
_MOST_PAGES = 50  # pages `invocations` reads at most to fill its --limit


def invoke(args: argparse.Namespace) -> int:
    value = read_input(args.input)
    with _connected(args) as client:
        invocation_id = client.submit(
            args.service,
            args.function,
            value,
            idempotency_key=args.idempotency_key,
            timeout=args.timeout,
        )
        if args.submit:
            print(invocation_id)
            return 0
        if args.timeout is None:
            _say_if_queued(client, args.service, invocation_id, DEFAULT_TIMEOUT)
            return _report(client, invocation_id, DEFAULT_TIMEOUT)
        _say_if_queued(client, args.service, invocation_id, args.timeout)
        return _report(client, invocation_id, args.timeout + _MARGIN)  # its deadline ends it


def result(args: argparse.Namespace) -> int:
    with _connected(args) as client:
        return _report(client, args.invocation_id, args.wait, whole=args.json)


def invocations(args: argparse.Namespace) -> int:
    with _connected(args) as client:
        rows, complete = _newest(client, args)
    if args.json:
        print_json(rows)
    elif not rows:
        print("no invocations")
    for row in [] if args.json else rows:
        created = datetime.datetime.fromtimestamp(row["created_unix_ms"] / 1000)
        error = f"  {row['error_code']}" if "error_code" in row else ""
        print(
            f"{row['invocation_id']}  {row['state']:<9}  {row['service']}/{row['function']}  "
            f"attempt {row['attempt']}  {created:%Y-%m-%d %H:%M:%S}  "
            f"{row['duration_ms']:.1f} ms{error}"
        )
    if not complete:
        _say("agnt5: looked at the newest invocations only; narrow the filters to see older ones")
    return 0


def cancel(args: argparse.Namespace) -> int:
    with _connected(args) as client:
        client.cancel(args.invocation_id, args.reason or "")
    print(f"cancelled {args.invocation_id}")
    return 0


def signal(args: argparse.Namespace) -> int:
    payload = read_input(args.payload)
    with _connected(args) as client:
        delivered = client.signal(args.invocation_id, args.name, payload)
    print("delivered" if delivered else "kept")
    return 0


def services(args: argparse.Namespace) -> int:
    with _connected(args) as client:
        known = client.list_services()
    if args.json:
        print_json(known)
        return 0
    if not known:
        print("no services registered")
    for service in known:
        print(
            f"{service['name']} {service['version']}  workers={len(service['workers'])} "
            f"queued={service['queued']}"
        )
        for component in service["components"]:
            description = component["description"].strip()
            summary = f"  {description.splitlines()[0]}" if description else ""
            print(f"  {component['name']} ({component['kind']}){summary}")
    return 0


def read_input(text: str | None) -> Any:
    """The JSON input of a command (``-``: standard input); None without one."""
    from agnt5._speedups import decode_json

    if text is None:
        return None
    raw = sys.stdin.read() if text == "-" else text
    try:
        return decode_json(raw.encode())
    except InvalidArgumentError as exc:
        raise UsageError(f"agnt5: error: {exc.message} (JSON; '-' reads it from stdin)") from None


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (integers of any size exact)."""
    print(json.dumps(value, indent=2, ensure_ascii=False), flush=True)


@contextlib.contextmanager
def _connected(args: argparse.Namespace) -> Iterator[Client]:
    """A client of ``--endpoint``, once the coordinator accepted a connection."""
    _reachable(args.endpoint)
    with Client(args.endpoint, args.api_key, timeout=_CALL_TIMEOUT) as client:
        yield client


def _reachable(endpoint: str) -> None:
    """Return once the coordinator at ``endpoint`` accepts a connection; `CommandError` when
    it refuses or `REACH_TIMEOUT` passes (a coordinator not running, usually)."""
    import grpc

    target = config.parse_endpoint(endpoint)
    channel = (
        grpc.secure_channel(target.target, grpc.ssl_channel_credentials())
        if target.secure
        else grpc.insecure_channel(target.target)
    )
    settled = threading.Event()
    states: list[grpc.ChannelConnectivity] = []

    def watch(state: grpc.ChannelConnectivity) -> None:
        states.append(state)
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            settled.set()

    channel.subscribe(watch, try_to_connect=True)
    try:
        settled.wait(REACH_TIMEOUT)
    finally:
        channel.unsubscribe(watch)
        channel.close()
    if grpc.ChannelConnectivity.READY not in states:
        raise CommandError(
            f"cannot reach the coordinator at {endpoint}: is `agnt5 coordinator` running? "
            "(choose another with --endpoint or $AGNT5_COORDINATOR_ENDPOINT)"
        )


def _say_if_queued(client: Client, service: str, invocation_id: str, wait: float) -> None:
    """Say so at once when no worker of ``service`` is connected to run the invocation,
    which waits up to ``wait`` seconds for one."""
    known = {entry["name"]: entry for entry in client.list_services()}
    entry = known.get(service)
    if entry is not None and not entry["workers"]:
        _say(
            f"agnt5: no worker of service {service!r} is connected: invocation {invocation_id} "
            f"waits in its queue for one (up to {wait:g} s; --timeout)"
        )


def _report(client: Client, invocation_id: str, wait: float, *, whole: bool = False) -> int:
    """Wait up to ``wait`` seconds for the invocation, then print its output and return 0, or
    say why not and return 1; ``whole``: print the whole invocation, in any state, and return 0."""
    if wait:
        with contextlib.suppress(AgntError):  # failed, or still running: describe says which
            client.result(invocation_id, timeout=wait)
    view = client.describe(invocation_id)
    if whole:
        print_json(view)
        return 0
    if view["state"] == "SUCCEEDED":
        print_json(view["result"])
        return 0
    if view["state"] == "FAILED":
        error = view["error"]
        raise CommandError(f"{error['code']}: {error['message']}")
    waited = f" after {wait:g} s" if wait else ""
    raise CommandError(
        f"invocation {invocation_id} is still {view['state'].lower()}{waited}: see it later "
        f"with 'agnt5 result {invocation_id}'"
    )


def _newest(client: Client, args: argparse.Namespace) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``--limit`` invocations matching the filters, newest first, and whether the
    listing was read to its end or the limit (False: `_MOST_PAGES` pages ran out first)."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(_MOST_PAGES):
        page = client.list_invocations(
            args.service,
            args.function,
            states=args.state,
            limit=args.limit - len(rows),
            cursor=cursor,
        )
        rows += page.invocations
        cursor = page.next_cursor
        if cursor is None or len(rows) >= args.limit:
            return rows, True
    return rows, False


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
