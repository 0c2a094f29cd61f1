"""Rewrite the golden files: ``python -m tests.golden.refresh`` (from the repository root).

Run it when a change to the source backend, its templates or an op's ``emit`` rule is meant to
change the generated code, then review the diff (``git diff tests/golden``) like any other
change. ``--check`` only reports which files are out of date (exit status 1 if any).
"""

from __future__ import annotations

import sys
from pathlib import Path

import archgraph
from archgraph.backends.source import generate
from archgraph.io import write_atomic
from archgraph.lang.source import loads

GOLDEN = Path(__file__).resolve().parent
CASES = ("fpn_tiny", "hrnet_tiny")


def render(case: str) -> str:
    """The source generated for ``tests/golden/<case>.yaml``, named by its repository path (whatever the cwd)."""
    spec = GOLDEN / f"{case}.yaml"
    source = loads(spec.read_bytes(), file=f"tests/golden/{case}.yaml")
    return generate(archgraph.load(source))


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    stale = 0
    for case in CASES:
        path = GOLDEN / f"{case}.py"
        text = render(case)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            print(f"{path.relative_to(GOLDEN.parent.parent)}: up to date")
            continue
        stale += 1
        if check:
            print(f"{path.relative_to(GOLDEN.parent.parent)}: out of date")
        else:
            write_atomic(path, text.encode("utf-8"))
            print(f"{path.relative_to(GOLDEN.parent.parent)}: rewritten")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
