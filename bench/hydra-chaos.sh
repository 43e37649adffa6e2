#!/usr/bin/env bash
# The chaos rounds of TestChaosTakeover (internal/oauth2/chaos_test.go)
# against Ory Hydra v2, a real OAuth2 server with refresh-token reuse
# detection and a rotation grace period, instead of the simulator CI uses:
# two runner serve processes on one etcd, the lock holder SIGKILLed or
# SIGSTOPped while Hydra holds its rotated answer, with and without the
# grace period. Builds Hydra from the Go module proxy once (about 2.5
# minutes cold, cached in build/hydra) and needs etcd (Debian:
# etcd-server).
#
#   bench/hydra-chaos.sh [ROUNDS]   (default 20 per fault and grace setting)
set -euo pipefail
cd "$(dirname "$0")/.."

hydra_version=v2.3.0
rounds=${1:-20}
hydra=$PWD/build/hydra-$hydra_version
if [ ! -x "$hydra" ]; then
  echo "building Ory Hydra $hydra_version (once, into $hydra)" >&2
  mod=$(mktemp -d)
  trap 'rm -rf "$mod"' EXIT
  # Hydra's go.mod replaces pop with Ory's fork; a module that requires
  # Hydra must say so too.
  (cd "$mod" && go mod init hydrabuild >/dev/null 2>&1 &&
    go mod edit -replace github.com/gobuffalo/pop/v6=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b &&
    go get "github.com/ory/hydra/v2@$hydra_version" &&
    mkdir -p "$(dirname "$hydra")" &&
    CGO_ENABLED=1 go build -tags sqlite -o "$hydra" github.com/ory/hydra/v2)
fi
MODRUN_HYDRA=$hydra MODRUN_CHAOS_ROUNDS=$rounds \
  go test -tags hydra -run 'TestChaosTakeoverHydra$' -count=1 -v -timeout 90m ./internal/oauth2
