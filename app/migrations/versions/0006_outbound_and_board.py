"""outbound and board: last action per customer and kind (kept by triggers), work lists

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROUPS = ("any", "call", "dm", "order", "response")
# actions.kind → the dormant list's group (NULL: counted in "any" only).
GROUP_CASE = (
    "CASE {k} WHEN 'call_in' THEN 'call' WHEN 'call_out' THEN 'call' WHEN 'dm' THEN 'dm' "
    "WHEN 'order' THEN 'order' WHEN 'response' THEN 'response' END"
)
_GROUP_ROWS = " UNION ALL ".join(f"SELECT '{g}' AS grp" for g in GROUPS)

_UPSERT = """
INSERT INTO customer_last_actions AS l (customer_id, grp, last_at, action_id, kind, order_id)
SELECT NEW.customer_id, x.grp, NEW.occurred_at, NEW.id, NEW.kind, NEW.order_id
FROM (SELECT 'any' AS grp UNION ALL SELECT {group}) AS x
WHERE x.grp IS NOT NULL
ON CONFLICT (customer_id, grp) DO UPDATE SET
  last_at = excluded.last_at, action_id = excluded.action_id, kind = excluded.kind,
  order_id = excluded.order_id
WHERE l.action_id IS NULL OR excluded.last_at >= l.last_at
"""

_BACKFILL = f"""
INSERT INTO customer_last_actions (customer_id, grp, last_at, action_id, kind, order_id)
SELECT c.id, g.grp, COALESCE(a.occurred_at, c.created_at), a.id, COALESCE(a.kind, ''),
       a.order_id
FROM customers c
CROSS JOIN ({_GROUP_ROWS}) g
LEFT JOIN actions a ON a.id = (
  SELECT a2.id FROM actions a2
  WHERE a2.customer_id = c.id AND (g.grp = 'any' OR {GROUP_CASE.format(k="a2.kind")} = g.grp)
  ORDER BY a2.occurred_at DESC, a2.id DESC LIMIT 1)
"""

# PostgreSQL: one pass over actions (DISTINCT ON) instead of a look-up per customer and group.
_PG_BACKFILL = f"""
INSERT INTO customer_last_actions (customer_id, grp, last_at, action_id, kind, order_id)
SELECT c.id, g.grp, COALESCE(l.occurred_at, c.created_at), l.id, COALESCE(l.kind, ''),
       l.order_id
FROM customers c
CROSS JOIN ({_GROUP_ROWS}) g
LEFT JOIN (
  SELECT DISTINCT ON (customer_id, grp) customer_id, grp, occurred_at, id, kind, order_id
  FROM (
    SELECT customer_id, 'any' AS grp, occurred_at, id, kind, order_id FROM actions
    UNION ALL
    SELECT customer_id, {GROUP_CASE.format(k="kind")}, occurred_at, id, kind, order_id
    FROM actions
  ) x WHERE grp IS NOT NULL
  ORDER BY customer_id, grp, occurred_at DESC, id DESC
) l ON l.customer_id = c.id AND l.grp = g.grp
"""


def _sqlite_triggers() -> list[str]:
    upsert = _UPSERT.format(group=GROUP_CASE.format(k="NEW.kind"))
    # SQLite names the target table in the DO UPDATE's WHERE by its name, not an alias.
    upsert = upsert.replace("customer_last_actions AS l", "customer_last_actions").replace(
        "l.", "customer_last_actions."
    )
    return [
        f"CREATE TRIGGER trg_actions_last_insert AFTER INSERT ON actions BEGIN {upsert}; END",
        "CREATE TRIGGER trg_actions_last_update AFTER UPDATE OF customer_id, occurred_at, kind "
        f"ON actions BEGIN {upsert}; END",
        "CREATE TRIGGER trg_customers_last_insert AFTER INSERT ON customers BEGIN "
        "INSERT OR IGNORE INTO customer_last_actions "
        "(customer_id, grp, last_at, action_id, kind, order_id) "
        f"SELECT NEW.id, x.grp, NEW.created_at, NULL, '', NULL FROM ({_GROUP_ROWS}) AS x; END",
    ]


def _pg_triggers() -> list[str]:
    upsert = _UPSERT.format(group="g")
    return [
        "CREATE FUNCTION yebisu_actions_last() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"DECLARE g text := {GROUP_CASE.format(k='NEW.kind')}; "
        f"BEGIN {upsert}; RETURN NULL; END $$",
        "CREATE TRIGGER trg_actions_last AFTER INSERT OR UPDATE OF customer_id, occurred_at, "
        "kind ON actions FOR EACH ROW EXECUTE FUNCTION yebisu_actions_last()",
        "CREATE FUNCTION yebisu_customers_last() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO customer_last_actions (customer_id, grp, last_at, action_id, kind, order_id) "
        f"SELECT NEW.id, x.grp, NEW.created_at, NULL, '', NULL FROM ({_GROUP_ROWS}) AS x "
        "ON CONFLICT DO NOTHING; RETURN NULL; END $$",
        "CREATE TRIGGER trg_customers_last AFTER INSERT ON customers FOR EACH ROW "
        "EXECUTE FUNCTION yebisu_customers_last()",
    ]


def upgrade() -> None:
    op.create_table(
        "customer_last_actions",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("grp", sa.String(length=8), nullable=False),
        sa.Column("last_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_last_actions_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "grp", name=op.f("pk_customer_last_actions")),
    )
    op.create_index(
        "ix_customer_last_actions_grp_at",
        "customer_last_actions",
        ["grp", "last_at", "customer_id"],
        unique=False,
    )
    op.create_table(
        "outbound_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["staff.id"], name=op.f("fk_outbound_lists_created_by_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_lists")),
    )
    op.create_table(
        "outbound_list_operators",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["outbound_lists.id"],
            name=op.f("fk_outbound_list_operators_list_id_outbound_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_outbound_list_operators_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("list_id", "staff_id", name=op.f("pk_outbound_list_operators")),
    )
    op.create_table(
        "outbound_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("callback_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("locked_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_outbound_entries_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["outbound_lists.id"],
            name=op.f("fk_outbound_entries_list_id_outbound_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_outbound_entries_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_entries")),
        sa.UniqueConstraint("list_id", "customer_id", name=op.f("uq_outbound_entries_list_id")),
    )
    op.create_index(
        "ix_outbound_entries_list_status",
        "outbound_entries",
        ["list_id", "status", "position"],
        unique=False,
    )
    op.create_index(
        "ix_outbound_entries_status_callback",
        "outbound_entries",
        ["status", "callback_at"],
        unique=False,
    )
    op.create_index("ix_calls_started", "calls", ["started_at"], unique=False)
    op.create_index("ix_calls_callback", "calls", ["callback_status", "started_at"], unique=False)
    op.create_index(
        "ix_responses_status_created", "responses", ["status", "created_at"], unique=False
    )
    dialect = op.get_bind().dialect.name
    op.execute(_PG_BACKFILL if dialect == "postgresql" else _BACKFILL)
    if dialect == "postgresql":
        op.execute("ANALYZE customer_last_actions")  # the dormant list's plans need its stats
    for statement in _pg_triggers() if dialect == "postgresql" else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_customers_last ON customers")
        op.execute("DROP TRIGGER IF EXISTS trg_actions_last ON actions")
        op.execute("DROP FUNCTION IF EXISTS yebisu_customers_last()")
        op.execute("DROP FUNCTION IF EXISTS yebisu_actions_last()")
    else:
        for name in (
            "trg_customers_last_insert",
            "trg_actions_last_update",
            "trg_actions_last_insert",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_responses_status_created", table_name="responses")
    op.drop_index("ix_calls_callback", table_name="calls")
    op.drop_index("ix_calls_started", table_name="calls")
    op.drop_index("ix_outbound_entries_status_callback", table_name="outbound_entries")
    op.drop_index("ix_outbound_entries_list_status", table_name="outbound_entries")
    op.drop_table("outbound_entries")
    op.drop_table("outbound_list_operators")
    op.drop_table("outbound_lists")
    op.drop_index("ix_customer_last_actions_grp_at", table_name="customer_last_actions")
    op.drop_table("customer_last_actions")
