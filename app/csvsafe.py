"""CSV cells that are safe to open in a spreadsheet (CSV formula injection).

Every CSV export passes its text cells through :func:`safe_cell`; the master import undoes it
with :func:`unsafe_cell`, so an exported file imports back unchanged.
"""

from __future__ import annotations

__all__ = ["FORMULA_START", "safe_cell", "unsafe_cell"]

# What a spreadsheet may read as the start of a formula: = + - @, and a tab or carriage
# return (Excel skips them and reads what follows).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """``value`` with a leading ``'`` when a spreadsheet would run it as a formula."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def unsafe_cell(value: str) -> str:
    """The value :func:`safe_cell` was given (other text unchanged)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value
