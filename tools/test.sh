#!/usr/bin/env bash
# The project's test command (README "Test"). Provisions models from the offline mirror, checks
# formatting and lints, regenerates the independent Python reference, installs a local S3 server
# (s3s-fs) for the S3 tests, runs every Rust test, the demo page in headless Chromium, the
# deployment-file linters and the Lambda build.
# Needs: Rust, python3 (3.11) with pip and venv, node 20 + npm, Debian's chromium (.ci/run installs it).
# EKYC_SKIP_LAMBDA_BUILD=1 skips the (slow, ~12 min clean) `cargo lambda build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export EKYC_MODEL_MIRROR="${EKYC_MODEL_MIRROR:-$ROOT/../shared/models}"
export EKYC_TESTDATA="${EKYC_TESTDATA:-$ROOT/../shared/testdata/faces}"
TOOLS="${EKYC_TOOLS_DIR:-$ROOT/.tools}"
mkdir -p "$TOOLS"
step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "provision models (mirror: $EKYC_MODEL_MIRROR)"
cargo build --bin ekyc
./target/debug/ekyc models fetch --all --offline
./target/debug/ekyc models verify --all

step "independent reference (tools/reference.py, onnxruntime) on the pixels our decoder produces"
if [ ! -x "$TOOLS/venv-ref/bin/python" ]; then
  python3 -m venv "$TOOLS/venv-ref"
  "$TOOLS/venv-ref/bin/pip" install --quiet --disable-pip-version-check -r tools/requirements-reference.txt
fi
rm -rf target/decoded && mkdir -p target/decoded
./target/debug/ekyc decode --root "$EKYC_TESTDATA" --out target/decoded "$EKYC_TESTDATA"/live/* "$EKYC_TESTDATA"/spoof/*
"$TOOLS/venv-ref/bin/python" tools/reference.py --models "$EKYC_MODEL_MIRROR" \
  --images "$EKYC_TESTDATA/live" "$EKYC_TESTDATA/spoof" --pixels-from target/decoded \
  --out target/reference_scores.json 2>/dev/null
"$TOOLS/venv-ref/bin/python" tools/compare_reference.py tests/fixtures/reference_scores.json target/reference_scores.json

step "local S3 server for the S3 tests (s3s-fs 0.14.1 into $TOOLS)"
if [ ! -x "$TOOLS/bin/s3s-fs" ]; then
  cargo install s3s-fs@0.14.1 --features binary --locked --root "$TOOLS"
fi
export EKYC_S3S_FS="$TOOLS/bin/s3s-fs"

step "cargo test"
cargo test --all-targets

step "demo page in headless Chromium"
tools/browser-test.sh

step "deployment files: sam validate --lint, cfn-lint, actionlint"
LINT_VENV="$TOOLS/venv-lint" tools/lint-deploy.sh

if [ "${EKYC_SKIP_LAMBDA_BUILD:-0}" != "1" ]; then
  step "cargo lambda build --release (cargo-lambda 1.9.2 + zig from PyPI)"
  if [ ! -x "$TOOLS/venv-lambda/bin/cargo-lambda" ]; then
    python3 -m venv "$TOOLS/venv-lambda"
    "$TOOLS/venv-lambda/bin/pip" install --quiet --disable-pip-version-check cargo-lambda==1.9.2 ziglang==0.17.1
  fi
  PATH="$TOOLS/venv-lambda/bin:$PATH" cargo lambda build --release --bin ekyc-api --bin ekyc-s3
  ls -la target/lambda/ekyc-api/bootstrap target/lambda/ekyc-s3/bootstrap
fi

echo
echo "tools/test.sh: all checks passed"
