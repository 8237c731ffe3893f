"""The smallest agnt5 service: one function, invoked in-process through the full hot path.

    python examples/hello.py
"""

from __future__ import annotations

from agnt5 import function
from agnt5.testing import invoke


@function()
def hello(name: str) -> str:
    """Greet someone by name."""
    return f"Hello, {name}!"


if __name__ == "__main__":
    print(invoke(hello, {"name": "Ada"}))
