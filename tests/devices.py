"""Fake phone devices for end-to-end tests: the device side of a socat pty pair."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from tests.conftest import need
from tests.cti.conftest import PtyPair


class FakeModem:
    """The device side of the pty: answers AT commands with OK, sends what a modem sends."""

    def __init__(self, path: Path) -> None:
        self.port = serial.Serial(str(path), timeout=0.05)
        self.commands: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                buf += self.port.read(64)
            except (serial.SerialException, OSError):
                return
            while b"\r" in buf:
                line, _, buf = buf.partition(b"\r")
                text = line.strip().decode(errors="replace")
                if text.upper().startswith("AT"):
                    self.commands.append(text)
                    self.port.write(b"\r\nOK\r\n")

    def wait_initialised(self, within: float = 15) -> None:
        deadline = time.monotonic() + within
        while "AT+VCID=1" not in self.commands:
            assert time.monotonic() < deadline, f"modem not initialised: {self.commands}"
            time.sleep(0.05)

    def send(self, data: bytes) -> None:
        self.port.write(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.port.close()


@pytest.fixture
def modem_pty(tmp_path: Path) -> Iterator[PtyPair]:
    socat = shutil.which("socat")
    need(socat is not None, "socat")
    assert socat is not None
    pair = PtyPair(socat, tmp_path)
    pair.start()
    yield pair
    pair.stop()
