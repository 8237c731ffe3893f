"""`@function` / `@workflow` forms, the registry, metadata and name clashes."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from agnt5 import (
    Backoff,
    NotFoundError,
    function,
    get_function_metadata,
    get_registered_functions,
    get_registered_workflows,
    workflow,
)
from agnt5.testing import invoke

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.hot_path]


def test_all_decorator_forms_register_and_keep_the_function_callable() -> None:
    @function()
    def hello(name: str) -> str:
        return f"Hello, {name}!"

    @function
    def bare(x: int) -> int:
        return x

    @function(name="renamed", description="Custom.", timeout=5, retries=1, backoff=0.5)
    def original() -> str:
        return "ok"

    assert hello("Ada") == "Hello, Ada!"
    assert bare(3) == 3
    assert original() == "ok"
    registered = get_registered_functions()
    assert {"hello", "bare", "renamed"} <= registered.keys()
    assert registered["hello"] is hello
    assert "original" not in registered
    config = get_function_metadata("renamed")["config"]
    assert config == {
        "timeout": 5.0,
        "retries": 1,
        "backoff": {"initial": 0.5, "multiplier": 2.0, "maximum": 60.0},
        "inline": False,
    }
    assert invoke("renamed") == "ok"


def test_workflows_are_registered_separately() -> None:
    @workflow
    def onboarding(user_id: str) -> dict:  # type: ignore[type-arg]
        return {"user": user_id}

    @workflow(name="billing")
    async def billing_run() -> None:
        return None

    @workflow()
    async def payroll() -> None:
        return None

    assert {"onboarding", "billing", "payroll"} <= get_registered_workflows().keys()
    assert "onboarding" not in get_registered_functions()
    assert get_function_metadata("onboarding")["kind"] == "workflow"
    assert get_function_metadata("billing")["is_async"] is True
    assert invoke(onboarding, "u1") == {"user": "u1"}


def test_the_name_may_come_first() -> None:
    @workflow("nightly", timeout=5)
    async def nightly_run(ctx) -> str:  # type: ignore[no-untyped-def]
        return "ok"

    @function("shout")
    def loud(text: str) -> str:
        return text.upper()

    assert get_function_metadata("nightly")["config"]["timeout"] == 5
    assert invoke("shout", "hi") == "HI" and loud("a") == "A"
    with pytest.raises(TypeError, match="got the name twice: 'a' and name='b'"):
        workflow("a", name="b")


def test_metadata_describes_the_function() -> None:
    @function()
    async def describe(ctx, city: str, days: int = 3) -> list[float]:  # type: ignore[no-untyped-def]
        """Forecast for a city.

        Longer text.
        """
        return []

    meta = get_function_metadata("describe")
    assert meta["name"] == "describe"
    assert meta["kind"] == "function"
    assert meta["description"] == "Forecast for a city.\n\nLonger text."
    assert meta["is_async"] is True
    assert meta["takes_context"] is True
    assert [p["name"] for p in meta["parameters"]] == ["city", "days"]
    assert meta["parameters"][0] == {
        "name": "city",
        "required": True,
        "keyword_only": False,
        "schema": {"type": "string"},
    }
    assert meta["input_schema"]["required"] == ["city"]
    assert meta["output_schema"]["type"] == "array"


def test_unknown_metadata_name() -> None:
    with pytest.raises(NotFoundError, match="'missing' not found"):
        get_function_metadata("missing")


def test_a_different_function_under_a_taken_name_is_refused() -> None:
    @function(name="taken")
    def first() -> int:
        return 1

    with pytest.raises(ValueError, match="name 'taken' is already registered by .*first"):

        @function(name="taken")
        def second() -> int:
            return 2

    assert invoke("taken") == 1


def test_importing_the_same_module_twice_is_fine(tmp_path: Path) -> None:
    module = tmp_path / "twice_module.py"
    module.write_text(
        textwrap.dedent(
            """
            from agnt5 import function

            @function()
            def twice(x: int) -> int:
                return x + 1
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        first = importlib.import_module("twice_module")
        importlib.reload(first)
        sys.modules.pop("twice_module")
        importlib.import_module("twice_module")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("twice_module", None)
    assert invoke("twice", 1) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": "5"}, "timeout must be a positive number"),
        ({"retries": -1}, "retries must be a non-negative integer"),
        ({"retries": True}, "retries must be a non-negative integer"),
        ({"backoff": -1}, "backoff must be a positive number"),
        ({"name": ""}, "needs a non-empty string name"),
    ],
)
def test_bad_options_are_clear_errors(options: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        function(**options)(lambda: None)


def test_unknown_option_and_non_callables() -> None:
    with pytest.raises(TypeError, match="unknown option.*retry"):
        function(retry=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="needs a callable"):
        function()(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot serve generator"):

        @function
        def gen() -> object:
            yield 1


def test_backoff_delays() -> None:
    backoff = Backoff(initial=0.5, multiplier=2, maximum=3)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3]
    with pytest.raises(ValueError, match="multiplier"):
        Backoff(multiplier=0.5)


def test_unresolvable_annotation_degrades_instead_of_crashing() -> None:
    @function()
    def vague(thing: NoSuchType) -> AlsoMissing:  # type: ignore[name-defined]  # noqa: F821
        return thing

    meta = get_function_metadata("vague")
    assert meta["parameters"][0]["schema"] == {}
    assert invoke(vague, {"thing": [1]}) == [1]
