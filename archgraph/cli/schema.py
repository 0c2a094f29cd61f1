"""``archgraph schema`` and ``archgraph ops``: what the spec language accepts. No torch."""

from __future__ import annotations

import json
import sys

from rich.table import Table

from archgraph.cli.common import out, reporting


def schema() -> None:
    """Print the JSON Schema of the spec language (for editors)."""
    with reporting():
        from archgraph.spec.model import models

        document = models().Spec.model_json_schema(by_alias=True)
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        document["title"] = "archgraph spec"
        sys.stdout.write(json.dumps(document, indent=2) + "\n")


def ops() -> None:
    """List every registered edge op, block and pattern with its parameters."""
    with reporting():
        from archgraph.ops import blocks, edge_ops
        from archgraph.patterns import patterns

        for title, table in (("edge ops (op:)", edge_ops()), ("blocks (block:)", blocks()),
                             ("patterns (use:)", patterns())):
            view = Table(title=title, title_justify="left", show_edge=False, show_lines=False)
            view.add_column("name")
            view.add_column("parameters")
            view.add_column("what it does")
            for name, cls in sorted(table.items()):
                params = ", ".join(f"{k}={v!r}" if v != "required" else k for k, v in cls.parameters().items())
                view.add_row(name, params, cls.summary())
            out.print(view)
            out.print()
