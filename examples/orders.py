"""A durable workflow: the order of the README's Workflows section, with small stand-in functions.

Its children are functions of the same service, ``orders``, so one worker serves it all. With a
coordinator in the same process, run it once (the approval signal's wait times out after two
seconds and the workflow finishes unapproved):

    agnt5 dev examples/orders.py --invoke process_order '{"order_id": "o-1"}'

Against a coordinator you started yourself (``agnt5 coordinator``), with as many workers as you
like, approving by hand:

    agnt5 worker examples/orders.py
    agnt5 invoke orders process_order '{"order_id": "o-1", "approval_ms": 600000}' --submit
    agnt5 signal ID approved '{"approved": true}'
    agnt5 result ID
"""

from __future__ import annotations

from typing import Any

from agnt5 import function, workflow

SERVICE = "orders"


@function
def validate(order_id: str) -> dict[str, Any]:
    """Look the order up: its id, items and total."""
    return {"order_id": order_id, "items": ["book"], "total": 42.5}


@function
def reserve(order: dict[str, Any]) -> dict[str, Any]:
    """Hold the order's items in stock."""
    return {"reserved": order["items"]}


@function
def a() -> str:
    return "from the database"


@function
def b() -> str:
    return "from the API"


def charge_card(total: float) -> dict[str, Any]:
    """The side effect a crash must not repeat: it runs inside ctx.step."""
    return {"charged": total}


async def send_mail(order: dict[str, Any]) -> str:
    return f"mailed about {order['order_id']}"


@workflow
async def process_order(ctx, order_id: str, approval_ms: int = 2_000) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Validate, charge, reserve and mail, gather two lookups, wait a second, then wait for
    approval (up to ``approval_ms``)."""
    order = await ctx.task(SERVICE, "validate", input={"order_id": order_id})
    charge = await ctx.step("charge", charge_card, order["total"])
    reserved, mailed = await ctx.parallel(
        ctx.task(SERVICE, "reserve", input=order), ctx.step("mail", send_mail, order)
    )
    named = await ctx.gather(db=ctx.task(SERVICE, "a"), api=ctx.task(SERVICE, "b"))
    await ctx.sleep(1)
    approval = await ctx.signal("approved", timeout_ms=approval_ms, default={"approved": False})
    return {
        "status": "done",
        "approved": approval["approved"],
        "charge": charge,
        "reserved": reserved,
        "mailed": mailed,
        "named": named,
    }
