"""Background jobs: arq functions that also run in-process when no Redis is configured."""
