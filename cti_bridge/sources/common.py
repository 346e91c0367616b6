"""Small helpers shared by the parsers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from cti_bridge.events import CallEvent

__all__ = ["Clock", "FeedResult", "IdFactory", "new_call_id", "split_lines"]

_EOL = re.compile(rb"\r\n|\r|\n")

Clock = Callable[[], datetime]
IdFactory = Callable[[], str]


class FeedResult(NamedTuple):
    """What a byte-stream parser returns for one ``feed``.

    ``leftover`` must be passed back (prefixed to the next bytes) on the next call; ``reply``
    holds bytes the I/O client has to write back to the device (e.g. ND ACK/NAK).
    """

    events: list[CallEvent]
    leftover: bytes
    reply: bytes = b""


def new_call_id(prefix: str) -> str:
    """Return a fresh call id such as ``modem-3f2a…``."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def split_lines(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Split ``buffer`` on CR, LF or CRLF; return complete lines (empty ones kept) and leftover.

    A lone CR at the very end counts as a line end; the LF that may follow in the next chunk
    then yields an empty line, which callers ignore.
    """
    last = max(buffer.rfind(b"\r"), buffer.rfind(b"\n"))
    if last < 0:
        return [], buffer
    parts = _EOL.split(buffer[: last + 1])
    return parts[:-1], buffer[last + 1 :]
