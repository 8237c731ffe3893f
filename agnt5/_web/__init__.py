"""The web pages both HTTP surfaces serve: the API docs page (``/docs``) and the coordinator's
console. Everything they load ships in this package (``static/``, ``pages/``): no network.

Pages are rendered with the path they are served under (a root path included), and every page
and asset goes out with headers that keep it to itself: a content security policy allowing
only this origin's scripts, styles and requests, no framing, no referrer, no sniffing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import html
import re
from importlib import resources
from typing import NamedTuple

__all__ = ["PAGE_HEADERS", "Asset", "Reply", "asset", "asset_reply", "page", "page_reply"]

_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_ASSET_NAME = re.compile(r"[a-z][a-z0-9-]*\.(js|css|svg)")  # the whole name: no path, no dots
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

PAGE_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-resource-policy", "same-origin"),
)
"""Headers of every page and asset."""


@dataclasses.dataclass(frozen=True)
class Asset:
    """A static file: its bytes, content type and entity tag."""

    body: bytes
    content_type: str
    etag: str


@functools.cache
def asset(name: str) -> Asset | None:
    """The static file ``name`` (e.g. ``"console.js"``), or None when there is no such file."""
    if not _ASSET_NAME.fullmatch(name):
        return None
    try:
        body = (resources.files(__name__) / "static" / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    suffix = name[name.rindex(".") :]
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Asset(body, _CONTENT_TYPES[suffix], f'"{digest}"')


@functools.cache
def _template(name: str) -> str:
    return (resources.files(__name__) / "pages" / f"{name}.html").read_text("utf-8")


def page(name: str, **values: str) -> bytes:
    """The page ``name`` (``"docs"`` or ``"console"``) with its ``{{placeholders}}`` filled in
    by ``values``, HTML-escaped."""
    text = _PLACEHOLDER.sub(lambda match: html.escape(values[match.group(1)]), _template(name))
    return text.encode("utf-8")


class Reply(NamedTuple):
    """An HTTP answer, for either surface to send: status, headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def asset_reply(name: str, if_none_match: str | None) -> Reply | None:
    """The answer to a request for the static file ``name`` (304 when the client has it), or
    None when there is no such file."""
    found = asset(name)
    if found is None:
        return None
    headers = {
        **dict(PAGE_HEADERS),
        "content-type": found.content_type,
        "etag": found.etag,
        "cache-control": "no-cache",  # revalidated (a 304) each time: a new version shows at once
    }
    if if_none_match is not None and found.etag in if_none_match:
        return Reply(304, headers, b"")
    return Reply(200, headers, found.body)


def page_reply(body: bytes) -> Reply:
    """The answer carrying a rendered `page`."""
    headers = {
        **dict(PAGE_HEADERS),
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
    }
    return Reply(200, headers, body)
