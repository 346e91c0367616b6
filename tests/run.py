"""`make test`: the whole suite on SQLite, then again on PostgreSQL + Redis when configured.

``YEBISU_TEST_DATABASE_URL`` (postgresql+psycopg://…) and ``YEBISU_TEST_REDIS_URL`` select the
second run. Extra arguments are passed to pytest; the 25 slowest tests are listed after each
run. The last line printed sums both runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ARTIFACTS = Path("test-artifacts")


def _run(label: str, backend: str, extra: list[str]) -> tuple[int, dict[str, int]]:
    ARTIFACTS.mkdir(exist_ok=True)
    junit = ARTIFACTS / f"junit-{backend}.xml"
    env = {**os.environ, "YEBISU_TEST_BACKEND": backend}
    print(f"\n==== {label} ====", flush=True)
    # --durations=25: the slowest tests are listed at the end of each run (and in CI's output);
    # an argument given to `make test` / tests.run comes later and wins.
    cmd = [sys.executable, "-m", "pytest", f"--junitxml={junit}", "-p", "no:cacheprovider"]
    rc = subprocess.call([*cmd, "--durations=25", *extra], env=env)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if junit.exists():
        root = ET.parse(junit).getroot()
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skipped = int(suite.get("skipped", 0))
            counts["failed"] += failed
            counts["skipped"] += skipped
            counts["passed"] += tests - failed - skipped
    return rc, counts


def main() -> int:
    extra = sys.argv[1:]
    results = [("sqlite", *_run("SQLite (embedded default)", "sqlite", extra))]
    pg = os.environ.get("YEBISU_TEST_DATABASE_URL", "")
    if pg:
        label = "PostgreSQL" + (" + Redis" if os.environ.get("YEBISU_TEST_REDIS_URL") else "")
        results.append(("postgres", *_run(f"{label} run ({pg})", "postgres", extra)))
    elif os.environ.get("CI") == "true":
        print("CI=true but YEBISU_TEST_DATABASE_URL is not set: the PostgreSQL run is required")
        return 1
    worst = 0
    total = {"passed": 0, "failed": 0, "skipped": 0}
    print()
    for backend, rc, counts in results:
        print(
            f"{backend}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped (pytest exit {rc})"
        )
        for k in total:
            total[k] += counts[k]
        if rc not in (0,):
            worst = rc or 1
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return worst


if __name__ == "__main__":
    sys.exit(main())
