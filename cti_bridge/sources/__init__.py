"""Call sources: a pure parser (bytes → events + leftover) and an I/O client per kind."""
