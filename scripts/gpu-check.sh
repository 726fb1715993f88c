#!/usr/bin/env bash
# The GPU check of issue 9, in two halves:
#
#   scripts/gpu-check.sh build   on the build machine (Rust, no GPU): builds `wick` and wick-core's
#                                unit tests with --features cuda (nvcc from NVIDIA's PyPI wheels, as in
#                                scripts/check-cuda.sh; CUDA_COMPUTE_CAP=90 for Hopper), stripped, into
#                                target/gpu-check/ (carry that folder to the GPU machine).
#   scripts/gpu-check.sh run     on a GPU machine with the NVIDIA driver, nvcc and PyTorch but no Rust:
#                                the CPU-vs-GPU parity tests (outputs and gradients within tolerance)
#                                and `wick bench --device cuda` beside that machine's PyTorch CUDA.
#                                Writes its log to ${OUT:-target/gpu-check}/gpu-check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/gpu-check

build() {
  . scripts/cuda-toolchain.sh
  cuda_toolchain link
  cargo build --release --locked -p wick-cli --features cuda
  tests=$(cargo test --release --locked -p wick-core --features cuda --lib --no-run --message-format=json \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])' | tail -1)
  mkdir -p "$dest"
  cp "${CARGO_TARGET_DIR:-target}/release/wick" "$dest/wick"
  cp "$tests" "$dest/wick-core-tests"
  strip "$dest/wick" "$dest/wick-core-tests"
  cp crates/wick-cli/bench/reference.py "$dest/"
  du -sh "$dest"/*
  echo "built: carry $dest to the GPU machine and run: scripts/gpu-check.sh run"
}

run() {
  out="${OUT:-$dest}"
  mkdir -p "$out"
  log="$out/gpu-check.log"
  python=${PYTHON:-python3}
  # CUDA 13's cudart and cuBLAS come with PyTorch's wheels (nvidia/cu13/lib), cuRAND with a CUDA
  # toolkit (PyTorch ships none), libcuda with the driver.
  libs=$("$python" -c 'import nvidia, os; print(os.path.join(os.path.dirname(nvidia.__path__[0]), "nvidia", "cu13", "lib"))' 2>/dev/null || true)
  export LD_LIBRARY_PATH="${libs}:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
  if ldd "$dest/wick" | grep -q "not found"; then
    echo "missing libraries (install a CUDA 13 toolkit or put them on LD_LIBRARY_PATH):" >&2
    ldd "$dest/wick" | grep "not found" >&2
    exit 1
  fi
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
    echo "== parity: CPU (fused ops) vs CUDA (candle), outputs and gradients"
    "$dest/wick-core-tests" --test-threads 1 device_parity
    echo "== wick bench --device cuda beside PyTorch CUDA"
    "$dest/wick" bench --device cuda --python "$python" --rounds 2 --csv-rows 100000 \
      --memory-steps 0 --data-dir "$out/bench-data"
  } 2>&1 | tee "$log"
}

case "${1:-}" in
  build) build ;;
  run) run ;;
  *) echo "usage: scripts/gpu-check.sh build|run" >&2; exit 2 ;;
esac
