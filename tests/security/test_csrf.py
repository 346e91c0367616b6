"""CSRF, generated from ``app.routes``: every state-changing route refuses a request without the
session's token, or with another session's token (as form field or header), with 403, and
writes nothing. Only the signed caller-ID endpoints are exempt."""

from __future__ import annotations

from typing import Any

from app.security import CSRF_EXEMPT_PREFIXES
from tests.security.access_table import ACCESS, PUBLIC, SIGNED
from tests.security.conftest import Sessions, World, row_counts
from tests.security.walk import UNSAFE, cases

FORM = {"probe": "1", "name": "試験", "quantity": "1"}


def test_only_signed_routes_are_exempt(sec_app: Any) -> None:
    for case in cases(sec_app):
        exempt = case.path.startswith(CSRF_EXEMPT_PREFIXES)
        signed = ACCESS.get(case.key) == SIGNED
        assert exempt == signed, f"{case.method} {case.path}: CSRF-exempt {exempt}, signed {signed}"


def test_every_unsafe_route_refuses_a_missing_or_foreign_token(
    sec_app: Any, sessions: Sessions, sec_world: World
) -> None:
    problems: list[str] = []
    for case in cases(sec_app):
        rule = ACCESS.get(case.key)
        if case.method not in UNSAFE or rule is None or rule == SIGNED:
            continue
        # Whoever may use the route: the handler would run if the token were accepted.
        who, other = ("anonymous", "anonymous2") if rule == PUBLIC else ("admin", "operator2")
        foreign = sessions.token(other)
        client = sessions.use(who)
        own = sessions.tokens[who]
        assert foreign != own
        url = case.url(sec_world.params)
        before = row_counts(sec_world.url)
        attempts = {
            "no token": dict(data=FORM),
            "empty token": dict(data={**FORM, "csrf_token": ""}),
            "foreign token (form)": dict(data={**FORM, "csrf_token": foreign}),
            "foreign token (header)": dict(data=FORM, headers={"X-CSRF-Token": foreign}),
            "foreign token (htmx)": dict(
                data=FORM, headers={"X-CSRF-Token": foreign, "HX-Request": "true"}
            ),
        }
        for what, kw in attempts.items():
            r = client.request(case.method, url, follow_redirects=False, **kw)
            if r.status_code != 403:
                problems.append(f"{case.method} {url} with {what}: {r.status_code}, expected 403")
        after = row_counts(sec_world.url)
        changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
        if changed:
            problems.append(f"{case.method} {url}: rows written despite refusal {changed}")
        # The session itself still works with its own token afterwards.
        assert sessions.use(who) is client
    assert not problems, "\n".join(problems)
