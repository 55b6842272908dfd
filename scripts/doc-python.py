#!/usr/bin/env python3
"""Runs a document's Python example exactly as written: the fenced blocks that follow `<!-- run:NAME -->` lines,
in order, as one program. Top-level `await` is allowed, as in a notebook or `python -m asyncio`, so that examples
can read like SourceryKit's.

    scripts/doc-python.py docs/sourcerykit-walkthrough.md walkthrough
"""

import ast
import asyncio
import sys


def blocks(path, name):
    marker, found, inside, lines = f"<!-- run:{name} -->", False, False, []
    with open(path, encoding="utf-8") as document:
        for line in document:
            stripped = line.rstrip("\n")
            if stripped == marker:
                found = True
            elif found and stripped.startswith("```"):
                if inside:
                    found = inside = False
                    lines.append("")
                else:
                    inside = True
            elif inside:
                lines.append(stripped)
    return "\n".join(lines)


def main():
    path, name = sys.argv[1], sys.argv[2]
    source = blocks(path, name)
    if not source.strip():
        sys.exit(f"{path}: no block follows <!-- run:{name} -->")
    code = compile(source, f"{path}#{name}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace = {"__name__": "__main__"}
    result = eval(code, namespace)
    if asyncio.iscoroutine(result):
        asyncio.run(result)


if __name__ == "__main__":
    main()
