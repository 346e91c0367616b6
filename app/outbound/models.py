"""Outbound work lists (filled in by the outbound issue)."""

from __future__ import annotations
