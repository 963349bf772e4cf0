#!/usr/bin/env bash
# Install what the tests need (system packages + venv), then lint and run the test-suite.
# A real Koji hub for the integration tier is used only when KOJI_KABI_IT_PROFILE is set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
