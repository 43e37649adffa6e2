#!/usr/bin/env bash
# A modrun cluster on this machine (deploy/compose.yaml): three etcd
# members, three runner serve replicas on them, and the example package
# with its auth service. Nothing is pulled: every image is built here
# FROM scratch from static binaries.
#
#   bash deploy/cluster.sh          # build the images, then up
#   bash deploy/cluster.sh build    # only the images
#   bash deploy/cluster.sh up       # start (the images must exist)
#   bash deploy/cluster.sh down     # stop and remove it, volumes too
#   bash deploy/cluster.sh logs runner1   # any other: docker compose's own
#
# The API token and the keyring are made once in $MODRUN_CLUSTER_DIR
# (default deploy/.cluster): the token in token, the keyring sealing the
# store in keys. COMPOSE_PROJECT_NAME (default modrun), MODRUN_TAG (dev),
# MODRUN_PORT_1..3 (8787-8789), AUTH_PORT (8080) and AUTH_TTL (30s) change
# the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
export MODRUN_TAG="${MODRUN_TAG:-dev}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-modrun}"
dir="${MODRUN_CLUSTER_DIR:-deploy/.cluster}"

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -f deploy/compose.yaml "$@"
  else
    docker-compose -f deploy/compose.yaml "$@"
  fi
}

build() {
  bash deploy/image.sh "modrun:$MODRUN_TAG"
  local out=build/cluster
  rm -rf "$out"
  mkdir -p "$out/etcd/data" "$out/example"
  echo "modrun:x:65532:65532:modrun:/data:/sbin/nologin" | tee "$out/etcd/passwd" > "$out/example/passwd"
  echo "building etcd from its Go modules (deploy/etcd; CGO_ENABLED=0)"
  (cd deploy/etcd && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "../../$out/etcd/etcd" .)
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/example/refresh-token" ./examples/refresh-token
  docker build -q -f deploy/etcd.Dockerfile -t "modrun-etcd:$MODRUN_TAG" "$out/etcd" >/dev/null
  docker build -q -f deploy/example.Dockerfile -t "modrun-example:$MODRUN_TAG" "$out/example" >/dev/null
  echo "built modrun:$MODRUN_TAG, modrun-etcd:$MODRUN_TAG, modrun-example:$MODRUN_TAG"
}

# secrets makes the token and the keyring once, readable by the user the
# replicas run as (65532, or this user's id when not root: a bind-mounted
# file keeps its owner).
secrets() {
  mkdir -p "$dir"
  if [ ! -s "$dir/token" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$dir/token")
  fi
  if [ ! -s "$dir/keys" ]; then
    build/image/runner store keygen --keys "$dir/keys" >/dev/null
  fi
  if [ "$(id -u)" = 0 ]; then
    chown 65532:65532 "$dir/keys"
    export MODRUN_UID=65532 MODRUN_GID=65532
  else
    export MODRUN_UID="$(id -u)" MODRUN_GID="$(id -g)"
  fi
  MODRUN_TOKEN="$(cat "$dir/token")"
  MODRUN_KEYS="$(cd "$dir" && pwd)/keys"
  export MODRUN_TOKEN MODRUN_KEYS
}

up() {
  if [ ! -x build/image/runner ]; then
    echo "deploy/cluster.sh: no build/image/runner: run bash deploy/cluster.sh build first" >&2
    exit 1
  fi
  secrets
  compose up -d
  local p
  for p in "${MODRUN_PORT_1:-8787}" "${MODRUN_PORT_2:-8788}" "${MODRUN_PORT_3:-8789}"; do
    local i
    for i in $(seq 120); do
      build/image/runner healthcheck "http://127.0.0.1:$p" >/dev/null 2>&1 && break
      sleep 0.5
    done
    build/image/runner healthcheck "http://127.0.0.1:$p" >/dev/null || { echo "replica on :$p is not ready: see docker-compose -f deploy/compose.yaml logs" >&2; exit 1; }
    echo "ready: http://127.0.0.1:$p/ (inspector and API)"
  done
  echo "API token: $dir/token; auth service: http://127.0.0.1:${AUTH_PORT:-8080}/stats"
}

case "${1:-all}" in
  build) build ;;
  up) up ;;
  down) secrets; compose down -v --remove-orphans ;;
  all) build; up ;;
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) secrets; compose "$@" ;;   # any other: docker compose's own (logs, ps, stop …)
esac
