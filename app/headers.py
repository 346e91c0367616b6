"""Security headers on every HTTP response, and the websocket handshake's ``Origin`` check.

The pages run no inline script: every behaviour lives in ``/static/js``, so the
Content-Security-Policy allows scripts, styles and connections from this site only (and the
websocket of the same host). A page may not be framed by another site; pages carrying
customer data are not kept in any cache.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware", "content_security_policy", "origin_allowed"]

log = logging.getLogger("yebisu.headers")

# A Host header we are willing to repeat in the policy: a name or an IP literal, and a port.
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$"
)
_DEFAULT_PORT = {"http": 80, "https": 443, "ws": 80, "wss": 443}

BASE_POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
# Chrome shows a PDF through a built-in viewer that a strict policy (object-src) would block.
PDF_POLICY = "frame-ancestors 'none'"

STATIC_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)


@functools.lru_cache(maxsize=64)
def content_security_policy(host: str) -> str:
    """The page policy for a request to ``host`` (its Host header). CSP level 3 lets
    ``'self'`` match the same host's ws:/wss:, but older browsers need them spelled out."""
    connect = "connect-src 'self'"
    if _HOST_RE.match(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join((*BASE_POLICY, connect))


def _split_host(value: str) -> tuple[str, int | None]:
    """``name[:port]`` (or ``[v6]:port``) → lower-case name and the port if one was given."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        name += "]"
        port_s = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port_s = value.partition(":")
    return name, int(port_s) if port_s.isascii() and port_s.isdigit() else None


def origin_allowed(origin: str, host: str, allowed: Iterable[str] = ()) -> bool:
    """Whether a websocket handshake's ``Origin`` is this site: the same host and port as the
    request's ``Host`` (a Host without a port means the scheme's default port), or one of the
    configured ``allowed`` origins (a reverse proxy that rewrites Host)."""
    origin = origin.strip().lower().rstrip("/")
    if origin in {a.strip().lower().rstrip("/") for a in allowed}:
        return True
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or not host:
        return False
    origin_name, _ = _split_host(parts.netloc)
    host_name, host_port = _split_host(host)
    port = origin_port if origin_port is not None else _DEFAULT_PORT[parts.scheme]
    expected = host_port if host_port is not None else _DEFAULT_PORT[parts.scheme]
    return origin_name == host_name and port == expected


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response and refuses a websocket whose
    ``Origin`` is another site (close 4403, which the server sends as HTTP 403) before the
    application sees it. A client that sends no Origin (not a browser) is let through: the
    session cookie is still required."""

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed_origins = tuple(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            host = headers.get("host", "")
            if origin is not None and not origin_allowed(origin, host, self.allowed_origins):
                log.warning(
                    "websocket %s refused: Origin %r is not this site (Host %r)",
                    scope.get("path", ""),
                    origin,
                    host,
                )
                message = await receive()
                if message["type"] == "websocket.connect":
                    await send({"type": "websocket.close", "code": 4403, "reason": "origin"})
                return
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        host = Headers(scope=scope).get("host", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message), path=path, host=host)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_security_headers(headers: MutableHeaders, *, path: str, host: str) -> None:
    """Set the security headers on a response's headers (those it already has are kept)."""
    is_pdf = headers.get("content-type", "").startswith("application/pdf")
    headers.setdefault(
        "Content-Security-Policy", PDF_POLICY if is_pdf else content_security_policy(host)
    )
    for name, value in STATIC_HEADERS:
        headers.setdefault(name, value)
    if not path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
