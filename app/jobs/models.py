"""Job runs (filled in by the subscriptions/jobs issue)."""

from __future__ import annotations
