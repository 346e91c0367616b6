"""Who may do what: every route of the app (method × path, as ``app.routes`` spells it) and the
roles that may use it. ``test_access.py`` walks ``app.routes`` and fails on a route missing here
(so every new route must be classified) and on an entry here that no route matches.

Sources: docs/*.md (each screen's roles), ../shared/spec/FEATURES.md (A1 roles, M5 カルテ, H5
本日の対応 for leaders), the menu (app/menu.py) and the ``requires_role`` decorators. Admin is
always allowed where staff are (``requires_role`` lets admin through everywhere).

Decisions where the code was wider than the role needs (fixed in the route):
- ``/dormant.csv`` — every dormant customer's name, code and address as a file: supervisors
  only (operators work the list on screen and through work lists; "operators do not export
  lists", as 受注一覧 CSV already says).
- ``/responses/today.pdf`` — every response of the day of every operator as a printable file:
  supervisors (leaders, FEATURES H5) only; operators keep the screen.
"""

from __future__ import annotations

from typing import Final

ROLES: Final = ("operator", "supervisor", "backoffice", "admin")

# A rule is one of these strings or a set of roles (admin included explicitly).
PUBLIC: Final = "public"  # anyone, logged in or not
SIGNED: Final = "signed"  # no log-in: a request signature decides (refused without it: 401)

Rule = str | frozenset[str]

ALL_STAFF: Final = frozenset(ROLES)


def only(*roles: str) -> frozenset[str]:
    """These roles and admin."""
    return frozenset({*roles, "admin"})


# Websocket routes reached with a query string that decides what they serve.
WS_VARIANTS: Final = {"/board/ws": ("?topic=board", "?topic=responses")}

ACCESS: Final[dict[tuple[str, str], Rule]] = {
    # --- log-in, home ----------------------------------------------------------------------
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): ALL_STAFF,
    # パスワード変更 (one's own; the only screen while an admin's reset is pending).
    ("GET", "/password"): ALL_STAFF,
    ("POST", "/password"): ALL_STAFF,
    # The page script's probe: 204 while logged in, 401 after.
    ("GET", "/session"): ALL_STAFF,
    ("GET", "/"): ALL_STAFF,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/reports"): only("supervisor", "backoffice"),
    ("GET", "/data"): only("backoffice"),
    ("GET", "/static"): PUBLIC,
    # --- calls and presence (C4–C6): whoever takes calls ----------------------------------
    ("GET", "/calls"): ALL_STAFF,
    ("GET", "/calls/{call_id:int}"): ALL_STAFF,
    ("POST", "/calls/{call_id:int}/response"): ALL_STAFF,
    ("POST", "/calls/take"): ALL_STAFF,
    ("POST", "/calls/choose"): ALL_STAFF,
    ("POST", "/calls/register"): ALL_STAFF,
    ("POST", "/calls/{call_id:int}/callback-done"): ALL_STAFF,
    ("GET", "/presence"): ALL_STAFF,
    ("POST", "/presence"): ALL_STAFF,
    ("WS", "/ws"): ALL_STAFF,
    # --- customer monitor (M1–M8): every staff role; カルテ is field-level (karte_roles) ------
    ("GET", "/customers"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/detail/rows/{kind}"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/history"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/ship-tos"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/ship-tos"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/ship-tos/new"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/ship-tos/{ship_to_id:int}/edit"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/ship-tos/{ship_to_id:int}"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/ship-tos/{ship_to_id:int}/retire"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/ship-tos/{ship_to_id:int}/restore"): ALL_STAFF,
    ("GET", "/postcode"): ALL_STAFF,
    ("GET", "/customers/new"): ALL_STAFF,
    ("POST", "/customers/new"): ALL_STAFF,
    # 名寄せ: the duplicate list and merges (docs/monitor.md).
    ("GET", "/customers/duplicates"): only("supervisor", "backoffice"),
    ("GET", "/customers/merge"): only("supervisor", "backoffice"),
    ("POST", "/customers/merge"): only("supervisor", "backoffice"),
    # --- 対応履歴, FAQ, AC履歴 (H1–H3) ------------------------------------------------------
    ("GET", "/customers/{customer_id:int}/responses"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/responses"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/responses/form"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/responses/faqs"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/actions"): ALL_STAFF,
    # --- orders (O1–O5) --------------------------------------------------------------------
    ("GET", "/customers/{customer_id:int}/order"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/order"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/order/form"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/order/confirm"): ALL_STAFF,
    ("GET", "/products/suggest"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/purchases"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/orders"): ALL_STAFF,
    ("GET", "/orders"): ALL_STAFF,
    # Every order of a period as a file: not operators.
    ("GET", "/orders.csv"): only("supervisor", "backoffice"),
    # --- subscriptions (S1–S5) -------------------------------------------------------------
    ("GET", "/customers/{customer_id:int}/subscriptions"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/subscriptions/new"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/subscriptions/new"): ALL_STAFF,
    ("GET", "/customers/{customer_id:int}/subscriptions/{subscription_id:int}"): ALL_STAFF,
    ("POST", "/customers/{customer_id:int}/subscriptions/{subscription_id:int}"): ALL_STAFF,
    # 定期発送一覧 and its run, CSV and PDF (docs/subscriptions.md).
    ("GET", "/subscriptions"): only("supervisor", "backoffice"),
    ("POST", "/subscriptions/run"): only("supervisor", "backoffice"),
    ("GET", "/subscriptions.csv"): only("supervisor", "backoffice"),
    ("GET", "/subscriptions.pdf"): only("supervisor", "backoffice"),
    # --- masters (X1–X11, docs/masters.md): back office and admin ---------------------------
    ("GET", "/masters"): only("backoffice"),
    ("POST", "/masters/ranks/recalculate"): only("backoffice"),
    ("GET", "/masters/{key}"): only("backoffice"),
    ("GET", "/masters/{key}/new"): only("backoffice"),
    ("POST", "/masters/{key}/new"): only("backoffice"),
    ("GET", "/masters/{key}/export"): only("backoffice"),
    ("GET", "/masters/{key}/import"): only("backoffice"),
    ("POST", "/masters/{key}/import"): only("backoffice"),
    ("POST", "/masters/{key}/import/apply"): only("backoffice"),
    ("GET", "/masters/{key}/{id:int}"): only("backoffice"),
    ("POST", "/masters/{key}/{id:int}"): only("backoffice"),
    ("POST", "/masters/{key}/{id:int}/active"): only("backoffice"),
    ("POST", "/masters/{key}/{id:int}/delete"): only("backoffice"),
    # --- jobs (docs/subscriptions.md) ------------------------------------------------------
    ("GET", "/jobs"): only("backoffice"),
    ("GET", "/jobs/{run_id:int}/progress"): only("backoffice", "supervisor"),
    ("POST", "/jobs/{run_id:int}/rerun"): only("backoffice"),
    # --- outbound (D1, D2; docs/outbound.md) -----------------------------------------------
    ("GET", "/dormant"): only("operator", "supervisor"),
    ("GET", "/dormant/count"): only("operator", "supervisor"),
    # Every dormant customer's name, code and address as a file: supervisors only.
    ("GET", "/dormant.csv"): only("supervisor"),
    ("GET", "/outbound"): only("operator", "supervisor"),
    ("POST", "/outbound/lists"): only("supervisor"),
    # 次の顧客 claims an entry: state changes only on POST (issue 14 item 6).
    # GET shows the lists with that list's 次の顧客 button; only the POST claims an entry.
    ("GET", "/outbound/lists/{list_id:int}/next"): only("operator", "supervisor"),
    ("POST", "/outbound/lists/{list_id:int}/next"): only("operator", "supervisor"),
    ("GET", "/outbound/entries/{entry_id:int}/banner"): only("operator", "supervisor"),
    ("POST", "/outbound/entries/{entry_id:int}/dial"): only("operator", "supervisor"),
    ("POST", "/outbound/entries/{entry_id:int}/result"): only("operator", "supervisor"),
    # --- board and 本日の対応 (D3, H5) -------------------------------------------------------
    ("GET", "/board"): only("supervisor"),
    ("WS", "/board/ws?topic=board"): only("supervisor"),
    ("GET", "/responses/today"): only("operator", "supervisor"),
    ("WS", "/board/ws?topic=responses"): only("operator", "supervisor"),
    # Everyone's responses of a day as a printable file: leaders only (FEATURES H5).
    ("GET", "/responses/today.pdf"): only("supervisor"),
    # --- caller-ID sources: signed, no log-in ----------------------------------------------
    ("POST", "/cti/webhook/{source}"): SIGNED,
    ("POST", "/cti/simulate"): SIGNED,
    # --- 管理 -------------------------------------------------------------------------------
    ("GET", "/admin"): only("admin"),
}
