#!/usr/bin/env bash
# Row 1 of bench/run.sh — the refresh flow through runner bench, 20,000
# runs at c=64 on an in-memory store against bench/tokenserver — for two
# runner binaries in turns, so that a change is measured against the code
# before it in one run (this machine drifts more than the margins).
#
#   git worktree add /tmp/old REV && (cd /tmp/old && go build -o /tmp/runner-old ./cmd/runner)
#   go build -o /tmp/runner-new ./cmd/runner
#   bash bench/ab.sh /tmp/runner-old /tmp/runner-new [ROUNDS]
#
# Prints runs/s per round and the median of each, and new/old.
set -euo pipefail
cd "$(dirname "$0")/.."
old="$1" new="$2" rounds="${3:-5}"
dir=$(mktemp -d)
trap 'kill "$ts" 2>/dev/null; rm -rf "$dir"' EXIT
go build -o "$dir/tokenserver" ./bench/tokenserver
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$dir/tokenserver" -addr "127.0.0.1:$port" & ts=$!
sleep 1
for round in $(seq "$rounds"); do
  for b in old new; do
    bin=$old; [ "$b" = new ] && bin=$new
    rps=$("$bin" bench bench/refresh auth.refresh -n 20000 -c 64 --memory-store --input "baseUrl=http://127.0.0.1:$port" --json |
      python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["errors"] == 0, d; print(round(d["runs_per_sec"]))')
    echo "$round $b $rps" | tee -a "$dir/out"
  done
done
python3 - "$dir/out" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {b: statistics.median(int(r) for _, x, r in rows if x == b) for b in ("old", "new")}
print(f"median old {med['old']:.0f} runs/s, new {med['new']:.0f} runs/s: new/old {med['new']/med['old']:.3f}")
PY
