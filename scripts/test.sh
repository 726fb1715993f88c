#!/usr/bin/env bash
# Runs every test of the workspace, as CI does. Uses a shared cargo target dir when one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/cache/wick-target ]; then
  export CARGO_TARGET_DIR=/var/cache/wick-target
fi
start=$(date +%s)
# Formatting first: it takes a second and says what to run (`cargo fmt --all`).
cargo fmt --all --check || { echo "the code is not formatted: run cargo fmt --all"; exit 1; }
# No module of a crate imports another that imports it back (see ARCHITECTURE.md, Layers).
python3 scripts/check-imports.py
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
  # The CUDA type-check needs about 2 GiB (nvcc's wheels and a second check build of candle). This
  # machine's disk is shared and has been seen with 255 MB free, where pip failed: the test
  # executables are done with by now, so they go first, and without the room the check says why it
  # did not run instead of failing the tests that passed.
  target="${CARGO_TARGET_DIR:-target}"
  free_mib() { df -Pm "$target" | awk 'NR==2 {print $4}'; }
  need_mib=2048
  echo "disk before the CUDA check: $(free_mib) MiB free"
  if [ "$(free_mib)" -lt "$need_mib" ]; then
    find "$target/debug/deps" -maxdepth 1 -type f -perm -u+x -delete 2>/dev/null || true
    rm -rf "$target/debug/examples" "$target/debug/incremental"
    echo "removed the test executables: $(free_mib) MiB free"
  fi
  if [ "$(free_mib)" -lt "$need_mib" ]; then
    echo "CUDA type-check NOT RUN: only $(free_mib) MiB free on the disk of $target, it needs $need_mib MiB;" \
      "run scripts/check-cuda.sh where there is room"
  else
    scripts/check-cuda.sh
  fi
fi
echo "all tests passed in $(( $(date +%s) - start )) s"
