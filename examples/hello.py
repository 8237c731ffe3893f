"""The smallest agnt5 service: one function, one standalone worker.

Run it with a coordinator in one process, and invoke it once:

    agnt5 dev examples/hello.py --invoke hello '{"name": "Ada"}'

or against a coordinator you started yourself (``agnt5 coordinator``):

    python examples/hello.py
    agnt5 invoke hello hello '{"name": "Ada"}'
"""

from __future__ import annotations

import asyncio

from agnt5 import Worker, function


@function()
def hello(name: str) -> str:
    """Greet someone by name."""
    return f"Hello, {name}!"


async def main() -> None:
    worker = Worker(service_name="hello")
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
