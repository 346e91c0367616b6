"""A local asyncio TCP server that speaks AMI by replaying recorded Asterisk transcripts."""

from __future__ import annotations

import asyncio
import contextlib

from cti_bridge.sources.ami import AmiFramer, AmiMessage

from .conftest import transcript

BANNER = b"Asterisk Call Manager/9.0.0\r\n"


def events_of(name: str) -> bytes:
    """The recorded bytes after the banner and the recorded login response."""
    data = transcript(name)
    assert data.startswith(BANNER)
    _login, sep, rest = data[len(BANNER) :].partition(b"\r\n\r\n")
    assert sep
    return rest


class FakeAsterisk:
    """Accepts AMI clients; after a good Login replays ``script`` (bytes, one per login)."""

    def __init__(self, username: str = "yebisu", secret: str = "s3cret") -> None:
        self.username = username
        self.secret = secret
        self.scripts: list[bytes] = []
        self.actions: list[AmiMessage] = []
        self.logins = 0
        self.originate_error = ""
        self.originate_events = transcript("ami_originate_events.txt")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def drop(self) -> None:
        """Close every client connection (Asterisk restarted)."""
        for writer in list(self._writers):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self._writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        framer = AmiFramer()
        framer.banner = ""
        writer.write(BANNER)
        buffer = b""
        try:
            while data := await reader.read(65536):
                messages, buffer = framer.feed(buffer + data)
                for msg in messages:
                    self.actions.append(msg)
                    await self._action(msg, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, *pairs: tuple[str, str]) -> None:
        writer.write("".join(f"{k}: {v}\r\n" for k, v in pairs).encode() + b"\r\n")

    async def _action(self, msg: AmiMessage, writer: asyncio.StreamWriter) -> None:
        action = msg.get("action", "").lower()
        action_id = msg.get("actionid", "")
        if action == "login":
            if (msg.get("username"), msg.get("secret")) != (self.username, self.secret):
                self._reply(
                    writer,
                    ("Response", "Error"),
                    ("ActionID", action_id),
                    ("Message", "Authentication failed"),
                )
                await writer.drain()
                writer.close()
                return
            self.logins += 1
            self._reply(
                writer,
                ("Response", "Success"),
                ("ActionID", action_id),
                ("Message", "Authentication accepted"),
            )
            if self.scripts:
                writer.write(self.scripts.pop(0))
        elif action == "ping":
            self._reply(writer, ("Response", "Success"), ("ActionID", action_id), ("Ping", "Pong"))
        elif action == "originate":
            if self.originate_error:
                self._reply(
                    writer,
                    ("Response", "Error"),
                    ("ActionID", action_id),
                    ("Message", self.originate_error),
                )
            else:
                self._reply(
                    writer,
                    ("Response", "Success"),
                    ("ActionID", action_id),
                    ("Message", "Originate successfully queued"),
                )
                channel_id = msg.get("channelid", "")
                writer.write(self.originate_events.replace(b"{call_id}", channel_id.encode()))
        else:
            self._reply(
                writer,
                ("Response", "Error"),
                ("ActionID", action_id),
                ("Message", "Invalid/unknown command"),
            )
        await writer.drain()
