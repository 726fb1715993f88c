#!/usr/bin/env bash
# Installs what Wick needs on a fresh Debian/Ubuntu machine: a Rust toolchain and a C compiler.
# Python packages for `wick bench` references are optional: pass --bench to install them too.
set -euo pipefail
need_sudo() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  need_sudo apt-get update -qq
  need_sudo apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
if [ "${1:-}" = "--bench" ]; then
  python3 -m pip install --quiet pandas numpy
  echo "PyTorch (CPU) is optional for the CNN reference: python3 -m pip install torch"
fi
