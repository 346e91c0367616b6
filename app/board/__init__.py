"""The supervisor's live board and today's responses."""
