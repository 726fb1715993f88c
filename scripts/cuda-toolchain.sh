# Sourced by scripts/check-cuda.sh and scripts/gpu-check.sh: a CUDA toolchain on a machine without a
# GPU or a CUDA install. nvcc comes from NVIDIA's PyPI wheels (Debian has no CUDA toolkit); see
# ARCHITECTURE.md and shared/reference/cuda-build.md.
#
# cuda_toolchain        nvcc, the CUDA headers and cudart: enough for `cargo check --features cuda`.
# cuda_toolchain link   also cuBLAS, cuRAND and NVRTC (real wheels) and a libcuda stub holding every driver
#                       function cudarc calls (the driver comes with a GPU machine), so that a CUDA
#                       build links; the binary loads the real libcuda.so.1 where it runs.
cuda_toolchain() {
  local root="${CARGO_TARGET_DIR:-target}/cuda-toolchain"
  local venv="$root/venv" cuda="$root/cudaroot" nv
  if [ ! -x "$venv/bin/nvcc-ok" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-cache-dir \
      nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
    touch "$venv/bin/nvcc-ok"
  fi
  nv=$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)
  mkdir -p "$cuda/lib"
  ln -sfn "$(realpath "$nv/include")" "$cuda/include"
  ln -sfn "$(realpath "$nv/bin")" "$cuda/bin"
  ln -sfn "$(realpath "$nv/lib/libcudart.so.13")" "$cuda/lib/libcudart.so"
  if [ "${1:-}" = link ]; then
    if [ ! -x "$venv/bin/link-ok" ]; then
      "$venv/bin/pip" install --quiet --no-cache-dir nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35 \
        nvidia-cuda-nvrtc==13.0.88
      touch "$venv/bin/link-ok"
    fi
    local lib
    for lib in cublas cublasLt curand nvrtc; do
      ln -sfn "$(realpath "$(ls "$nv"/lib/lib$lib.so.* | head -1)")" "$cuda/lib/lib$lib.so"
    done
    if [ ! -f "$cuda/lib/libcuda.so" ]; then
      cargo fetch --locked
      local sys
      sys=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys | head -1)
      grep -rhoE '\bfn cu[A-Za-z0-9_]+\(' "$sys" | sed -E 's/fn (cu[A-Za-z0-9_]+)\(/void \1(void) {}/' | sort -u > "$cuda/libcuda-stub.c"
      cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib/libcuda.so" "$cuda/libcuda-stub.c"
    fi
    export LIBRARY_PATH="$(realpath "$cuda/lib"):${LIBRARY_PATH:-}"
  fi
  export CUDA_ROOT="$(realpath "$cuda")" PATH="$(realpath "$cuda/bin"):$PATH"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-2}"
}
