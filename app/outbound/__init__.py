"""Outbound: dormant-customer lists (長期放置顧客一覧), work lists and click-to-dial."""
