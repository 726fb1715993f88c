#!/usr/bin/env bash
# Runs every test of the workspace, as CI does. Uses a shared cargo target dir when one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/cache/wick-target ]; then
  export CARGO_TARGET_DIR=/var/cache/wick-target
fi
start=$(date +%s)
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
if [ "${WICK_SKIP_CUDA_CHECK:-0}" != "1" ]; then
  scripts/check-cuda.sh
fi
echo "all tests passed in $(( $(date +%s) - start )) s"
