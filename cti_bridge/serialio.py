"""Asynchronous access to a serial port (or pty) through pyserial.

Local ports are read with ``loop.add_reader`` on the file descriptor (no thread, lowest
latency); pyserial URLs without a descriptor (``socket://``, ``rfc2217://`` device servers) are
read by a small thread. A vanished device (USB unplugged, socat pty closed) makes
:meth:`SerialLink.read` raise :class:`ConnectionError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from typing import Any

import serial

__all__ = ["SerialLink"]

log = logging.getLogger(__name__)

try:
    import termios

    _TERMIOS_ERRORS: tuple[type[BaseException], ...] = (termios.error,)
except ImportError:  # pragma: no cover - Windows
    _TERMIOS_ERRORS = ()


def _describe(exc: BaseException) -> str:
    """A one-line reason; termios.error carries (errno, text) as its args."""
    args = exc.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return f"{args[1]} (errno {args[0]})"
    return str(exc) or type(exc).__name__


class SerialLink:
    """One open serial port with async ``read``/``write``."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
    ) -> None:
        self.port = port
        self._settings: dict[str, Any] = {
            "baudrate": baudrate,
            "bytesize": bytesize,
            "parity": parity,
            "stopbits": stopbits,
        }
        self._ser: serial.SerialBase | None = None
        self._buf = bytearray()
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    async def open(self) -> None:
        """Open the port; raises :class:`ConnectionError` when it cannot be opened."""
        self._loop = asyncio.get_running_loop()
        try:
            ser = await asyncio.to_thread(
                serial.serial_for_url, self.port, timeout=0, exclusive=True, **self._settings
            )
        except (serial.SerialException, OSError, ValueError, *_TERMIOS_ERRORS) as exc:
            # termios.error (not an OSError) comes from setting up a port, e.g. 7E1 on a pty
            # or a USB adapter that vanished between open() and tcsetattr().
            raise ConnectionError(f"cannot open {self.port}: {_describe(exc)}") from exc
        self._ser = ser
        fd: int | None = None
        with contextlib.suppress(AttributeError, OSError, ValueError):
            fd = ser.fileno()
        if isinstance(fd, int) and fd >= 0:
            self._fd = fd
            try:
                self._loop.add_reader(fd, self._on_readable)
            except (OSError, ValueError) as exc:
                self.close()
                raise ConnectionError(f"cannot read {self.port}: {_describe(exc)}") from exc
        else:
            ser.timeout = 0.2
            self._thread = threading.Thread(
                target=self._thread_reader, name=f"serial-{self.port}", daemon=True
            )
            self._thread.start()

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return  # spurious wake-up
        except OSError as exc:
            self._fail(ConnectionError(f"{self.port}: {exc.strerror or exc}"))
            return
        if not data:
            self._fail(ConnectionError(f"{self.port}: device disconnected"))
            return
        self._buf += data
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._fd = None
        if self._error is None:
            self._error = exc
        self._wake()

    def _thread_reader(self) -> None:
        ser = self._ser
        loop = self._loop
        assert ser is not None and loop is not None
        while not self._stop.is_set():
            try:
                data = ser.read(max(1, ser.in_waiting))
            except Exception as exc:  # pyserial raises many kinds on a lost device
                if not self._stop.is_set():
                    loop.call_soon_threadsafe(self._fail, ConnectionError(f"{self.port}: {exc}"))
                return
            if data:
                loop.call_soon_threadsafe(self._push, data)

    def _push(self, data: bytes) -> None:
        self._buf += data
        self._wake()

    async def read(self, wait_s: float | None = None) -> bytes:
        """Return the bytes received so far, waiting up to ``wait_s`` s (``b""`` on timeout)."""
        if not self._buf and self._error is None:
            # One future woken straight from the reader callback (no task per read, as
            # ``asyncio.wait_for`` would make): the bytes reach the parser one loop turn later.
            assert self._loop is not None
            waiter = self._waiter = self._loop.create_future()
            timer = None if wait_s is None else self._loop.call_later(wait_s, self._wake)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            return data
        if self._error is not None:
            raise self._error
        return b""

    def write(self, data: bytes) -> None:
        """Write ``data`` to the port; raises :class:`ConnectionError` when the port is gone."""
        if self._ser is None:
            raise ConnectionError(f"{self.port}: not open")
        if self._error is not None:
            raise ConnectionError(str(self._error))
        try:
            self._ser.write(data)
        except (serial.SerialException, OSError) as exc:
            raise ConnectionError(f"{self.port}: {exc}") from exc

    def close(self) -> None:
        """Close the port (idempotent)."""
        self._stop.set()
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._fd = None
        if self._ser is not None:
            with contextlib.suppress(Exception):
                self._ser.close()
            self._ser = None
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None
