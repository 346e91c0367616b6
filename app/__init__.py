"""YEBISU web application."""
