"""A customer merged into another takes no new responses or ship-tos: they belong to the
survivor, and nothing is written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.customers.models import Customer, ShipTo
from app.customers.service import CustomerInputError
from app.customers.shiptos import ShipToForm, add_ship_to
from app.db import make_engine, make_sessionmaker, transaction
from app.responses.models import Response
from app.responses.service import ResponseInputError, save_response
from tests.conftest import run_async
from tests.factories import add_customer


def test_merged_customer_refuses_new_responses_and_ship_tos(database_url: str) -> None:
    survivor = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    merged = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "090-9999-9999")

    async def go() -> None:
        engine = make_engine(database_url)
        maker = make_sessionmaker(engine)
        try:
            async with transaction(maker) as s:
                c = await s.get(Customer, merged)
                assert c is not None
                c.merged_into_id = survivor
            async with transaction(maker) as s:
                with pytest.raises(ResponseInputError) as caught:
                    await save_response(
                        s,
                        customer_id=merged,
                        staff_id=None,  # type: ignore[arg-type]
                        responded_at="",
                        category="問合せ",
                        channel="電話",
                        content="住所変更の連絡",
                    )
                assert f"{survivor:08d} に統合されました" in caught.value.errors["response"]
                with pytest.raises(CustomerInputError) as refused:
                    await add_ship_to(
                        s,
                        customer_id=merged,
                        form=ShipToForm(name="佐賀 花子", prefecture="佐賀県", city="佐賀市"),
                        staff_id=None,
                    )
                assert "統合先で登録してください" in refused.value.errors["name"]
            async with transaction(maker) as s:
                assert await s.scalar(select(func.count()).select_from(Response)) == 0
                assert await s.scalar(select(func.count()).select_from(ShipTo)) == 0
        finally:
            await engine.dispose()

    run_async(go())
