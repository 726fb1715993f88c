#!/usr/bin/env bash
# Fails when `wick` or `wick-serve` would compile a dependency with other features than the desktop
# app does: then building one after the other recompiles that dependency and everything above it
# (serde's `rc` alone recompiles polars and candle). Aligned in crates/wick-feature-unify.
set -euo pipefail
cd "$(dirname "$0")/.."
tree() { cargo tree --locked -p "$1" -e normal,build -f '{p}|{f}' --prefix none 2>/dev/null | sed 's/ (\*)$//' | sort -u; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for p in wick-desktop wick-cli wick-serve; do tree "$p" > "$dir/$p"; done
python3 - "$dir" <<'PY'
import sys
def load(path):
    d = {}
    for line in open(path):
        pkg, _, feats = line.strip().partition("|")
        d.setdefault(pkg, set()).update(f for f in feats.split(",") if f)
    return d
base = load(f"{sys.argv[1]}/wick-desktop")
bad = 0
for other in ("wick-cli", "wick-serve"):
    for pkg, feats in sorted(load(f"{sys.argv[1]}/{other}").items()):
        if pkg in base and base[pkg] != feats:
            bad += 1
            print(f"{pkg}: the desktop app builds it with {sorted(base[pkg] - feats)} more, {other} with {sorted(feats - base[pkg])} more;"
                  f" add the difference to crates/wick-feature-unify/Cargo.toml")
if bad:
    sys.exit(1)
print("dependency features agree across wick-desktop, wick-cli and wick-serve")
PY
