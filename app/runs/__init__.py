"""Job runs: progress, failures and re-runs of background jobs (the functions live in ``jobs/``)."""
