#!/usr/bin/env bash
# Install what the tests need (system packages + venv), then lint and run the test-suite.
# A real Koji hub for the integration tier is used only when KOJI_KABI_IT_PROFILE is set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check koji_kabi koji_kabi_hub koji_kabi_builder cli_plugin tests bench
exec .venv/bin/python -m pytest "$@"
