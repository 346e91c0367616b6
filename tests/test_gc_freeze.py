"""The serving process keeps full garbage collections short (they stall every pop)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_serving_app_freezes_its_start_up_objects(
    settings: Settings, tmp_path: Path, restore_gc: None
) -> None:
    gc.unfreeze()
    young, middle, _old = gc.get_threshold()
    app = create_app(settings, var_dir=tmp_path / "var", freeze_gc=True)
    with TestClient(app, base_url="http://testserver") as c:
        assert c.get("/healthz").status_code == 200
        # start-up objects are out of the collector's reach; full collections are rarer
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == (young, middle, 100)


def test_apps_built_by_tests_leave_the_collector_alone(
    settings: Settings, tmp_path: Path, restore_gc: None
) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    with TestClient(create_app(settings, var_dir=tmp_path / "var"), base_url="http://testserver"):
        assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
