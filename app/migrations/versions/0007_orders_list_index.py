"""orders: the 受注一覧 index carries its whole sort (受付日, entry time, id)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_orders_received", table_name="orders")
    op.create_index("ix_orders_received", "orders", ["received_on", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_orders_received", table_name="orders")
    op.create_index("ix_orders_received", "orders", ["received_on"])
