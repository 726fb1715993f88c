#!/usr/bin/env bash
# Type-checks Wick's CUDA path on a machine without a GPU, so it never rots.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cuda-toolchain.sh
cuda_toolchain
cargo check -p wick-core -p wick-cli --features cuda --locked
echo "CUDA path type-checks"
