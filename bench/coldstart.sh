#!/usr/bin/env bash
# What linking the etcd client costs every runner start: `runner run` of a
# one-line function on a bbolt store, with the etcd client linked (the
# default build) and without it (-tags noetcd), in turns, each round, so
# that the ratio comes from one run on this noisy machine. Prints each
# build's median time per run over the rounds, and their ratio.
#
#   bench/coldstart.sh [-r ROUNDS] [-n RUNS]   (default 5 rounds of 100 runs)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 runs=100
while getopts "r:n:" o; do
  case $o in
    r) rounds=$OPTARG ;;
    n) runs=$OPTARG ;;
    *) echo "usage: bench/coldstart.sh [-r ROUNDS] [-n RUNS]" >&2; exit 2 ;;
  esac
done

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/runner-etcd" ./cmd/runner
go build -tags noetcd -o "$dir/runner-noetcd" ./cmd/runner
mkdir "$dir/pkg"
printf 'name: cold\nversion: 1.0.0\n' >"$dir/pkg/package.yaml"
printf 'export default { one() { return 1 } }\n' >"$dir/pkg/m.js"
export XDG_STATE_HOME=$dir/state MODRUN_STORE=$dir/s.db

# per_run BIN: milliseconds per `runner run`, over $runs runs.
per_run() {
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$runs"); do "$1" run "$dir/pkg" m.one >/dev/null; done
  end=$(date +%s%N)
  awk -v d=$((end - start)) -v n="$runs" 'BEGIN {printf "%.2f\n", d / 1e6 / n}'
}

for b in runner-etcd runner-noetcd; do "$dir/$b" run "$dir/pkg" m.one >/dev/null; done # warm the page cache
: >"$dir/etcd.txt"; : >"$dir/noetcd.txt"
for r in $(seq "$rounds"); do
  per_run "$dir/runner-etcd" >>"$dir/etcd.txt"
  per_run "$dir/runner-noetcd" >>"$dir/noetcd.txt"
  echo "round $r: etcd linked $(tail -1 "$dir/etcd.txt") ms, not linked $(tail -1 "$dir/noetcd.txt") ms a run" >&2
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
e=$(median "$dir/etcd.txt") n=$(median "$dir/noetcd.txt")
printf 'runner run on bbolt, median of %d rounds of %d: etcd linked %s ms, not linked %s ms, ratio %s\n' \
  "$rounds" "$runs" "$e" "$n" "$(awk -v e="$e" -v n="$n" 'BEGIN {printf "%.3f", e / n}')"
