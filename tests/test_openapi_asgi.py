"""The ASGI app's /openapi.json and /docs: a valid OpenAPI 3.1 document with one operation per
function (schemas from the function's), the docs page and its files, a root path, and off."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from agnt5 import Worker, function, workflow
from agnt5.errors import InvalidArgumentError

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.asyncio]


class Size(enum.Enum):
    SMALL = "small"
    LARGE = "large"


@dataclasses.dataclass
class Item:
    name: str
    size: Size
    price: float = 0.0


def register() -> None:
    @function
    def total(items: list[Item], discount: float | None = None) -> float:
        """Sum the prices.

        The discount, when given, is taken off the sum."""
        return sum(item.price for item in items) - (discount or 0.0)

    @function(name="greet.v2", timeout=5)
    async def greet(name: str) -> dict[str, str]:
        return {"greeting": f"hello {name}"}

    @function
    def refuse() -> None:
        raise InvalidArgumentError("no")

    @workflow
    async def onboard(user: str) -> str:
        return user


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    register()
    app = Worker("shop", runtime="asgi", service_version="2.1.0")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        yield client


def schema_at(document: dict[str, Any], schema: dict[str, Any]) -> OAS31Validator:
    """A validator of ``schema`` whose references resolve in ``document``'s components."""
    return OAS31Validator({**schema, "components": document["components"]})


async def test_the_document_is_valid_openapi_with_an_operation_per_function(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    validate(document)  # raises on an invalid document
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {
        "title": "shop",
        "version": "2.1.0",
        "description": "The functions of service shop, served by agnt5.",
    }
    invoke_paths = sorted(path for path in document["paths"] if path.startswith("/invoke/"))
    assert invoke_paths == [
        "/invoke/greet.v2",
        "/invoke/onboard",
        "/invoke/refuse",
        "/invoke/total",
    ]
    total = document["paths"]["/invoke/total"]["post"]
    assert total["operationId"] == "invoke_total"
    assert total["summary"] == "Sum the prices."
    assert total["description"] == "The discount, when given, is taken off the sum."
    assert document["paths"]["/invoke/greet.v2"]["post"]["description"] == "Times out after 5 s."
    assert document["paths"]["/invoke/onboard"]["post"]["tags"] == ["workflow"]
    assert {"409", "422"} <= set(document["paths"]["/invoke/onboard"]["post"]["responses"])


async def test_request_and_response_schemas_are_the_functions(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    total = document["paths"]["/invoke/total"]["post"]
    body = total["requestBody"]["content"]["application/json"]["schema"]
    assert total["requestBody"]["required"] is True
    assert body["required"] == ["items"]
    assert body["properties"]["items"]["items"] == {"$ref": "#/components/schemas/total.input.Item"}
    item = document["components"]["schemas"]["total.input.Item"]
    assert item["properties"]["size"] == {"$ref": "#/components/schemas/total.input.Size"}
    assert document["components"]["schemas"]["total.input.Size"]["enum"] == ["small", "large"]
    request = schema_at(document, body)
    assert request.is_valid({"items": [{"name": "a", "size": "small", "price": 2}]})
    assert not request.is_valid({"items": [{"name": "a", "size": "medium"}]})
    assert not request.is_valid({})
    result = schema_at(document, total["responses"]["200"]["content"]["application/json"]["schema"])
    answer = await client.post(
        "/invoke/total", json={"items": [{"name": "a", "size": "small", "price": 2}]}
    )
    assert answer.status_code == 200
    assert result.is_valid(answer.json()), answer.json()
    no_input = document["paths"]["/invoke/refuse"]["post"]["requestBody"]
    assert no_input["required"] is False


async def test_errors_are_documented_with_the_error_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    responses = document["paths"]["/invoke/refuse"]["post"]["responses"]
    assert {"400", "404", "413", "415", "429", "500", "503", "504"} <= set(responses)
    error = responses["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    refused = await client.post("/invoke/refuse", json={})
    assert refused.status_code == 400
    assert schema_at(document, error).is_valid(refused.json()), refused.json()
    unsupported = await client.post("/invoke/refuse", content=b"{}")
    assert unsupported.status_code == 415
    assert schema_at(document, responses["415"]["content"]["application/json"]["schema"]).is_valid(
        unsupported.json()
    )


async def test_the_docs_page_and_its_files(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert '<script type="module" src="/docs/static/docs.js">' in page.text
    assert "<title>shop · API docs</title>" in page.text
    script = await client.get("/docs/static/docs.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    again = await client.get(
        "/docs/static/docs.js", headers={"if-none-match": script.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    head = await client.head("/docs/static/agnt5.css")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0
    for missing in ("/docs/static/nothing.js", "/docs/static/..%2Fpages%2Fdocs.html"):
        assert (await client.get(missing)).status_code == 404
    refused = await client.post("/docs", json={})
    assert refused.status_code == 405 and refused.headers["allow"] == "GET"


async def test_a_root_path_is_in_the_document_and_the_page() -> None:
    register()
    app = Worker("shop", runtime="asgi")
    transport = httpx.ASGITransport(app=app, root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        document = (await client.get("/openapi.json")).json()
        page = (await client.get("/docs")).text
    validate(document)
    assert document["servers"] == [{"url": "/api"}]
    assert 'data-root="/api"' in page
    assert 'src="/api/docs/static/docs.js"' in page


@pytest.mark.parametrize("how", ["argument", "environment"])
async def test_docs_can_be_switched_off(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    register()
    if how == "environment":
        monkeypatch.setenv("AGNT5_DOCS", "0")
        app = Worker("shop", runtime="asgi")
    else:
        app = Worker("shop", runtime="asgi", docs=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        for path in ("/openapi.json", "/docs", "/docs/static/docs.js"):
            assert (await client.get(path)).status_code == 404
        assert (await client.get("/functions")).status_code == 200
