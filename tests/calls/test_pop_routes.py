"""The pop-up over a real websocket: simulator and webhook in, fragments out, take a call."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
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
        html = ws.receive_text()
        assert "佐賀 太郎" in html and "耳が遠い方なので大きい声でお願いします" in html
        call_id = re.search(r'id="pop-(\d+)"', html)
        assert call_id
        r = client.post(
            f"/calls/{call_id.group(1)}/take",
            headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)},
        )
        assert r.headers["HX-Redirect"] == f"/customers/{cid}?call={call_id.group(1)}"
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
        body, headers = signed("hook-secret", payload)
        with c.websocket_connect("/ws") as ws:
            r = c.post("/cti/webhook/cloud", content=body, headers=headers)
            assert r.status_code == 204
            assert "03-1234-5678" in ws.receive_text()
        bad_body, bad_headers = signed("wrong", payload)
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
        bad_json, bad_json_headers = signed("hook-secret", {"event": "ringing"})
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
    page = client.get("/calls?missed=1").text
    assert "06-6777-8888" in page and "コールバック済" in page
