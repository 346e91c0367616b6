"""Every browser test also checks that the Content-Security-Policy blocked nothing: a page
that logs a CSP violation (an inline handler, an inline style, eval) or an htmx expression
refused because eval is off fails the test that opened it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Runs in each page before its own scripts (injected by the browser, not subject to the CSP).
WATCH = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline")
    + " at " + e.sourceFile + ":" + e.lineNumber + " " + (e.sample || ""));
});
document.addEventListener("htmx:evalDisallowedError", function (e) {
  var what = (e.target && e.target.outerHTML) || "";
  console.error("CSP violation: htmx wanted eval for " + what.slice(0, 200));
});
"""


def csp_messages(messages: list[str]) -> list[str]:
    return [
        m
        for m in messages
        if "Content Security Policy" in m or "CSP violation" in m or "Refused to" in m
    ]


@pytest.fixture
def new_page(new_page: Callable[[], Any]) -> Iterator[Callable[[], Any]]:
    """The pages of the shared fixture, each watched for CSP violations."""
    seen: list[str] = []

    def make() -> Any:
        page = new_page()
        page.add_init_script(WATCH)
        page.on("console", lambda msg: seen.append(f"{page.url}: {msg.text}"))
        return page

    yield make
    violations = csp_messages(seen)
    assert violations == [], "the Content-Security-Policy blocked something:\n" + "\n".join(
        violations
    )
