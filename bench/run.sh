#!/usr/bin/env bash
# Runs modrun's performance comparisons side by side and prints a markdown
# table (see README.md). Usage: bench/run.sh [-n RUNS] [-c CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/compare "$@"
