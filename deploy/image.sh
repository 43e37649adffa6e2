#!/usr/bin/env bash
# Builds the runner image from this checkout without pulling anything:
# a static runner (CGO_ENABLED=0), this machine's CA certificates, and
# the Dockerfile at the root (FROM scratch).
#
#   bash deploy/image.sh [TAG]            # default TAG: modrun:dev
#   BASE=gcr.io/distroless/static-debian12 bash deploy/image.sh   # another base
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-modrun:dev}"
out=build/image
rm -rf "$out"
mkdir -p "$out/data/state"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/runner" ./cmd/runner
certs=/etc/ssl/certs/ca-certificates.crt
if [ ! -f "$certs" ]; then
  echo "deploy/image.sh: $certs is missing: apt-get install ca-certificates" >&2
  exit 1
fi
cp "$certs" "$out/ca-certificates.crt"
echo "modrun:x:65532:65532:modrun:/data:/sbin/nologin" > "$out/passwd"
docker build ${BASE:+--build-arg BASE="$BASE"} -t "$tag" .
echo "built $tag"
