#!/usr/bin/env bash
# Install what the tests need (system packages + venv), then lint and run the test-suite,
# including the real-Koji tier: as root on Debian, with ../shared/realkoji beside the clone
# (as in CI), the tests bring up Koji's real hub + kojid with koji-kabi installed, and stop
# them again at the end; elsewhere that tier is skipped, with one line saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check .
reason=$(.venv/bin/python -c 'from tests.integration.realkoji import unavailable
print(unavailable() or "")')
if [ -n "$reason" ]; then
    echo "test.sh: real-Koji tier skipped: $reason"
else
    # pytest stops Koji itself; this also covers a pytest that was killed
    trap '.venv/bin/python -m tests.integration.realkoji down >/dev/null 2>&1 || true' EXIT
fi
.venv/bin/python -m pytest "$@"
