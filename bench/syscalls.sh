#!/usr/bin/env bash
# Counts what a served request costs the server in system calls, context
# switches and CPU, isolated (the default) and in-process, with perf's
# syscall tracepoints (they do not slow the processes as strace does).
# Given several runner binaries, it runs them in turns, each round, so
# that a change can be compared with the binary before it on this noisy
# machine. Needs perf (Debian: linux-perf) and, to read tracepoints, root.
#
#   bench/syscalls.sh [-r ROUNDS] [-n RUNS] [RUNNER ...]   (default: this tree's runner)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=1 runs=20000
while getopts "r:n:" o; do
  case $o in
    r) rounds=$OPTARG ;;
    n) runs=$OPTARG ;;
    *) echo "usage: bench/syscalls.sh [-r ROUNDS] [-n RUNS] [RUNNER ...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
command -v perf >/dev/null || { echo "bench/syscalls.sh needs perf (apt-get install linux-perf)" >&2; exit 1; }

dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
for p in tokenserver httpload; do go build -o "$dir/$p" "./bench/$p"; done
if [ $# -eq 0 ]; then
  go build -o "$dir/runner" ./cmd/runner
  set -- "$dir/runner"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tport=$(free_port)
"$dir/tokenserver" -addr "127.0.0.1:$tport" &
token=bench-token-0123456789
tick=$(getconf CLK_TCK)

# cpu PIDS: user + system ticks of the processes.
cpu() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }

# measure RUNNER ISOLATE: one line of per-request costs.
measure() {
  local runner=$1 isolate=$2 port pid pids
  port=$(free_port)
  MODRUN_TOKEN=$token "$runner" serve bench/refresh --listen "127.0.0.1:$port" --isolate="$isolate" \
    --input "baseUrl=http://127.0.0.1:$tport" --store "$dir/s-$RANDOM.db" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  local url="http://127.0.0.1:$port/v1/run/bench-refresh/auth.refresh"
  "$dir/httpload" -url "$url" -token $token -n 3000 -c 64 >/dev/null # warm up; workers started
  pids=("$pid" $(pgrep -P "$pid" || true))
  local before; before=$(cpu "${pids[@]}")
  perf stat -x, -o "$dir/stat" -e raw_syscalls:sys_enter,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_fdatasync,context-switches \
    -p "$(IFS=,; echo "${pids[*]}")" &
  local sp=$!
  sleep 0.3
  local rps; rps=$("$dir/httpload" -url "$url" -token $token -n "$runs" -c 64 -json | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["runs_per_sec"]))')
  kill -INT $sp; wait $sp || true
  local after; after=$(cpu "${pids[@]}")
  kill -TERM "$pid"; wait "$pid" || true
  awk -F, -v who="$(basename "$runner") isolate=$isolate" -v rps="$rps" -v n="$runs" -v cpu=$(( (after - before) * 1000000 / tick )) '
    { c[$3] = $1 }
    END {
      printf "%-28s %6d runs/s  %4.0f µs CPU  %5.2f syscalls (futex %.2f, nanosleep %.2f, epoll %.2f, read %.2f, write %.2f, fdatasync %.3f)  %.2f context switches  per request\n",
        who, rps, cpu / n, c["raw_syscalls:sys_enter"] / n, c["syscalls:sys_enter_futex"] / n, c["syscalls:sys_enter_nanosleep"] / n,
        c["syscalls:sys_enter_epoll_pwait"] / n, c["syscalls:sys_enter_read"] / n, c["syscalls:sys_enter_write"] / n,
        c["syscalls:sys_enter_fdatasync"] / n, c["context-switches"] / n
      printf "%d %f %f\n", rps, cpu / n, c["raw_syscalls:sys_enter"] / n > (out "/" isolate)
    }' out="$dir" isolate="$isolate" "$dir/stat"
}

# Each runner's isolated server over its in-process one, in the round:
# issue 33's targets (system calls ≤ 1.3×, runs/s ≥ 0.9×).
for _ in $(seq "$rounds"); do
  for r in "$@"; do
    for isolate in true false; do measure "$r" "$isolate"; done
    read -r irps icpu isys <"$dir/true"
    read -r prps pcpu psys <"$dir/false"
    awk -v who="$(basename "$r")" -v irps="$irps" -v prps="$prps" -v icpu="$icpu" -v pcpu="$pcpu" -v isys="$isys" -v psys="$psys" 'BEGIN {
      printf "%-28s isolated ÷ in-process: %.2f× system calls, %.2f× CPU, %.2f× runs/s (isolation adds %.0f µs)\n", who, isys / psys, icpu / pcpu, irps / prps, icpu - pcpu
    }'
  done
done
