"""The SIP listener on a real UDP socket: sipp scenarios, peer filtering, retransmission."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from cti_bridge.config import SipSourceConfig
from cti_bridge.events import CallEnded, CallRinging
from cti_bridge.sources.sip import SipSource
from cti_bridge.supervisor import SourceState, Supervisor

from .conftest import SIPP_SCENARIOS, Sink, free_udp_port, transcript, until


@pytest.fixture
async def sip_source(sink: Sink) -> AsyncIterator[Callable[..., SipSource]]:
    """Start a supervised SIP listener on a free loopback port; returns a starter."""
    supervisors: list[Supervisor] = []

    def start(**kw: object) -> SipSource:
        cfg = SipSourceConfig(name="sip", line="main", host="127.0.0.1", port=0)
        for key, value in kw.items():
            setattr(cfg, key, value)
        source = SipSource(cfg)
        sup = Supervisor(source, sink)
        supervisors.append(sup)
        sup.start()
        return source

    yield start
    for sup in supervisors:
        await sup.stop()


async def wait_bound(source: SipSource) -> int:
    await until(lambda: source.bound is not None, what="SIP socket bound")
    assert source.bound is not None
    return source.bound[1]


async def run_sipp(sipp: str, scenario: str, port: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sipp,
        f"127.0.0.1:{port}",
        "-sf",
        str(SIPP_SCENARIOS / scenario),
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_udp_port()),
        "-timeout",
        "10s",
        "-timeout_error",
        "-nostdin",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"sipp {scenario} failed:\n{out.decode()[-2000:]}\n{err.decode()}"


@pytest.mark.sip
async def test_sipp_invite_with_p_asserted_identity(
    sipp_bin: str, sip_source: Callable[..., SipSource], sink: Sink
) -> None:
    source = sip_source(final_after_s=0.05)
    await run_sipp(sipp_bin, "invite_pai.xml", await wait_bound(source))
    ringing = await sink.next()
    assert isinstance(ringing, CallRinging)
    assert (ringing.extension, ringing.number, ringing.withheld) == ("201", "+81312345678", "")
    assert ringing.caller_name == "SUZUKI"
    assert sink.pending() == 0


@pytest.mark.sip
async def test_sipp_anonymous_invite_with_privacy_id(
    sipp_bin: str, sip_source: Callable[..., SipSource], sink: Sink
) -> None:
    source = sip_source(final_after_s=0)
    await run_sipp(sipp_bin, "invite_privacy.xml", await wait_bound(source))
    ringing = await sink.next()
    assert isinstance(ringing, CallRinging)
    assert (ringing.extension, ringing.number, ringing.withheld) == ("202", "", "private")


@pytest.mark.sip
async def test_sipp_cancel_before_answer(
    sipp_bin: str, sip_source: Callable[..., SipSource], sink: Sink
) -> None:
    source = sip_source(final_after_s=30)
    await run_sipp(sipp_bin, "cancel.xml", await wait_bound(source))
    ringing = await sink.next()
    ended = await sink.next()
    assert isinstance(ringing, CallRinging) and ringing.number == "+819012345678"
    assert isinstance(ended, CallEnded)
    assert (ended.call_id, ended.answered, ended.reason) == (ringing.call_id, False, "cancelled")


def _udp(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.setblocking(False)
    return s


async def _recv(s: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.sock_recv(s, 65535), 5)


async def test_only_allowed_peers_are_answered(
    sip_source: Callable[..., SipSource], sink: Sink
) -> None:
    source = sip_source(allowed_peers=["127.0.0.1"], final_after_s=0)
    port = await wait_bound(source)
    stranger, friend = _udp("127.0.0.2"), _udp("127.0.0.1")
    try:
        stranger.sendto(transcript("sip_invite_pai.txt"), ("127.0.0.1", port))
        friend.sendto(transcript("sip_options.txt"), ("127.0.0.1", port))
        reply = await _recv(friend)  # datagrams are handled in order: the INVITE came first
        assert reply.startswith(b"SIP/2.0 200 OK")
        with pytest.raises(BlockingIOError):
            stranger.recv(65535)
        assert sink.events == []
    finally:
        stranger.close()
        friend.close()


async def test_cidr_peers_and_final_retransmission_over_udp(
    sip_source: Callable[..., SipSource], sink: Sink
) -> None:
    source = sip_source(allowed_peers=["127.0.0.0/8"], final_after_s=0.01)
    port = await wait_bound(source)
    pbx = _udp("127.0.0.3")
    try:
        pbx.sendto(transcript("sip_invite_pai.txt"), ("127.0.0.1", port))
        got = [(await _recv(pbx)).split(b"\r\n", 1)[0] for _ in range(4)]
        # 100, 180, the final after final_after_s, and the final again (no ACK sent).
        assert got == [
            b"SIP/2.0 100 Trying",
            b"SIP/2.0 180 Ringing",
            b"SIP/2.0 486 Busy Here",
            b"SIP/2.0 486 Busy Here",
        ]
        ringing = await sink.next()
        assert isinstance(ringing, CallRinging)
    finally:
        pbx.close()


async def test_port_in_use_is_reported_and_retried(
    sip_source: Callable[..., SipSource], sink: Sink
) -> None:
    blocker = _udp("127.0.0.1")
    try:
        port = blocker.getsockname()[1]
        cfg = SipSourceConfig(
            name="sip2", host="127.0.0.1", port=port, reconnect_min_s=0.01, reconnect_max_s=0.02
        )
        sup = Supervisor(SipSource(cfg), sink)
        sup.start()
        await until(lambda: sup.status.failures >= 2)
        assert sup.state is not SourceState.UP
        await sup.stop()
    finally:
        blocker.close()
