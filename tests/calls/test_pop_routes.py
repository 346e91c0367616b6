"""The pop-up over a real websocket: simulator and webhook in, fragments out, take a call."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import csrf_of, login
from tests.factories import add_customer


def signed(secret: str, data: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(data).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Yebisu-Signature": sig, "Content-Type": "application/json"}


def webhook_signed(secret: str, data: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A cloud PBX's post: the signature covers the timestamp and the body."""
    body = json.dumps(data).encode()
    ts = str(int(time.time()))
    sig = (
        "sha256=" + hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    )
    return body, {
        "X-Yebisu-Signature": sig,
        "X-Yebisu-Timestamp": ts,
        "Content-Type": "application/json",
    }


def test_simulated_call_pops_on_the_operators_socket_and_take_opens_monitor(
    client: Any, settings: Settings, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(
        database_url,
        "佐賀 太郎",
        "サガ タロウ",
        "0952-32-6611",
        alert="耳が遠い方なので大きい声でお願いします",
    )
    make_staff("op", extension="201")
    login(client, "op")
    with client.websocket_connect("/ws") as ws:
        body, headers = signed(
            settings.server.secret_key,
            {"action": "ring", "number": "0952326611", "extension": "201"},
        )
        r = client.post("/cti/simulate", content=body, headers=headers)
        assert r.status_code == 200, r.text
        call_ref = r.json()["call_id"]
        html = ws.receive_text()
        assert "佐賀 太郎" in html and "耳が遠い方なので大きい声でお願いします" in html
        vals = re.search(r"class=\"primary take\" hx-post=\"/calls/take\" hx-vals='([^']+)'", html)
        assert vals is not None
        assert json.loads(vals.group(1)) == {"source": "simulator", "call": call_ref}
        r = client.post(
            "/calls/take",
            data={"source": "simulator", "call": call_ref},
            headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)},
        )
        assert r.headers["HX-Redirect"].startswith(f"/customers/{cid}?call=")
        r = client.post(
            "/calls/take",
            data={"source": "simulator", "call": "no-such-call"},
            headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)},
        )
        assert r.headers["HX-Reswap"] == "none"
        frames = [ws.receive_text() for _ in range(3)]  # presence, answered pop, the toast
        assert "通話中" in frames[0] and "この着信は見つかりません" in frames[2]
    monitor = client.get(f"/customers/{cid}")
    assert "佐賀 太郎" in monitor.text and "0952-32-6611" in monitor.text


def test_simulate_requires_the_server_signature(client: Any, settings: Settings) -> None:
    body, headers = signed("not-the-secret", {"action": "ring", "number": "0312345678"})
    assert client.post("/cti/simulate", content=body, headers=headers).status_code == 401


def test_webhook_signature_accepted_and_rejected(
    settings: Settings, tmp_path: Any, make_staff: Callable[..., int]
) -> None:
    settings.cti.sources = [
        *settings.cti.sources,
        __import__("cti_bridge.config", fromlist=["x"]).WebhookSourceConfig(
            name="cloud", secret="hook-secret"
        ),
    ]
    make_staff("op", extension="301")
    app = create_app(settings, var_dir=tmp_path / "var")
    with TestClient(app) as c:
        login(c, "op")
        payload = {"event": "ringing", "call_id": "w-1", "from": "0312345678", "extension": "301"}
        body, headers = webhook_signed("hook-secret", payload)
        with c.websocket_connect("/ws") as ws:
            r = c.post("/cti/webhook/cloud", content=body, headers=headers)
            assert r.status_code == 204
            assert "03-1234-5678" in ws.receive_text()
        bad_body, bad_headers = webhook_signed("wrong", payload)
        assert (
            c.post("/cti/webhook/cloud", content=bad_body, headers=bad_headers).status_code == 401
        )
        assert (
            c.post(
                "/cti/webhook/cloud", content=body, headers={"Content-Type": "application/json"}
            ).status_code
            == 401
        )
        assert c.post("/cti/webhook/nope", content=body, headers=headers).status_code == 404
        bad_json, bad_json_headers = webhook_signed("hook-secret", {"event": "ringing"})
        r = c.post("/cti/webhook/cloud", content=bad_json, headers=bad_json_headers)
        assert r.status_code == 400 and "call_id" in r.json()["error"]


def test_missed_calls_are_listed_for_call_back(
    client: Any, settings: Settings, make_staff: Callable[..., int]
) -> None:
    make_staff("op", extension="201")
    login(client, "op")
    with client.websocket_connect("/ws") as ws:
        body, headers = signed(
            settings.server.secret_key,
            {"action": "ring", "number": "0667778888", "extension": "201"},
        )
        call_id = client.post("/cti/simulate", content=body, headers=headers).json()["call_id"]
        ws.receive_text()
        body, headers = signed(settings.server.secret_key, {"action": "hangup", "call_id": call_id})
        client.post("/cti/simulate", content=body, headers=headers)
        assert 'hx-swap-oob="delete"' in ws.receive_text()
    # The closing fragment goes out just before the event's commit: wait for the commit.
    for _ in range(100):
        page = client.get("/calls?missed=1").text
        if "06-6777-8888" in page:
            break
        time.sleep(0.02)
    assert "06-6777-8888" in page and "コールバック済" in page


def test_take_waits_for_a_call_still_being_written(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    import asyncio
    import threading

    from sqlalchemy import select

    from app.calls.models import Call
    from app.db import make_engine, make_sessionmaker, transaction
    from tests.conftest import run_async

    op = make_staff("op", extension="201")
    login(client, "op")
    written = threading.Event()

    async def write_slowly() -> None:
        engine = make_engine(database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                s.add(
                    Call(
                        source="pbx",
                        source_call_id="late-1",
                        line="main",
                        state="ringing",
                        targets=[op],
                    )
                )
                await s.flush()
                written.set()
                await asyncio.sleep(0.3)  # the pop is out; the row is not committed yet
        finally:
            await engine.dispose()

    writer = threading.Thread(target=lambda: asyncio.run(write_slowly()))
    writer.start()
    assert written.wait(10)
    r = client.post(
        "/calls/take",
        data={"source": "pbx", "call": "late-1"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)},
    )
    writer.join(10)
    assert r.status_code == 200

    async def owner() -> int | None:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as s:
                return await s.scalar(select(Call.staff_id).where(Call.source_call_id == "late-1"))
        finally:
            await engine.dispose()

    assert run_async(owner()) == op


def test_ended_call_leaves_a_response_to_complete(
    client: Any, settings: Settings, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    make_staff("op", extension="201")
    login(client, "op")

    def sim(**data: Any) -> str:
        body, headers = signed(settings.server.secret_key, data)
        r = client.post("/cti/simulate", content=body, headers=headers)
        assert r.status_code == 200
        return str(r.json()["call_id"])

    with client.websocket_connect("/ws") as ws:
        ref = sim(action="ring", number="0312345678", extension="201")
        ws.receive_text()
        token = csrf_of(client)
        client.post(
            "/calls/take",
            data={"source": "simulator", "call": ref},
            headers={"HX-Request": "true", "X-CSRF-Token": token},
        )
        sim(action="hangup", call_id=ref)
        frames = [ws.receive_text() for _ in range(4)]
    ended = next(f for f in frames if "対応履歴を入力" in f)
    m = re.search(r'href="/calls/(\d+)"', ended)
    assert m
    page = client.get(f"/calls/{m.group(1)}").text
    assert "未入力" in page and "北田 君子" in page
    token = csrf_of(client)
    r = client.post(
        f"/calls/{m.group(1)}/response",
        data={
            "csrf_token": token,
            "category": "問合せ",
            "channel": "電話",
            "content": "",
            "answer": "",
        },
    )
    assert r.status_code == 400 and "内容を入力してください。" in r.text
    r = client.post(
        f"/calls/{m.group(1)}/response",
        data={
            "csrf_token": token,
            "category": "クレーム",
            "channel": "電話",
            "content": "説明書が入っていなかった",
            "answer": "郵送を手配",
        },
    )
    assert "対応履歴を保存しました。" in r.text and "未入力" not in r.text
    monitor = client.get(f"/customers/{cid}/responses").text
    assert "説明書が入っていなかった" in monitor and "郵送を手配" in monitor


def test_a_call_answered_elsewhere_reads_so_in_the_calls_list(
    client: Any, make_staff: Callable[..., int]
) -> None:
    """SIP's "Call completed elsewhere": 着信一覧 says 他で応答, not 終了 or 不在."""
    from cti_bridge.events import ANSWERED_ELSEWHERE, CallEnded, CallRinging

    make_staff("sv", role="supervisor")
    login(client, "sv")
    cti = client.app.state.cti
    ring = CallRinging(source="sip", call_id="x1", line="main", number="+81667778888")
    client.portal.call(cti.handle, ring)
    end = CallEnded(
        source="sip", call_id="x1", line="main", answered=True, reason=ANSWERED_ELSEWHERE
    )
    client.portal.call(cti.handle, end)
    page = client.get("/calls").text
    row = next(r for r in page.split("<tr") if "06-6777-8888" in r)
    assert "他で応答" in row and "不在" not in row and "終了" not in row


def test_simulate_refuses_a_body_that_is_not_a_json_object(client: Any, settings: Settings) -> None:
    """`yebisu simulate-call`'s endpoint: signed junk is a clean 400, never a 500."""
    secret = settings.server.secret_key
    for body in (b"not json", b"[1, 2]", b"[" * 30000 + b"]" * 30000):
        sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        r = client.post("/cti/simulate", content=body, headers={"X-Yebisu-Signature": sig})
        assert r.status_code == 400, body[:20]
    big = b"{" + b" " * (70 * 1024) + b"}"
    r = client.post("/cti/simulate", content=big, headers={"X-Yebisu-Signature": "sha256=0"})
    assert r.status_code == 413
