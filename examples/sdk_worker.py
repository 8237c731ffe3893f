"""A standalone worker written for the AGNT5 Worker Runtime docs: the forms of @function the
docs use, served by Worker(runtime="standalone").

With a coordinator running (``agnt5 coordinator``, or set AGNT5_COORDINATOR_ENDPOINT):

    python examples/sdk_worker.py
    agnt5 invoke test-service add_numbers '{"a": 2, "b": 3}'
    curl localhost:8080/v1/services/test-service/functions/greet/invoke \\
      -H 'content-type: application/json' -d '{"name": "Ada"}'
"""

import asyncio
import logging

from agnt5 import Worker, function

logging.basicConfig(level=logging.INFO)
logger = logging.getLogger(__name__)


@function()
def greet(name: str) -> str:
    """Say hello."""
    return f"Hello, {name}!"


@function("add_numbers")
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@function()
def process_data(data: dict) -> dict:
    """Describe a dict: its keys and size."""
    logger.info("processing %d keys", len(data))
    return {"processed": True, "keys": sorted(data), "size": len(data)}


async def main():
    worker = Worker("test-service", runtime="standalone")
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
