"""Log handlers for workers: text or JSON lines on stderr, also sent to OpenTelemetry logs when configured.

``install_opentelemetry_logging()`` with no ``logger`` installs on the SDK's own ``"agnt5"``
logger (which carries ``ctx.logger`` records); the root logger is touched only when passed
explicitly. To get your own module loggers' records out, install on them (or on a common
parent)::

    install_opentelemetry_logging(logger=logging.getLogger("my_app"), level=logging.INFO)

Records logged while an invocation runs get ``invocation_id``, ``service_name`` and
``function_name`` from the invocation scope (see `bind_invocation`) unless the caller passed them
in ``extra=``. A record is written once even if several loggers on its path have a handler
installed here: the one nearest the emitting logger wins.
"""

from __future__ import annotations

from agnt5.telemetry._logs import (
    bind_invocation,
    install_opentelemetry_logging,
    remove_opentelemetry_logging,
    unbind_invocation,
)

__all__ = [
    "bind_invocation",
    "install_opentelemetry_logging",
    "remove_opentelemetry_logging",
    "unbind_invocation",
]
