"""Import every feature's models so that metadata (and Alembic) sees all tables."""

import app.masters.models  # every master, including later ones
import app.outbound.models  # outbound work lists
import app.runs.models  # noqa: F401  (job runs)
from app.audit.models import AuditLog
from app.auth.models import Staff
from app.calls.models import Call, Presence
from app.customers.models import Customer, CustomerEmail, CustomerPhone, ShipTo
from app.masters.models import (
    Ad,
    Carrier,
    Companion,
    Product,
    ProductCategory,
    Rank,
    SetItem,
    ShippingRate,
)
from app.orders.models import Order, OrderLine
from app.responses.models import Action, Faq, Response
from app.subscriptions.models import Subscription, SubscriptionItem

__all__ = [
    "Action",
    "Ad",
    "AuditLog",
    "Call",
    "Carrier",
    "Companion",
    "Customer",
    "CustomerEmail",
    "CustomerPhone",
    "Faq",
    "Order",
    "OrderLine",
    "Presence",
    "Product",
    "ProductCategory",
    "Rank",
    "Response",
    "SetItem",
    "ShipTo",
    "ShippingRate",
    "Staff",
    "Subscription",
    "SubscriptionItem",
]
