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
  root="${CARGO_TARGET_DIR:-target}/cuda-toolchain"
  venv="$root/venv"
  # The toolchain wheels of check-cuda.sh, plus cuBLAS and cuRAND, which linking needs.
  if [ ! -x "$venv/bin/nvcc-link-ok" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-cache-dir \
      nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 \
      nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
    touch "$venv/bin/nvcc-link-ok"
  fi
  nv=$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)
  cuda="$root/cudaroot-link"
  mkdir -p "$cuda/lib"
  ln -sfn "$(realpath "$nv/include")" "$cuda/include"
  ln -sfn "$(realpath "$nv/bin")" "$cuda/bin"
  for lib in cudart cublas cublasLt curand; do
    ln -sfn "$(realpath "$(ls "$nv"/lib/lib$lib.so.* | head -1)")" "$cuda/lib/lib$lib.so"
  done
  # libcuda comes with the driver, which this machine lacks: link against a stub that only names the
  # library (the binary loads the real one at run time; see shared/reference/cuda-build.md).
  if [ ! -f "$cuda/lib/libcuda.so" ]; then
    echo 'void wick_cuda_link_stub(void) {}' > "$cuda/stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib/libcuda.so" "$cuda/stub.c"
  fi
  export CUDA_ROOT="$(realpath "$cuda")" PATH="$(realpath "$cuda/bin"):$PATH"
  export LIBRARY_PATH="$(realpath "$cuda/lib"):${LIBRARY_PATH:-}"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-2}"
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,--allow-shlib-undefined"
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
  # The CUDA 13 libraries come with PyTorch's wheels (nvidia/cu13); libcuda with the driver.
  libs=$("$python" -c 'import nvidia, os; print(os.path.join(os.path.dirname(nvidia.__path__[0]), "nvidia", "cu13", "lib"))' 2>/dev/null || true)
  export LD_LIBRARY_PATH="${libs}:${LD_LIBRARY_PATH:-}"
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
