"""What every browser test does: log in through the form, ring a simulated call."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx


def log_in(page: Any, url: str, login: str, password: str = "password123") -> None:
    """Log in through the real form and wait for the home page with its presence widget."""
    page.goto(url + "/login")
    page.fill("#login", login)
    page.fill("#password", password)
    page.press("#password", "Enter")
    page.wait_for_url(url + "/")
    page.wait_for_selector("#presence select")


def simulate(url: str, secret: str, **data: Any) -> str:
    """A simulated CTI event through ``/cti/simulate`` (signed with the server secret)."""
    body = json.dumps(data).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    r = httpx.post(
        url + "/cti/simulate",
        content=body,
        headers={"X-Yebisu-Signature": sig, "Content-Type": "application/json"},
    )
    r.raise_for_status()
    return str(r.json()["call_id"])


def focused(page: Any) -> dict[str, str]:
    """The focused element: tag, name, id, text and value."""
    info: dict[str, str] = page.evaluate(
        "() => { const e = document.activeElement;"
        " return {tag: e.tagName, name: e.getAttribute('name') || '', id: e.id,"
        " text: e.textContent.trim(), value: e.value || ''}; }"
    )
    return info


def wait_focus(page: Any, element_id: str) -> None:
    """Wait until the element with this id has the focus (htmx focuses after a swap settles)."""
    page.wait_for_function(
        "id => document.activeElement && document.activeElement.id === id", arg=element_id
    )
