#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a cycle.

For each workspace crate, reads the modules under src/ (following `mod` declarations from
lib.rs or main.rs), takes every `crate::`, `super::`, `self::` and child-module path in non-test
code (`#[cfg(test)]` items and modules are skipped), resolves it to the module that defines the
name (following `pub use` re-exports, so `crate::Error` counts as a use of `error`), and looks for
strongly connected components (Tarjan). Declaring a module (`mod x;`) and re-exporting a name
(`pub use x::Y;`) are not uses. Prints each cycle with its files and exits 1; exits 0 when there
is none. Run from anywhere: `python3 scripts/module-cycles.py [CRATE_DIR...]`.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["engine", "model", "gssapi", "providers", "targets", "app", "."]

TOKEN = re.compile(
    r"""
      (?P<line_comment>//[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<raw_string>b?r(?P<hashes>\#*)")
    | (?P<string>b?"(?:\\.|[^"\\])*")
    | (?P<char>b?'(?:\\u\{[0-9a-fA-F]+\}|\\.|[^\\'\n])')
    """,
    re.VERBOSE | re.DOTALL,
)


def strip_comments_and_literals(text):
    """Blanks comments, strings and char literals (keeping newlines) so paths are found in code only."""
    out = []
    i = 0
    while i < len(text):
        m = TOKEN.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.start()])
        if m.group("block_comment"):
            depth, j = 1, m.end()
            while j < len(text) and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            end = j
        elif m.group("raw_string") is not None:
            close = '"' + m.group("hashes")
            k = text.find(close, m.end())
            end = len(text) if k < 0 else k + len(close)
        else:
            end = m.end()
        out.append(re.sub(r"[^\n]", " ", text[m.start() : end]))
        i = end
    return "".join(out)


def item_end(code, start):
    """The end of the item that starts at `start`: its `;` or its matching `}`."""
    depth = 0
    for j in range(start, len(code)):
        c = code[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        elif c == ";" and depth == 0:
            return j + 1
    return len(code)


CFG_TEST = re.compile(r"#\[cfg\((?:all\()?test\b[^\]]*\]")


def strip_test_items(code):
    """Removes every item marked `#[cfg(test)]` (its attributes, signature and body)."""
    while True:
        m = CFG_TEST.search(code)
        if not m:
            return code
        end = item_end(code, m.end())
        code = code[: m.start()] + re.sub(r"[^\n]", " ", code[m.start() : end]) + code[end:]


class Module:
    def __init__(self, path, file, code):
        self.path = path  # tuple of names from the crate root
        self.file = file
        self.code = code
        self.children = {}  # name -> module path
        self.reexports = {}  # name -> absolute path (tuple), from `pub use`
        self.uses = []  # absolute paths (tuples) this module names


def child_file(parent_file, name):
    base = parent_file.parent if parent_file.name in ("lib.rs", "main.rs", "mod.rs") else (
        parent_file.parent / parent_file.stem
    )
    for candidate in (base / f"{name}.rs", base / name / "mod.rs"):
        if candidate.exists():
            return candidate
    return None


MOD_DECL = re.compile(r"(?:^|[;}\]\s])(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;")


def load_crate(root_file):
    modules = {}
    pending = [((), root_file)]
    while pending:
        path, file = pending.pop()
        code = strip_test_items(strip_comments_and_literals(file.read_text()))
        module = Module(path, file, code)
        modules[path] = module
        for m in MOD_DECL.finditer(code):
            child = child_file(file, m.group(1))
            if child is not None:
                module.children[m.group(1)] = path + (m.group(1),)
                pending.append((path + (m.group(1),), child))
    return modules


USE_ITEM = re.compile(r"(?:^|[;{}\]\s])(pub(?:\([^)]*\))?\s+)?use\s+([^;]*);")


def expand_use_tree(tree):
    """`a::{b, c::{d, e as f}}` -> [[a, b], [a, c, d], [a, c, e@f]] (an alias after `@`)."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+", "@", tree))

    def parse(s, i):
        paths, prefix = [], []
        token = ""
        while i < len(s):
            c = s[i]
            if c == "{":
                inner, i = parse(s, i + 1)
                base = prefix + ([token] if token else [])
                paths.extend(base + p for p in inner)
                token, prefix = "", None
                continue
            if c == "}":
                if prefix is not None and (token or prefix):
                    paths.append(prefix + [token] if token else prefix)
                return paths, i + 1
            if c == ",":
                if prefix is not None and (token or prefix):
                    paths.append(prefix + [token] if token else prefix)
                token, prefix = "", []
            elif s.startswith("::", i):
                if prefix is not None:
                    prefix.append(token)
                token = ""
                i += 2
                continue
            else:
                token += c
            i += 1
        if prefix is not None and (token or prefix):
            paths.append(prefix + [token] if token else prefix)
        return paths, i

    return [[seg for seg in p if seg] for p in parse(tree, 0)[0]]


def absolute(module, segments):
    """A path as written in `module` -> a path from the crate root, or None when it leaves the crate."""
    if not segments:
        return None
    head = segments[0]
    if head in ("crate", "$crate"):
        return tuple(segments[1:])
    if head == "self":
        return module.path + tuple(segments[1:])
    if head == "super":
        base = list(module.path)
        rest = list(segments)
        while rest and rest[0] == "super":
            if not base:
                return None
            base.pop()
            rest.pop(0)
        return tuple(base) + tuple(rest)
    if head in module.children:
        return module.path + tuple(segments)
    return None


def resolve(modules, path, seen=None):
    """The module that defines what `path` names, following child modules and `pub use` re-exports."""
    seen = seen or set()
    current = ()
    for i, seg in enumerate(path):
        module = modules[current]
        if seg in module.children:
            current = module.children[seg]
            continue
        if seg in module.reexports and (current, seg) not in seen:
            seen.add((current, seg))
            return resolve(modules, module.reexports[seg] + tuple(path[i + 1 :]), seen)
        break
    return current


PATH_IN_CODE = re.compile(r"(?<![A-Za-z0-9_:])(\$?[a-z_][a-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def collect(modules):
    for module in modules.values():
        code = module.code
        spans = []
        for m in USE_ITEM.finditer(code):
            spans.append((m.start(2), m.end()))
            for segments in expand_use_tree(m.group(2)):
                alias = None
                if segments and "@" in segments[-1]:
                    name, alias = segments[-1].split("@", 1)
                    segments = segments[:-1] + [name]
                if segments and segments[-1] == "self":
                    segments = segments[:-1]
                path = absolute(module, segments) if segments and segments[-1] != "*" else (
                    absolute(module, segments[:-1]) if segments else None
                )
                if path is None:
                    continue
                if m.group(1):
                    module.reexports[alias or segments[-1]] = path
                module.uses.append(path)
        for m in PATH_IN_CODE.finditer(code):
            if any(start <= m.start() < end for start, end in spans):
                continue
            path = absolute(module, m.group(1).split("::"))
            if path is not None:
                module.uses.append(path)


def levels(modules):
    """Edges between sibling modules, per parent: a use from `a::x::..` of `a::y::..` is `x -> y`
    under `a`. A module and its own descendants are one unit (a parent may use its children and they
    may use it), so a use between ancestor and descendant is no edge."""
    by_parent = {}
    for path, module in modules.items():
        for used in module.uses:
            target = resolve(modules, used)
            common = 0
            while common < min(len(path), len(target)) and path[common] == target[common]:
                common += 1
            if common == len(path) or common == len(target):
                continue
            parent = path[:common]
            edges = by_parent.setdefault(parent, {})
            edges.setdefault(path[: common + 1], set()).add(target[: common + 1])
            edges.setdefault(target[: common + 1], set())
            evidence = by_parent.setdefault(("#evidence",) + parent, {})
            evidence.setdefault((path[: common + 1], target[: common + 1]), set()).add(module.file)
    return by_parent


def tarjan(edges):
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sccs


def crate_root(crate_dir):
    for name in ("lib.rs", "main.rs"):
        if (crate_dir / "src" / name).exists():
            yield crate_dir / "src" / name


def main(argv):
    crates = argv or CRATES
    cycles = 0
    for crate in crates:
        crate_dir = (ROOT / crate).resolve()
        for root_file in crate_root(crate_dir):
            modules = load_crate(root_file)
            collect(modules)
            by_parent = levels(modules)
            for parent, edges in sorted(by_parent.items()):
                if parent[:1] == ("#evidence",):
                    continue
                evidence = by_parent[("#evidence",) + parent]
                for scc in tarjan(edges):
                    cycles += 1
                    names = ", ".join(p[-1] for p in scc)
                    where = "crate::" + "::".join(parent) if parent else "crate"
                    print(f"module cycle in {root_file.relative_to(ROOT)}: {{{names}}} under {where}")
                    for (source, target), files in sorted(evidence.items()):
                        if source in scc and target in scc:
                            shown = ", ".join(str(f.relative_to(ROOT)) for f in sorted(files))
                            print(f"  {source[-1]} -> {target[-1]}  ({shown})")
    if cycles:
        print(
            f"{cycles} module cycle(s): move what both sides need into a module below them "
            "(see CONTRIBUTING.md, Architecture)",
            file=sys.stderr,
        )
        return 1
    print("module-cycles: no module cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
