#!/usr/bin/env bash
# Installs what Wick needs on a fresh Debian/Ubuntu machine: a Rust toolchain, a C compiler,
# the GTK/WebKit libraries Tauri links against, and what the headless GUI tests run under
# (Xvfb, xdotool, Mesa's software Vulkan/GL, ImageMagick for screenshots, GTK for Python as a drag source).
# Python packages for `wick bench` references are optional: pass --bench to install them too.
set -euo pipefail
need_sudo() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
desktop_packages=(libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev
  librsvg2-dev libxdo-dev xvfb xdotool imagemagick libgl1-mesa-dri libegl1 mesa-vulkan-drivers libvulkan1
  libxkbcommon-x11-0 python3-gi gir1.2-gtk-3.0 fonts-dejavu-core dbus-daemon at-spi2-core libglib2.0-bin)
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${desktop_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  need_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive need_sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
if [ "${1:-}" = "--bench" ]; then
  # pandas/numpy, scikit-learn (the boosted-tree rows) and Pillow (the photo rows) for `wick bench`; FastAPI on uvicorn with uvloop and httptools (as `fastapi[standard]`
  # deploys it) for the reference server of `wick bench --serve`.
  python3 -m pip install --quiet pandas numpy scikit-learn pillow fastapi "uvicorn[standard]" safetensors
  echo "PyTorch is optional for the training rows: python3 -m pip install torch torchvision pillow"
fi
