#!/usr/bin/env bash
# The benchmark: builds (or reuses) a corpus of real RPMs in bench/corpus/, runs every
# scenario and baseline, prints a table with each target met or missed, and writes
# bench/RESULTS.md.
#
#   scripts/bench.sh [--scale small|medium|full] [--no-baselines]
#
# small: ~10 s, 100 kmods; full: the issue's CBS scale (3 kernels x 4 arches x 30,000
# symbols, 2,000 kmod builds; ~6 min to build the corpus once on 2 cores, ~3 min to run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
exec .venv/bin/python -m bench.run "$@"
