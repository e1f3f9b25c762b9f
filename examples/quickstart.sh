#!/usr/bin/env bash
# regscan quickstart, fully offline: starts a throwaway registry (Debian's docker-registry)
# on a loopback port with temporary storage, pushes a few sample images to it, and runs
# `regscan serve` against it. Ctrl-C stops everything and removes the temporary files.
#
#   examples/quickstart.sh            # registry on 127.0.0.1:5055, API on 127.0.0.1:8080
#   REGISTRY_PORT=5056 REGSCAN_LISTEN=127.0.0.1:9090 examples/quickstart.sh
set -euo pipefail

cd "$(dirname "$0")/.."
REGISTRY_PORT="${REGISTRY_PORT:-5055}"
LISTEN="${REGSCAN_LISTEN:-127.0.0.1:8080}"
REGISTRY="127.0.0.1:${REGISTRY_PORT}"

if ! command -v docker-registry >/dev/null 2>&1; then
  echo "quickstart: docker-registry is not installed; install it with: sudo apt-get install docker-registry" >&2
  exit 1
fi
if ! command -v node >/dev/null 2>&1; then
  echo "quickstart: node (>= 20.19) is not installed" >&2
  exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/regscan-quickstart.XXXXXX")"
REGISTRY_PID=""
cleanup() {
  if [ -n "$REGISTRY_PID" ]; then kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK/storage"
cat >"$WORK/registry.yml" <<YAML
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: $WORK/storage }
  delete: { enabled: true }
http:
  addr: $REGISTRY
YAML

# Is something already listening on HOST PORT?
in_use() {
  node -e "require('net').connect(+process.argv[2],process.argv[1]).on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))" "$1" "$2" 2>/dev/null
}
if in_use 127.0.0.1 "$REGISTRY_PORT"; then
  echo "quickstart: port ${REGISTRY_PORT} is already in use; choose another with REGISTRY_PORT=PORT" >&2
  exit 1
fi
LISTEN_HOST="${LISTEN%:*}"; LISTEN_HOST="${LISTEN_HOST#[}"; LISTEN_HOST="${LISTEN_HOST%]}"
if in_use "$LISTEN_HOST" "${LISTEN##*:}"; then
  echo "quickstart: $LISTEN is already in use; choose another with REGSCAN_LISTEN=127.0.0.1:PORT" >&2
  exit 1
fi
echo "quickstart: starting docker-registry on $REGISTRY (storage in $WORK)"
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 1 100); do
  if node -e "fetch('http://$REGISTRY/v2/').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))" 2>/dev/null; then break; fi
  if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
    echo "quickstart: docker-registry exited:" >&2; cat "$WORK/registry.log" >&2; exit 1
  fi
  sleep 0.1
done

node examples/push-samples.mjs "$REGISTRY"

if [ -f dist/cli/main.js ]; then REGSCAN=(node bin/regscan.mjs); else REGSCAN=(node --import tsx src/cli/main.ts); fi

cat <<TXT
quickstart: starting regscan serve on http://$LISTEN — try, in another terminal:
  curl -s http://$LISTEN/v1/repositories
  curl -s http://$LISTEN/v1/repositories/$REGISTRY/demo/hello
  curl -s http://$LISTEN/v1/images/$REGISTRY/demo/web:v2
  curl -s http://$LISTEN/metrics | grep regscan_warmer
  curl -sN http://$LISTEN/v1/events &
  node examples/push-samples.mjs $REGISTRY 1.2      # a new tag, then:
  curl -s -X POST http://$LISTEN/v1/repositories/$REGISTRY/demo/hello/refresh
TXT

# regscan runs in its own session so that Ctrl-C reaches it once, as the SIGTERM sent by the
# trap below (a second signal would make it skip its graceful shutdown); not exec, so that
# the EXIT trap still stops the registry.
setsid "${REGSCAN[@]}" serve \
  --image "$REGISTRY/demo/hello" \
  --image "$REGISTRY/demo/web" \
  --image "$REGISTRY/demo/tools" \
  --insecure-host "$REGISTRY" \
  --cache "sqlite:$WORK/cache.db" \
  --listen "$LISTEN" \
  --log-format pretty &
REGSCAN_PID=$!
trap 'kill -TERM "$REGSCAN_PID" 2>/dev/null || true' INT TERM
set +e
status=0
# `wait` returns early when a trapped signal arrives; wait until regscan has really exited.
for _ in $(seq 1 1000); do
  wait "$REGSCAN_PID"; status=$?
  kill -0 "$REGSCAN_PID" 2>/dev/null || break
done
exit "$status"
