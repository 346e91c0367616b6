"""The input guard: every request's path, query string and form are checked once, at the edge.

Before anything else reads a request (the CSRF check, a route, a query), the guard

* refuses a body larger than ``inputs.max_body_bytes`` (``inputs.max_upload_bytes`` for a
  multipart upload), from its ``Content-Length`` when it gives one, else as soon as the bytes
  read pass the limit (the rest is never read): 413;
* parses a form (``application/x-www-form-urlencoded`` or ``multipart/form-data``) once and
  refuses more than ``inputs.max_fields`` fields or a text field longer than
  ``inputs.max_field_chars`` characters: 413;
* refuses a path, a query-string value or a form text field (names included) that is not valid
  UTF-8 or holds a control character other than tab, line feed and carriage return
  (C0 controls and DEL; a NUL would fail on PostgreSQL): 400. Uploaded files are not checked
  here (the CSV import checks their cells row by row).

A refusal is the Japanese error page of app/errors.py naming the field (for htmx a toast) and
one log line (status, method, path, field; never the value); nothing downstream runs, so
nothing is written. The checked form is kept on the scope: ``await request.form()`` anywhere
downstream returns it instead of parsing the body again with Starlette's own, smaller limits
(which would raise English 400s).
"""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import Any
from urllib.parse import unquote_to_bytes

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import InputsConfig

__all__ = [
    "FORM_SCOPE_KEY",
    "InputGuardMiddleware",
    "InputRefused",
    "ascii_int",
    "check_text",
    "form_scope",
    "form_text",
    "normalise",
    "read_form",
]

log = logging.getLogger("yebisu.inputs")

FORM_SCOPE_KEY = "yebisu.form"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The caller-ID webhook and the local simulator read signed bodies with their own limits.
EXEMPT_PREFIXES = ("/cti/",)
# Fields that carry a whole file: 取り込む of a master import posts the previewed CSV back.
# They may be as long as an upload (and may hold tabs and line breaks like any text).
BULK_TEXT_FIELDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"/masters/[a-z_]+/import/apply"), "text"),
)

# C0 controls other than TAB, LF and CR, and DEL.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

MSG_CONTROL = "入力に使えない文字（制御文字）が含まれています。"
MSG_ENCODING = "入力に使えない文字が含まれています（文字コードが UTF-8 ではありません）。"
MSG_BODY = "送信された内容が大きすぎます（{limit}まで）。"
MSG_FIELDS = "送信された項目が多すぎます（{limit:,}項目まで）。"
MSG_FIELD = "入力が長すぎます（1項目 {limit:,}文字まで）。"
MSG_MALFORMED = (
    "送信された内容を読み取れませんでした。画面を再読み込みしてからもう一度操作してください。"
)

_SPOOL_BYTES = 1024 * 1024


class InputRefused(Exception):
    """A request the guard answers itself: ``status`` 400 or 413, a Japanese ``message`` and
    the field it is about (its form or query name; empty when it is the path or the body)."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def check_text(raw: bytes, *, field: str = "") -> str:
    """``raw`` as text: refused (400) when it is not UTF-8 or holds a control character."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputRefused(400, MSG_ENCODING, field) from None
    if CONTROL.search(text):
        raise InputRefused(400, MSG_CONTROL, field)
    return text


def normalise(text: str) -> str:
    """Text typed by an operator as the app reads it: NFKC-normalised (full-width letters and
    digits → ASCII, half-width kana → full-width) and without surrounding blanks; ``""`` for
    ``None`` or an empty field."""
    return unicodedata.normalize("NFKC", text or "").strip()


def ascii_int(raw: object, *, max_digits: int = 9) -> int | None:
    """A non-negative number typed by a user (a query value, a form field): ASCII or
    full-width digits (NFKC-normalised, so a compatibility digit such as ``²`` reads as its
    digit; surrounding blanks ignored), at most ``max_digits`` of them; None for anything else
    (empty, a sign, other scripts' digits, a number too long for the database column).
    ``str.isdigit`` + ``int()`` alone would pass ``²`` to ``int()`` (ValueError) and a
    20-digit number to the database driver (OverflowError)."""
    if not isinstance(raw, str):
        return None
    text = normalise(raw)
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _size(limit: int) -> str:
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MB"
    if limit >= 1024:
        return f"{limit // 1024} KB"
    return f"{limit} バイト"


@dataclass
class _Limits:
    fields: int
    field_chars: int
    bulk_chars: int
    bulk_fields: frozenset[str] = frozenset()

    def chars_for(self, name: str) -> int:
        return self.bulk_chars if name in self.bulk_fields else self.field_chars


def _check_path(scope: Scope) -> None:
    raw: bytes | None = scope.get("raw_path")
    if raw is not None:
        check_text(unquote_to_bytes(raw.split(b"?", 1)[0]))
    elif CONTROL.search(scope.get("path", "")):
        raise InputRefused(400, MSG_CONTROL)


def _pairs(data: bytes, limits: _Limits) -> list[tuple[str, str | UploadFile]]:
    """``a=1&b=2`` (a query string or an urlencoded body), decoded and checked."""
    items: list[tuple[str, str | UploadFile]] = []
    for part in data.split(b"&"):
        if not part:
            continue
        if len(items) >= limits.fields:
            raise InputRefused(413, MSG_FIELDS.format(limit=limits.fields))
        raw_name, _, raw_value = part.partition(b"=")
        name = check_text(unquote_to_bytes(raw_name.replace(b"+", b" ")))
        limit = limits.chars_for(name)
        # Percent-encoded, a character takes at most 12 bytes: skip decoding what is plainly over.
        if len(raw_name) > 12 * limits.field_chars or len(raw_value) > 12 * limit:
            raise InputRefused(413, MSG_FIELD.format(limit=limit), name[:64])
        value = check_text(unquote_to_bytes(raw_value.replace(b"+", b" ")), field=name)
        if len(name) > limits.field_chars or len(value) > limit:
            raise InputRefused(413, MSG_FIELD.format(limit=limit), name[:64])
        items.append((name, value))
    return items


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    disposition: bytes = b""
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


async def _multipart(headers: Headers, body: bytes, limits: _Limits) -> FormData:
    """A multipart body as a form: text parts checked like urlencoded fields, files kept as
    uploads (not checked: their content is the route's to validate)."""
    _, params = parse_options_header(headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise InputRefused(400, MSG_MALFORMED)
    parts: list[_Part] = []
    current = _Part()
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        nonlocal current
        if len(parts) >= limits.fields:
            raise InputRefused(413, MSG_FIELDS.format(limit=limits.fields))
        current = _Part()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current.data.extend(data[start:end])
        if current.filename is None and len(current.data) > 4 * limits.chars_for(current.name):
            raise InputRefused(
                413, MSG_FIELD.format(limit=limits.chars_for(current.name)), current.name[:64]
            )

    def on_part_end() -> None:
        parts.append(current)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        name = bytes(header_name).lower()
        if name == b"content-disposition":
            current.disposition = bytes(header_value)
        current.headers.append((name, bytes(header_value)))
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(current.disposition)
        if b"name" not in options:
            raise InputRefused(400, MSG_MALFORMED)
        current.name = check_text(options[b"name"])
        if b"filename" in options:
            current.filename = check_text(options[b"filename"], field=current.name)

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except FormParserError:
        raise InputRefused(400, MSG_MALFORMED) from None

    items: list[tuple[str, str | UploadFile]] = []
    for part in parts:
        if part.filename is None:
            value = check_text(bytes(part.data), field=part.name)
            limit = limits.chars_for(part.name)
            if len(value) > limit:
                raise InputRefused(413, MSG_FIELD.format(limit=limit), part.name[:64])
            items.append((part.name, value))
            continue
        spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 (the form closes it)
        upload = UploadFile(
            file=spool,  # type: ignore[arg-type]
            size=0,
            filename=part.filename,
            headers=Headers(raw=part.headers),
        )
        await upload.write(bytes(part.data))
        await upload.seek(0)
        items.append((part.name, upload))
    return FormData(items)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when the client went away; refused as soon as it passes
    ``limit`` (what is left is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise InputRefused(413, MSG_BODY.format(limit=_size(limit)))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_form(request: Request) -> FormData:
    """The request's form as the input guard checked it (parsed once, within the guard's
    limits). Routes read their form through this, never ``request.form()``, whose own limits
    (1,000 fields, 1 MB a field) would refuse in English what the guard let through."""
    cached = request.scope.get(FORM_SCOPE_KEY)
    if isinstance(cached, FormData):
        return cached
    # No body was checked (not a body method, or the guard is not installed): nothing to parse
    # beyond what Starlette would.
    return await request.form()


def form_text(form: FormData, name: str) -> str:
    """The text of form field ``name`` as posted (not normalised); ``""`` when it is absent or
    an uploaded file."""
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


@contextlib.asynccontextmanager
async def form_scope(request: Request) -> AsyncIterator[FormData]:
    """``read_form`` for a block that reads uploaded files; the guard closes them after the
    response (or this block, for a form the guard did not parse)."""
    cached = isinstance(request.scope.get(FORM_SCOPE_KEY), FormData)
    form = await read_form(request)
    try:
        yield form
    finally:
        if not cached:
            await form.close()


class InputGuardMiddleware:
    """Check every request's path, query string and form before anything reads them (see the
    module docstring)."""

    def __init__(self, app: ASGIApp, config: InputsConfig | None = None) -> None:
        self.app = app
        self.config = config or InputsConfig()

    def _limits(self, path: str) -> _Limits:
        bulk = frozenset(name for pattern, name in BULK_TEXT_FIELDS if pattern.fullmatch(path))
        return _Limits(
            fields=self.config.max_fields,
            field_chars=self.config.max_field_chars,
            bulk_chars=max(self.config.max_field_chars, self.config.max_upload_bytes),
            bulk_fields=bulk,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limits = self._limits(path)
        form: FormData | None = None
        body: bytes | None = None
        try:
            _check_path(scope)
            _pairs(scope.get("query_string", b""), _Limits(limits.fields, limits.field_chars, 0))
            if scope["method"] in BODY_METHODS and not path.startswith(EXEMPT_PREFIXES):
                headers = Headers(scope=scope)
                content_type, _ = parse_options_header(headers.get("content-type", ""))
                limit = (
                    self.config.max_upload_bytes
                    if content_type == b"multipart/form-data"
                    else self.config.max_body_bytes
                )
                declared = headers.get("content-length")
                if declared is not None:
                    if not (declared.isascii() and declared.isdigit()):
                        raise InputRefused(400, MSG_MALFORMED)
                    if int(declared) > limit:
                        raise InputRefused(413, MSG_BODY.format(limit=_size(limit)))
                body = await _read_body(receive, limit)
                if body is None:
                    return  # the client is gone: nothing to answer
                if content_type == b"application/x-www-form-urlencoded":
                    form = FormData(_pairs(body, limits))
                elif content_type == b"multipart/form-data":
                    form = await _multipart(headers, body, limits)
        except InputRefused as refused:
            log.warning(
                "input refused: %s %s %s%s: %s",
                refused.status,
                scope["method"],
                path.encode("unicode_escape").decode("ascii")[:200],
                f" (field {refused.field!r})" if refused.field else "",
                refused.message,
            )
            await refusal(scope, refused)(scope, receive, send)
            return
        if body is None:
            await self.app(scope, receive, send)
            return
        if form is not None:
            scope[FORM_SCOPE_KEY] = form
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send)
        finally:
            if form is not None:
                await form.close()


def refusal(scope: Scope, refused: InputRefused) -> Response:
    """The Japanese answer to a refused request (app/errors.py): a page in the app's frame, for
    htmx a message in the toast area (the form stays as typed). It names the field and says that
    nothing was saved."""
    from app.errors import error_response

    field = f"（項目: {refused.field}）" if refused.field else ""
    message = (
        f"{refused.message}{field}何も保存していません。"
        "入力を直してから、もう一度操作してください。"
    )
    return error_response(Request(scope), refused.status, message=message)
