"""The live board over its websocket, today's counts, status alerts, 本日の対応 and its PDF."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Callable
from typing import Any

from pypdf import PdfReader

from app.calls.models import Call
from app.config import Settings
from app.db import make_engine, make_sessionmaker, transaction
from app.responses.models import Response
from tests.conftest import csrf_of, login, run_async
from tests.factories import add_customer


def simulate(client: Any, settings: Settings, **data: Any) -> str:
    body = json.dumps(data).encode()
    sig = (
        "sha256=" + hmac.new(settings.server.secret_key.encode(), body, hashlib.sha256).hexdigest()
    )
    r = client.post("/cti/simulate", content=body, headers={"X-Yebisu-Signature": sig})
    assert r.status_code == 200, r.text
    return str(r.json()["call_id"])


class Board:
    """What a supervisor's board has received: the whole board first, then changed pieces."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen = ""

    def until(self, needle: str) -> str:
        """The next pushes until one contains ``needle``."""
        for _ in range(30):
            html = str(self.ws.receive_text())
            assert 'hx-swap-oob="true"' in html
            self.seen += html
            if needle in html:
                return html
        raise AssertionError(f"no board push with {needle!r}")

    def count(self, name: str) -> str:
        """The latest figure pushed for a count."""
        marker = f'id="count-{name}">'
        start = self.seen.rindex(marker) + len(marker)
        return self.seen[start : self.seen.index("<", start)]


def test_board_follows_a_call_live(
    client: Any, settings: Settings, make_staff: Callable[..., int], database_url: str
) -> None:
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611", code="C001")
    make_staff("koga", name="古賀 雅美", extension="201")
    make_staff("sv", name="鈴木 リーダー", role="supervisor")
    assert login(client, "koga").status_code == 303  # 古賀 is 受付可 on extension 201
    assert login(client, "sv").status_code == 303
    page = client.get("/board")
    assert page.status_code == 200
    assert "古賀 雅美" in page.text and "待機" in page.text
    with client.websocket_connect("/board/ws?topic=board") as ws:
        board = Board(ws)
        first = board.until("古賀 雅美")
        assert 'id="board-live"' in first and board.count("inbound") == "0"
        call_id = simulate(client, settings, action="ring", number="0952326611", extension="201")
        ringing = board.until("state-ringing")
        assert "佐賀 太郎" in ringing and board.count("inbound") == "1"
        simulate(client, settings, action="answer", call_id=call_id, extension="201")
        talking = board.until("state-on_call")
        assert board.count("answered") == "1"
        assert 'class="tick" data-since=' in talking  # the browser runs the duration
        assert 'id="board-live"' not in talking  # only what changed: a row, the counts
        simulate(client, settings, action="hangup", call_id=call_id)
        board.until("state-after_call")
        assert board.count("missed") == "0"
        # A call nobody takes: missed, waiting for a call-back.
        missed_id = simulate(client, settings, action="ring", number="0312345678")
        simulate(client, settings, action="hangup", call_id=missed_id)
        missed = board.until('id="count-missed">1<')
        assert "03-1234-5678" in missed and board.count("inbound") == "2"


def test_board_is_for_supervisors(client: Any, make_staff: Callable[..., int]) -> None:
    make_staff("koga", name="古賀 雅美")
    assert login(client, "koga").status_code == 303
    assert client.get("/board").status_code == 403
    from starlette.websockets import WebSocketDisconnect

    try:
        with client.websocket_connect("/board/ws?topic=board") as ws:
            ws.receive_text()
        raise AssertionError("an operator got the board")
    except WebSocketDisconnect as exc:
        assert exc.code == 4403


async def _seed_alerts(url: str, customer_id: int, staff_id: int) -> dt.datetime:
    """An overdue call-back and an overdue open claim 3 hours old, and a done response now;
    returns when the old ones happened."""
    engine = make_engine(url)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            s.add(
                Call(
                    source="simulator",
                    source_call_id="old-missed",
                    caller_e164="+81312345678",
                    state="missed",
                    callback_status="pending",
                    started_at=old,
                    targets=[],
                )
            )
            s.add(
                Response(
                    customer_id=customer_id,
                    staff_id=staff_id,
                    responded_at=old,
                    created_at=old,
                    category="クレーム",
                    status="open",
                )
            )
            s.add(
                Response(
                    customer_id=customer_id,
                    staff_id=staff_id,
                    responded_at=dt.datetime.now(dt.UTC),
                    category="問合せ",
                    content="送料について",
                    status="done",
                )
            )
    finally:
        await engine.dispose()
    return old


async def _audit_actions(url: str) -> list[str]:
    from sqlalchemy import select

    from app.audit.models import AuditLog
    from app.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            return list((await s.scalars(select(AuditLog.action))).all())
    finally:
        await engine.dispose()


def test_alerts_on_the_top_screen_and_todays_responses(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "北田 君子", "キタダ キミコ", "0952-26-8999", code="C002")
    koga = make_staff("koga", name="古賀 雅美")
    make_staff("sv", name="鈴木 リーダー", role="supervisor")
    assert login(client, "koga").status_code == 303
    home = client.get("/").text
    assert "期限を過ぎた項目はありません" in home
    old = run_async(_seed_alerts(database_url, cid, koga))
    # Between 00:00 and 03:00 JST the claim of 3 hours ago is on yesterday's list.
    old_day = old.astimezone(dt.timezone(dt.timedelta(hours=9))).strftime("%Y/%m/%d")
    home = client.get("/").text
    assert "コールバック【遅延】" in home and "03-1234-5678" in home
    assert "対応未完了【遅延】" in home and "北田 君子" in home
    today = client.get("/responses/today")
    assert today.status_code == 200
    assert "送料について" in today.text
    only_claims = client.get("/responses/today", params={"cat": "クレーム", "date": old_day}).text
    assert "送料について" not in only_claims and "未完了" in only_claims
    by_other = client.get("/responses/today", params={"staff": "999"}).text
    assert "該当する対応履歴はありません" in by_other
    assert client.get("/responses/today", params={"date": "2026/99/99"}).status_code == 400
    # The printable list of everyone's responses is for leaders: not an operator's.
    assert 'id="today-pdf"' not in today.text
    assert client.get("/responses/today.pdf").status_code == 403
    token = csrf_of(client)
    client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert login(client, "sv").status_code == 303
    assert 'id="today-pdf"' in client.get("/responses/today").text
    pdf = client.get("/responses/today.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "対応履歴一覧表" in text and "送料について" in text and "古賀" in text
    assert run_async(_audit_actions(database_url)).count("export_today_responses") == 1
    assert csrf_of(client)
