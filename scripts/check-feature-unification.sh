#!/usr/bin/env bash
# Fails when `wick` or `wick-serve` would compile a dependency with other features than the desktop
# app does: then building one after the other recompiles that dependency and everything above it
# (serde's `rc` alone recompiles polars and candle). Aligned in crates/wick-feature-unify.
set -euo pipefail
cd "$(dirname "$0")/.."
tree() { cargo tree --locked -p "$1" -e normal,build -f '{p}|{f}' --prefix none | sed 's/ (\*)$//' | sort -u; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for p in wick-desktop wick-cli wick-serve; do tree "$p" > "$dir/$p"; done
python3 - "$dir" <<'PY'
import sys
# A package can be built twice (for build scripts and proc macros, and for the program); cargo tree
# prints each build's feature list, so compare the sets of lists, not their union.
def load(path):
    d = {}
    for line in open(path):
        pkg, _, feats = line.strip().partition("|")
        d.setdefault(pkg, set()).add(feats)
    return d
base = load(f"{sys.argv[1]}/wick-desktop")
bad = 0
for other in ("wick-cli", "wick-serve"):
    for pkg, builds in sorted(load(f"{sys.argv[1]}/{other}").items()):
        extra = builds - base.get(pkg, builds)
        if pkg in base and extra:
            bad += 1
            print(f"{pkg}: {other} builds it with features {sorted(extra)}; the desktop app only with {sorted(base[pkg])}."
                  " Add the desktop's features to crates/wick-feature-unify/Cargo.toml")
if bad:
    sys.exit(1)
print("dependency features agree across wick-desktop, wick-cli and wick-serve")
PY
