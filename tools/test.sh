#!/usr/bin/env bash
# The project's test command (README "Test"). Provisions models from the offline mirror, checks
# formatting and lints, regenerates the independent Python reference, runs every test.
# Needs: Rust, python3 (3.11) with pip and venv. .ci/run installs the system packages first.
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

step "cargo test"
cargo test --all-targets

echo
echo "tools/test.sh: all checks passed"
