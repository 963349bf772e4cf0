#!/usr/bin/env bash
# The benchmark: builds (or reuses) a corpus of real RPMs in bench/corpus/, runs every
# scenario and baseline, prints a table with each target met or missed, and writes
# bench/RESULTS.md.
#
#   scripts/bench.sh [--scale small|medium|full] [--no-baselines]
#
# Scenario 3 (kabiCheck) runs on the benchmark's own real Koji hub + kojid
# (../shared/realkoji, /srv/realkoji-bench; left down at the end), the policy test on
# Koji's real kojihub module in-process; see README.md "Benchmark".
# small: 100 kmods, ~2 min; medium: 500 kmods; full: the issue's CBS scale (3 kernels x
# 4 arches x 30,000 symbols, 2,000 kmod builds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
exec .venv/bin/python -m bench.run "$@"
