#!/usr/bin/env bash
# Runs every test of the workspace, as CI does. Uses a shared cargo target dir when one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/cache/wick-target ]; then
  export CARGO_TARGET_DIR=/var/cache/wick-target
fi
start=$(date +%s)
# Python for the tests that need a reference implementation: the stock tritonclient (OIP
# compatibility, with Pillow to prepare a photo as a client would), moto (an S3-compatible store), and
# onnx + onnxruntime (ONNX export).
pyenv_dir="${CARGO_TARGET_DIR:-target}/test-python"
if [ ! -x "$pyenv_dir/bin/python" ] || ! "$pyenv_dir/bin/python" -c "import tritonclient.http, moto, onnx, onnxruntime, PIL" 2>/dev/null; then
  python3 -m venv "$pyenv_dir"
  "$pyenv_dir/bin/pip" install --quiet --no-cache-dir "tritonclient[http]" numpy pillow "moto[server]" onnx onnxruntime
fi
export WICK_PYTHON="$PWD/$pyenv_dir/bin/python"
case "$pyenv_dir" in /*) export WICK_PYTHON="$pyenv_dir/bin/python";; esac
# One build of each dependency for the app, wick and wick-serve (see the script).
scripts/check-feature-unification.sh
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
# No unwrap/expect outside tests, no warnings.
cargo clippy --workspace --all-targets --locked -- -D warnings
if [ "${WICK_SKIP_CUDA_CHECK:-0}" != "1" ]; then
  df -h "${CARGO_TARGET_DIR:-target}" | tail -1 | awk '{print "disk before the CUDA check: " $4 " free"}'
  scripts/check-cuda.sh
fi
echo "all tests passed in $(( $(date +%s) - start )) s"
