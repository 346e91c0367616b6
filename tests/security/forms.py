"""The app's forms as a browser sees them: every page and partial a GET route answers is parsed
(html.parser) for its <form>s and htmx-posting elements, their target and their fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from starlette.routing import Match, Route

TEXT_TYPES = {"", "text", "search", "tel", "email", "number", "date", "time", "url", "hidden"}
TEXT_TYPES |= {"datetime-local", "month", "password", "textarea", "select"}


@dataclass
class Form:
    method: str  # GET or POST
    action: str  # the path it goes to (query dropped)
    query: str  # the action's own query string
    fields: dict[str, str] = field(default_factory=dict)  # text-like fields and their values
    files: list[str] = field(default_factory=list)
    multipart: bool = False
    found_on: str = ""


class _Parser(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self.stack: list[Form] = []
        self.select: str | None = None
        self.select_value: str | None = None
        self.textarea: str | None = None

    def _target(self, a: dict[str, str]) -> tuple[str, str] | None:
        for attr, method in (
            ("hx-post", "POST"),
            ("hx-put", "PUT"),
            ("hx-patch", "PATCH"),
            ("hx-delete", "DELETE"),
            ("hx-get", "GET"),
        ):
            if a.get(attr):
                return method, a[attr]
        return None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        current = self.stack[-1] if self.stack else None
        if tag == "form":
            target = self._target(a)
            if target is None:
                target = (a.get("method", "GET").upper() or "GET", a.get("action", "") or self.page)
            method, url = target
            full = urljoin("http://testserver" + self.page, url)
            parts = urlsplit(full)
            form = Form(
                method=method,
                action=parts.path,
                query=parts.query,
                multipart="multipart" in a.get("enctype", "")
                or "multipart" in a.get("hx-encoding", ""),
                found_on=self.page,
            )
            self.forms.append(form)
            self.stack.append(form)
            return
        target = self._target(a) if tag != "form" else None
        if target is not None and (target[0] != "GET" or current is not None):
            # An element that sends by itself: inside a form it sends that form's fields
            # (htmx includes the closest form), outside only its own name and value.
            full = urljoin("http://testserver" + self.page, target[1])
            parts = urlsplit(full)
            f = Form(target[0], parts.path, parts.query, found_on=self.page)
            if current is not None:
                f.fields = current.fields  # the same dict: fields after it count too
                f.files = current.files
                f.multipart = current.multipart
            if a.get("name"):
                f.fields.setdefault(a["name"], a.get("value", ""))
            self.forms.append(f)
        if current is None:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "").lower()
            if kind == "file":
                current.files.append(name)
            elif kind in ("checkbox", "radio"):
                if "checked" in a or name not in current.fields:
                    current.fields[name] = a.get("value", "on")
            elif kind in TEXT_TYPES:
                current.fields[name] = a.get("value", "")
        elif tag == "textarea" and name:
            self.textarea = name
            current.fields[name] = ""
        elif tag == "select" and name:
            self.select = name
            self.select_value = None
            current.fields[name] = ""
        elif tag == "option" and self.select is not None:
            value = a.get("value", "")
            if self.select_value is None or "selected" in a:
                self.select_value = value
                current.fields[self.select] = value
        elif tag == "button" and name:
            current.fields.setdefault(name, a.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self.textarea is not None and self.stack:
            self.stack[-1].fields[self.textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.stack:
            self.stack.pop()
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def forms_in(html: str, page: str) -> list[Form]:
    """The forms of one page or partial (``page``: its path, for relative actions)."""
    p = _Parser(page)
    p.feed(html)
    p.close()
    return p.forms


def route_of(app: Any, method: str, path: str) -> Route | None:
    """The route a request would reach (None: no route, or a mount)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in app.routes:
        if isinstance(route, Route):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route
    return None
