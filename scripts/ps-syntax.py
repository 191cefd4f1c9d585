#!/usr/bin/env python3
"""Syntax check of the PowerShell kmsconf runs on a Windows host: the agent
(targets/src/powershell/agent.ps1), and the script and bootstrap exactly as sent (the golden
copies in targets/testdata/powershell/, which the targets crate's tests keep current), parsed
with the tree-sitter PowerShell grammar.

Nothing here can run PowerShell, so this is the one check that the agent parses at all. The
grammar is not PowerShell's own parser: it finds unbalanced braces, brackets and quotes, stray
operators and unfinished statements, but accepts some scripts PowerShell refuses (a `try` with
neither `catch` nor `finally`), and refuses one form PowerShell takes: a list of bare words as a
command argument (`-Property Name, State`), which the agent therefore writes quoted.

Each problem is printed as FILE:LINE:COL; the exit code is 1 when there is one.
Needs the `tree-sitter` and `tree-sitter-powershell` packages (scripts/test.sh installs them).
"""

import sys
from pathlib import Path

import tree_sitter
import tree_sitter_powershell

ROOT = Path(__file__).resolve().parent.parent
# the agent as written; the script kmsconf sends (its table header, then the agent) and the
# bootstrap on the command line, as the targets crate's golden test keeps them
FILES = [
    "targets/src/powershell/agent.ps1",
    "targets/testdata/powershell/agent.ps1",
    "targets/testdata/powershell/bootstrap.ps1",
]


def problems(source: bytes):
    """(row, column, what) of each error or missing node, 0-based."""
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    found = []
    stack = [parser.parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            found.append((*node.start_point, f"missing `{node.type}`"))
        elif node.is_error:
            found.append((*node.start_point, "syntax error"))
        else:
            stack.extend(reversed(node.children))
    return sorted(found)


def report(name: str, source: bytes) -> int:
    lines = source.split(b"\n")
    found = problems(source)
    for row, column, what in found:
        text = lines[row].decode("utf-8", "replace")
        # the bootstrap is one long line: show the part around the problem
        text = text[max(0, column - 40) : column + 60].strip()
        print(f"{name}:{row + 1}:{column + 1}: {what}: {text}")
    return len(found)


def main() -> int:
    count = sum(report(name, (ROOT / name).read_bytes()) for name in FILES)
    if count:
        print(f"ps-syntax: {count} problem(s) in the PowerShell kmsconf sends to a host", file=sys.stderr)
        return 1
    print(f"ps-syntax: {len(FILES)} files parse: agent.ps1, the script sent, the bootstrap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
