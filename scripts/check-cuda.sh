#!/usr/bin/env bash
# Type-checks Wick's CUDA path on a machine without a GPU, so it never rots.
# nvcc comes from NVIDIA's PyPI wheels (Debian has no CUDA toolkit); see ARCHITECTURE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${CARGO_TARGET_DIR:-target}/cuda-toolchain"
venv="$root/venv"
if [ ! -x "$venv/bin/nvcc-ok" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-cache-dir \
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
  touch "$venv/bin/nvcc-ok"
fi
nv=$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)
cuda="$root/cudaroot"
mkdir -p "$cuda/lib"
ln -sfn "$(realpath "$nv/include")" "$cuda/include"
ln -sfn "$(realpath "$nv/bin")" "$cuda/bin"
ln -sfn "$(realpath "$nv/lib/libcudart.so.13")" "$cuda/lib/libcudart.so"
export CUDA_ROOT="$(realpath "$cuda")" PATH="$(realpath "$cuda/bin"):$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-2}"
cargo check -p wick-core -p wick-cli --features cuda --locked
echo "CUDA path type-checks"
