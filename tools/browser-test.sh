#!/usr/bin/env bash
# The demo page (GET /) in a real headless Chromium: builds the CLI, serves the API with the demo
# page on a free local port, and runs tests/browser/demo.test.mjs (node:test + playwright-core)
# against it. Screenshots go to target/browser-artifacts/.
# Needs: node >= 20 with npm, Debian's Chromium (apt-get install -y --no-install-recommends chromium),
# provisioned models in ./models (tools/test.sh does that), ../shared/testdata/faces.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export EKYC_TESTDATA="${EKYC_TESTDATA:-$ROOT/../shared/testdata/faces}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export EKYC_ARTIFACTS="${EKYC_ARTIFACTS:-$ROOT/target/browser-artifacts}"

if [ ! -x "$CHROMIUM" ]; then
  echo "browser-test: no Chromium at $CHROMIUM (apt-get install -y --no-install-recommends chromium)" >&2
  exit 1
fi
command -v node >/dev/null || { echo "browser-test: node is not installed" >&2; exit 1; }

cargo build --bin ekyc

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
BASE="http://127.0.0.1:$PORT"
mkdir -p "$EKYC_ARTIFACTS"
LOG="$EKYC_ARTIFACTS/server.log"

# EKYC_SESSION_FIXED_STEPS: the guided-check test feeds a clip that turns to the right (tests only).
EKYC_SESSION_FIXED_STEPS=TURN_RIGHT,CENTER EKYC_DEMO=true ./target/debug/ekyc serve --host 127.0.0.1 --port "$PORT" --models-dir "$ROOT/models" >"$LOG" 2>&1 &
SERVER_PID=$!
cleanup() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT

# Wait for /health (the server answers only once the models are loaded).
ok=0
for _ in $(seq 1 240); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "browser-test: the server exited; its log:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$BASE/health"; then
    ok=1
    break
  fi
  sleep 0.5
done
if [ "$ok" != 1 ]; then
  echo "browser-test: $BASE/health did not answer within 120 s; server log:" >&2
  cat "$LOG" >&2
  exit 1
fi
echo "browser-test: server on $BASE (pid $SERVER_PID), Chromium $("$CHROMIUM" --version 2>/dev/null || echo '?')"

status=0
(cd tests/browser && EKYC_BASE_URL="$BASE" node --test --test-concurrency=1 --test-reporter=spec demo.test.mjs) || status=$?
if [ "$status" != 0 ]; then
  echo "browser-test: FAILED (exit $status); last server log lines:" >&2
  tail -n 30 "$LOG" >&2
  exit "$status"
fi
echo "browser-test: screenshots in $EKYC_ARTIFACTS"
