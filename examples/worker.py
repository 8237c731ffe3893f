"""The worker that examples/Dockerfile runs (``CMD ["python", "worker.py"]``).

It serves through the coordinator named by ``AGNT5_COORDINATOR_ENDPOINT`` (default
``http://localhost:9091``) as the service ``AGNT5_SERVICE_NAME`` (default ``hello-service``),
and answers the container's HEALTHCHECK on port 8000: ``/health`` is 200 while its event loop
runs, ``/ready`` while it is registered with the coordinator. SIGTERM (``docker stop``) drains
in-flight work before it exits.
"""

from __future__ import annotations

import asyncio
import logging
import os

from agnt5 import Worker, function

logger = logging.getLogger(__name__)


@function()
def hello(name: str) -> str:
    """Greet someone by name."""
    return f"Hello, {name}!"


async def main() -> None:
    worker = Worker(service_name=os.environ.get("AGNT5_SERVICE_NAME") or "hello-service")
    logger.info("starting worker")
    await worker.run()
    logger.info("worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
