#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a circle.

One node per source file (a `mod.rs` stands for its folder's module). An edge A -> B means A's code
names an item that B defines. A module's `pub use` re-exports are a facade, not a use: a name taken
through a facade (`crate::train::TrainReport`) counts as a use of the module that defines it
(`train::pipeline`), so a parent that re-exports its children is not in a circle with them.

Usage: scripts/check-imports.py [--graph CRATE_SRC]   (--graph prints one crate's edges)
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["crates/wick-core/src", "crates/wick-serve/src", "crates/wick-cli/src", "ui/src", "src-tauri/src"]

ITEM = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+|unsafe\s+|const\s+)*"
    r"(?:fn|struct|enum|trait|type|const|static|mod|union)\s+(\w+)",
    re.M,
)
MACRO = re.compile(r"^\s*macro_rules!\s*(\w+)", re.M)
MOD_DECL = re.compile(r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", re.M)
INLINE_MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{", re.M)
USE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
PATH = re.compile(r"\b((?:crate|super|self)(?:\s*::\s*\w+)+)")


def strip(text: str) -> str:
    """Source without comments, strings and `#[cfg(test)]` modules (tests may import anything)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 40]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + len(hashes) + 2)
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12])
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def use_paths(tree: str, prefix=()):
    """Expands a use tree (`a::{b, c::{d as e}, f::*}`) into paths."""
    tree = tree.strip()
    depth = 0
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                head = [s.strip() for s in tree[:i].split("::") if s.strip()]
                inner = tree[i + 1 : tree.rindex("}")]
                parts, d, start = [], 0, 0
                for j, c in enumerate(inner):
                    d += {"{": 1, "}": -1}.get(c, 0)
                    if c == "," and d == 0:
                        parts.append(inner[start:j])
                        start = j + 1
                parts.append(inner[start:])
                for part in parts:
                    if part.strip():
                        yield from use_paths(part, prefix + tuple(head))
                return
            depth += 1
    name = tree.split(" as ")[0].strip()
    yield prefix + tuple(s.strip() for s in name.split("::") if s.strip())


class Crate:
    def __init__(self, src: Path):
        self.src = src
        root = src / "lib.rs" if (src / "lib.rs").exists() else src / "main.rs"
        self.files = {}  # module path (tuple) -> stripped source
        self.load((), root)
        self.items = {m: set(ITEM.findall(t)) | set(MACRO.findall(t)) for m, t in self.files.items()}
        self.reexports = {m: {} for m in self.files}  # module -> name -> full path
        self.globs = {m: [] for m in self.files}
        for m, text in self.files.items():
            for vis, tree in USE.findall(text):
                if not vis:
                    continue
                for path in use_paths(tree):
                    full = self.absolute(m, path)
                    if full is None:
                        continue
                    if full[-1] == "*":
                        self.globs[m].append(full[:-1])
                    else:
                        alias = tree.split(" as ")[-1].strip() if " as " in tree and "{" not in tree else full[-1]
                        self.reexports[m][alias] = full

    def load(self, module, path: Path):
        text = strip(path.read_text())
        self.files[module] = text
        here = path.parent if path.name in ("lib.rs", "main.rs", "mod.rs") else path.with_suffix("")
        for name in MOD_DECL.findall(text):
            for child in (here / f"{name}.rs", here / name / "mod.rs"):
                if child.exists():
                    self.load(module + (name,), child)
                    break
        # Inline modules' code stays in their file's node.

    def absolute(self, module, path):
        """A path as seen from `module`, made absolute; None for other crates and std."""
        first = path[0]
        if first == "crate":
            return path[1:]
        if first == "self":
            return module + path[1:]
        if first == "super":
            base = list(module)
            rest = list(path)
            while rest and rest[0] == "super":
                base = base[:-1]
                rest.pop(0)
            return tuple(base) + tuple(rest)
        if module + (first,) in self.files:  # a child module named without `self::`
            return module + path
        if (first,) in self.files and module == ():
            return path
        return None

    def defining_module(self, full, seen=None):
        """The module that defines the item `full` names (following re-exports)."""
        seen = seen or set()
        if full in seen:
            return None
        seen.add(full)
        module = ()
        i = 0
        while i < len(full) and module + (full[i],) in self.files:
            module += (full[i],)
            i += 1
        if i == len(full):
            return module  # the path names a module
        name = full[i]
        if name in self.reexports.get(module, {}) and name not in self.items.get(module, set()):
            return self.defining_module(self.reexports[module][name], seen)
        if name not in self.items.get(module, set()):
            for g in self.globs.get(module, []):
                found = self.defining_module(g + (name,), seen)
                if found is not None and name in self.items.get(found, set()) | set(self.reexports.get(found, {})):
                    return found
        return module

    def edges(self):
        out = {m: set() for m in self.files}
        for m, text in self.files.items():
            uses = []
            for vis, tree in USE.findall(text):
                if vis:
                    continue  # a facade
                uses.extend(use_paths(tree))
            body = USE.sub("", text)
            uses.extend(tuple(s.strip() for s in p.split("::")) for p in PATH.findall(body))
            for path in uses:
                full = self.absolute(m, path)
                if not full or full[-1] == "*":
                    full = full[:-1] if full else full
                if not full:
                    continue
                target = self.defining_module(full)
                # A module naming its own descendants, or the root, is structure, not a layer.
                if target is None or target == m or target == ():
                    continue
                out[m].add(target)
        return out


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def name(module):
    return "::".join(module) or "(crate root)"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--graph":
        crate = Crate(ROOT / sys.argv[2])
        for m, targets in sorted(crate.edges().items()):
            for t in sorted(targets):
                print(f"{name(m)} -> {name(t)}")
        return 0
    bad = 0
    for src in CRATES:
        crate = Crate(ROOT / src)
        edges = crate.edges()
        for comp in cycles(edges):
            bad += 1
            members = set(comp)
            print(f"{src}: modules in an import circle: {', '.join(sorted(name(m) for m in comp))}")
            for m in sorted(comp):
                for t in sorted(edges[m] & members):
                    print(f"    {name(m)} -> {name(t)}")
    if bad:
        print("Break each circle: move what both sides need into a module below them (see ARCHITECTURE.md).")
        return 1
    print(f"no import circle in {len(CRATES)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
