"""YEBISU web application."""

from starlette.convertors import IntegerConvertor, register_url_convertor


class BoundedIntConvertor(IntegerConvertor):
    """``{x:int}`` in a route path: at most 18 ASCII digits, so every matched id fits a 64-bit
    column (a longer number does not match the route: the Japanese 404 page, never an overflow
    in the database driver)."""

    regex = "[0-9]{1,18}"


# Registered when the package is first imported, before any route module compiles its paths.
register_url_convertor("int", BoundedIntConvertor())
