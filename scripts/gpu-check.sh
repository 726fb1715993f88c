#!/usr/bin/env bash
# The GPU check of issue 9, in two halves:
#
#   scripts/gpu-check.sh build   on the build machine (Rust, no GPU): builds `wick` with --features cuda
#                                (nvcc from NVIDIA's PyPI wheels, CUDA_COMPUTE_CAP=90 for Hopper),
#                                stripped and xz-compressed, with cuRAND (which PyTorch's wheels lack),
#                                into target/gpu-check/ (about 57 MB: carry that folder to the GPU
#                                machine; `wick bench` writes its own reference script).
#   scripts/gpu-check.sh run     on a GPU machine with the NVIDIA driver and PyTorch's CUDA wheels but
#                                no Rust: `wick bench --parity --device cuda` (the CPU-vs-GPU parity of
#                                outputs and gradients) and `wick bench --device cuda` beside that
#                                machine's PyTorch CUDA. Writes its log to ${OUT:-target/gpu-check}/gpu-check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/gpu-check

build() {
  . scripts/cuda-toolchain.sh
  cuda_toolchain link
  cargo build --release --locked -p wick-cli --features cuda
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "${CARGO_TARGET_DIR:-target}/release/wick" "$dest/wick"
  strip "$dest/wick"
  cp -L "$CUDA_ROOT/lib/libcurand.so" "$dest/libcurand.so.10"
  xz -T2 -6 -f "$dest/wick" "$dest/libcurand.so.10"
  du -sh "$dest"/*
  echo "built: carry $dest to the GPU machine and run: scripts/gpu-check.sh run"
}

run() {
  out="${OUT:-$dest}"
  mkdir -p "$out"
  log="$out/gpu-check.log"
  python=${PYTHON:-python3}
  bin=$(mktemp -d)
  xz -dc "$dest/wick.xz" > "$bin/wick" && chmod +x "$bin/wick"
  xz -dc "$dest/libcurand.so.10.xz" > "$bin/libcurand.so.10"
  # CUDA 13's cudart, cuBLAS and NVRTC come with PyTorch's wheels (nvidia/cu13/lib), cuRAND from the
  # build half (PyTorch ships none), libcuda with the driver.
  libs=$("$python" -c 'import nvidia, os; print(os.path.join(os.path.dirname(nvidia.__path__[0]), "nvidia", "cu13", "lib"))' 2>/dev/null || true)
  export LD_LIBRARY_PATH="${libs}:$bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
  if ldd "$bin/wick" | grep -q "not found"; then
    echo "missing libraries (put them on LD_LIBRARY_PATH):" >&2
    ldd "$bin/wick" | grep "not found" >&2
    exit 1
  fi
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
    echo "== parity: CPU (fused ops) vs CUDA (candle), outputs and gradients"
    "$bin/wick" bench --parity --device cuda
    echo "== wick bench --device cuda beside PyTorch CUDA"
    "$bin/wick" bench --device cuda --python "$python" --rounds 2 --csv-rows 100000 \
      --memory-steps 0 --data-dir "$out/bench-data"
  } 2>&1 | tee "$log"
}

case "${1:-}" in
  build) build ;;
  run) run ;;
  *) echo "usage: scripts/gpu-check.sh build|run" >&2; exit 2 ;;
esac
