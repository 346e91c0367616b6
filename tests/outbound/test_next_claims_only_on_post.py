"""次の顧客 claims a list entry only on POST: a GET of the same URL (a link, a reload, a
prefetch) leaves the list as it was and shows the lists with that list's 次の顧客 button; a
result saved with 登録して次の顧客 claims the next entry in its own POST."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from app.db import make_engine, make_sessionmaker, transaction
from app.outbound.models import OutboundEntry
from tests.conftest import csrf_of, login, run_async
from tests.factories import add_customer
from tests.outbound.test_click_to_dial import _backdate, _make_list


async def _entries(url: str) -> list[tuple[int, int, str, int | None, bool, int]]:
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            rows = (await s.scalars(select(OutboundEntry).order_by(OutboundEntry.id))).all()
            return [
                (e.id, e.customer_id, e.status, e.staff_id, e.locked_at is not None, e.attempts)
                for e in rows
            ]
    finally:
        await engine.dispose()


def test_get_next_claims_nothing_post_claims_one(
    client: Any, database_url: str, make_staff: Callable[..., int]
) -> None:
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-26-8999", code="C001")
    add_customer(database_url, "北田 君子", "キタダ キミコ", "0985-22-1111", code="C002")
    op = make_staff("koga", name="古賀 雅美", role="supervisor", extension="201")
    assert login(client, "koga").status_code == 303
    _backdate(database_url)
    _make_list(client, database_url, op)
    before = run_async(_entries(database_url))
    assert len(before) == 2 and not any(locked for *_, locked, _ in before)

    for headers in ({}, {"HX-Request": "true"}, {"Purpose": "prefetch"}):
        page = client.get("/outbound/lists/1/next", headers=headers, follow_redirects=False)
        assert page.status_code == 200, page.text
        assert "「次の顧客」を押すと" in page.text
        # the list's 次の顧客 button posts, and has the focus (Enter goes on)
        row = page.text.split('id="list-1"')[1].split("</tr>")[0]
        assert 'method="post" action="/outbound/lists/1/next"' in row
        assert "autofocus>次の顧客" in row
    assert run_async(_entries(database_url)) == before

    claimed = client.post(
        "/outbound/lists/1/next", data={"csrf_token": csrf_of(client)}, follow_redirects=False
    )
    assert claimed.status_code == 303
    after = run_async(_entries(database_url))
    [held] = [e for e in after if e[4]]
    assert held[3] == op
    assert claimed.headers["location"] == f"/customers/{held[1]}?outbound={held[0]}"

    # 登録して次の顧客: the result and the next claim in one POST; its redirect opens the next
    # customer's monitor directly (no GET that would claim).
    saved = client.post(
        f"/outbound/entries/{held[0]}/result",
        data={"csrf_token": csrf_of(client), "result": "connected", "next": "1"},
        headers={"HX-Request": "true"},
    )
    assert saved.status_code == 200, saved.text
    rows = {e[0]: e for e in run_async(_entries(database_url))}
    assert rows[held[0]][2] == "done" and not rows[held[0]][4]
    [other] = [e for e in rows.values() if e[0] != held[0]]
    assert other[4] and other[3] == op
    assert saved.headers["HX-Redirect"] == f"/customers/{other[1]}?outbound={other[0]}"

    # The last one: the lists page says none is left.
    saved = client.post(
        f"/outbound/entries/{other[0]}/result",
        data={"csrf_token": csrf_of(client), "result": "connected", "next": "1"},
        headers={"HX-Request": "true"},
    )
    assert saved.headers["HX-Redirect"] == "/outbound?empty=1"
    page = client.get("/outbound?empty=1")
    assert "このリストに今かけられる顧客は残っていません。" in page.text
    page = client.get("/outbound/lists/1/next")
    assert 'id="list-1"' in page.text and "disabled" in page.text.split('id="list-1"')[1]


def test_get_next_of_someone_elses_list_is_refused(
    client: Any, database_url: str, make_staff: Callable[..., int]
) -> None:
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-26-8999", code="C001")
    lead = make_staff("suzuki", role="supervisor")
    make_staff("koga", extension="201")
    assert login(client, "suzuki").status_code == 303
    _backdate(database_url)
    _make_list(client, database_url, lead)
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert login(client, "koga").status_code == 303
    before = run_async(_entries(database_url))
    assert client.get("/outbound/lists/1/next").status_code == 403
    r = client.post("/outbound/lists/1/next", data={"csrf_token": csrf_of(client)})
    assert r.status_code == 403
    assert run_async(_entries(database_url)) == before
