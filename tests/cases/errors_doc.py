"""Write docs/errors.md from the corpus of bad specs in tests/cases/bad: ``python -m tests.cases.errors_doc``.

The page says what an error looks like, the bounds, and then, section by section, every check
the corpus exercises: for each case its description, the exact lines archgraph prints, and the
spec line each one points at, with a caret under its column. tests/test_errors_doc.py fails when
the committed page differs from what this writes, or when a case has no entry in :data:`INDEX`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases" / "bad"
PAGE = ROOT / "docs" / "errors.md"

SECTIONS = {
    "file": "Reading the file",
    "document": "Keys and types",
    "values": "Values, bounds and expressions",
    "params": "Parameters",
    "patterns": "Patterns",
    "graph": "The graph",
    "shapes": "Strides, channels and blocks",
    "limits": "Limits on size",
}

# case -> (section, what it shows); every case in tests/cases/bad has an entry
INDEX: dict[str, tuple[str, str]] = {
    "empty_file": ("file", "an empty file"),
    "only_comments": ("file", "a file with nothing but comments is empty too"),
    "binary_file": ("file", "binary data (a PNG header), at the first byte that is not UTF-8"),
    "latin1_text": ("file", "text saved as Latin-1, at the byte that is not UTF-8"),
    "top_level_list": ("file", "a list where the document's mapping belongs"),
    "top_level_list_json": ("file", "the same in JSON"),
    "top_level_scalar": ("file", "a lone string as the document"),
    "top_level_number": ("file", "a lone number as a JSON document"),
    "tab_indentation": ("file", "tabs used for indentation"),
    "unclosed_bracket": ("file", "a flow list never closed: at the end of the file, naming where it opened"),
    "unclosed_brace_json": ("file", "a JSON array never closed"),
    "trailing_comma": ("file", "a comma after the last item of a JSON list"),
    "duplicate_key": ("file", "a key given twice in one mapping, which YAML loaders usually let pass"),
    "duplicate_key_json": ("file", "the same in JSON"),
    "non_string_keys": ("file", "a number as a mapping key"),
    "two_documents": ("file", "two YAML documents in one file"),
    "merge_key": ("file", "a YAML merge key (<<)"),
    "python_tag": ("file", "a Python tag that unsafe YAML loaders would run (os.system): refused, nothing runs"),
    "python_tag_key": ("file", "a Python tag on a mapping key"),
    "nested_too_deep": ("file", "lists nested 70 deep (the bound is 64)"),
    "alias_bomb": ("file", "a billion laughs: aliases of aliases, stopped at 200,000 values, at the alias"),
    "unknown_top_key": ("document", "a misspelt top-level key, with a did-you-mean"),
    "init_rules": ("document", "init rules: a key that does not fit the scheme, a missing std, a norm weight "
                               "that is not a constant, an unknown kind of layer, an unknown key"),
    "init_rule_twice": ("document", "two init rules that both apply to one kind of layer"),
    "unknown_keys": ("document", "unknown keys at every level: input, node, block, pattern, edge"),
    "unknown_keys_json": ("document", "the same in JSON"),
    "unknown_key_hides_errors": ("document", "an unknown key does not hide other problems"),
    "missing_keys": ("document", "required keys left out, in nodes, blocks and edges"),
    "missing_top_level_key": ("document", "the network's name left out (JSON)"),
    "unknown_format_version": ("document", "a format version this archgraph does not read (JSON)"),
    "future_format_version": ("document", "the same in YAML"),
    "format_version_not_integer": ("document", "the format version quoted, so a string"),
    "wrong_types": ("document", "a number, a list and a string where an integer and a boolean belong"),
    "wrong_types_json": ("document", "wrong types in JSON: a float version, a number as a name, a list as doc, ..."),
    "yes_no_on_off": ("document", ("yes, no, on and off where booleans belong, and a parameter declared with one: "
                                   "YAML 1.2 reads them as strings")),
    "wrong_container_types": ("document", "mappings where lists belong, and the reverse"),
    "unknown_kinds": ("document", "unknown block, pattern and edge op, with did-you-means"),
    "bad_names": ("document", "names that are not identifiers, or are Python keywords"),
    "nonpositive_values": ("values", "negative and zero strides and channels"),
    "nonpositive_values_json": ("values", "the same in JSON, with the input size, kernel and repeat"),
    "absurd_values": ("values", "channels, strides, kernels and input sizes over 65536"),
    "absurd_expression": ("values", "an expression whose value is over the bound, and a power too large to compute"),
    "choice_typo": ("values", "a misspelt option, with a did-you-mean"),
    "choice_expression": ("values", "an option chosen by a parameter, and not one of the options"),
    "when_not_bool": ("values", "a condition that is not a boolean"),
    "expr_disallowed": ("values", "attribute access in an expression (only arithmetic and a few functions)"),
    "expr_div_zero": ("values", "division by zero in a parameter expression"),
    "expr_div_zero_pattern": ("values", "division and modulo by zero in a pattern's list and in a condition"),
    "expr_unknown_param": ("values", "a misspelt parameter in an expression"),
    "param_bad_name": ("params", "a parameter name that is not an identifier"),
    "param_decl_key": ("params", "a misspelt key in a parameter's declaration"),
    "param_choices": ("params", "a default that is not among the parameter's choices"),
    "param_bad_values": ("params", "defaults that are a list, or null"),
    "pattern_unknown_node": ("patterns", "a pattern fed from an unknown node"),
    "multires_too_few_widths": ("patterns", "a stage with fewer branches than its inputs"),
    "pattern_list_lengths": ("patterns", "a stage given fewer widths than the previous stage's branches"),
    "cls_head_widths": ("patterns", "a head given more widths than its inputs"),
    "name_clash": ("patterns", "a pattern named like a node, and a node named like a pattern"),
    "duplicate_node": ("graph", "two nodes of one name"),
    "duplicate_input_name": ("graph", "a node named like the input"),
    "reserved_node_name": ("graph", "names that torch's nn.ModuleDict uses itself (items, training, __dict__)"),
    "unknown_from": ("graph", "from: naming an unknown node"),
    "unknown_edge_node": ("graph", "an edge to an unknown node (JSON)"),
    "duplicate_edge": ("graph", "the same edge twice"),
    "self_loop": ("graph", "an edge from a node to itself"),
    "cycle": ("graph", "a cycle"),
    "edge_into_input": ("graph", "an edge into the network's input"),
    "no_output": ("graph", "no node marked as an output"),
    "unreachable_node": ("graph", "a node the input does not reach"),
    "dead_end_node": ("graph", "a node that leads to no output"),
    "identity_across_strides": ("shapes", "an identity edge between different strides (JSON)"),
    "equal_stride_ops_across_strides": ("shapes", "identity, conv and lateral edges between different strides"),
    "upsample_fine_to_coarse": ("shapes", "an upsample from a finer to a coarser stride"),
    "upsample_by_three": ("shapes", "an upsample by a factor that is not a power of two"),
    "upsample_to_input_size_off_stride_1": ("shapes", ("an upsample to the input's size into a node that "
                                                       "merges at stride 2, not the input's stride 1")),
    "downsample_coarse_to_fine": ("shapes", "a downsample from a coarser to a finer stride"),
    "downsample_links": ("shapes", "a downsample whose links do not match the stride ratio"),
    "conv_even_kernel": ("shapes", "a conv edge with an even kernel"),
    "body_stride_not_dividing": ("shapes", "a node's stride that its body's stride does not divide"),
    "channel_mismatch_at_sum": ("shapes", "inputs of different widths summed"),
    "declared_channels_mismatch": ("shapes", "a node whose body ends at another width than it declares"),
    "concat_fed_by_projecting_edge": ("shapes", "a projecting edge into a concat"),
    "adopted_size_only": ("shapes", "a node whose every input takes its size from the node"),
    "bottleneck_not_divisible": ("shapes", "a bottleneck whose width the expansion does not divide"),
    "linear_on_feature_map": ("shapes", "a linear block on a feature map"),
    "vector_into_edge": ("shapes", "a pooled vector fed into an edge"),
    "too_many_nodes": ("limits", "a pattern asked for 40,000 nodes: expansion stops at the limit, 10,000"),
    "too_many_edges": ("limits", "a stage of 14 branches fused all-to-all 200 times: over 40,000 edges"),
    "too_many_blocks": ("limits", "blocks repeated 2 x 65536 times: over 100,000 blocks"),
}


def cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.suffix in (".yaml", ".json"))


def _source_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        return data.decode("utf-8").split("\n")
    except UnicodeDecodeError:  # show what is there: each undecodable byte as an escape
        return data.decode("utf-8", errors="backslashreplace").split("\n")


def _pointer(lines: list[str], line: int, col: int) -> list[str]:
    """The spec line ``line``, and a caret under column ``col`` (long lines cut around it)."""
    from archgraph.errors import printable

    text = lines[line - 1] if line - 1 < len(lines) else ""
    shown = [printable(c) for c in text]  # one cell per character, so that the caret lines up
    start = max(0, col - 60)
    left = "".join(shown[start:col - 1])
    right = "".join(shown[col - 1:col + 39])
    prefix = "..." if start else ""
    suffix = "..." if len(shown) > col + 39 else ""
    gutter = f"{line:>4} | "
    return [f"{gutter}{prefix}{left}{right}{suffix}".rstrip(), " " * len(gutter) + " " * len(prefix + left) + "^"]


def render() -> str:
    from archgraph import limits
    from archgraph.lang import expr, source
    from tests.test_bad_cases import COMMANDS

    names = [f"`{name}`" for name in COMMANDS]
    commands = ", ".join(names[:-1]) + " and " + names[-1]

    out = [
        "# Errors",
        "",
        "<!-- Generated from tests/cases/bad by `python -m tests.cases.errors_doc`; edit those, not this page. -->",
        "",
        "Every problem archgraph finds in a spec, or on its command line, is one line on stderr:",
        "",
        "```text",
        "FILE:LINE:COL: error: MESSAGE (hint: HINT)",
        "```",
        "",
        "- `LINE:COL` (1-based) is the key or value at fault. Problems with the command line's options and",
        "  `--set` say `<command line>` instead of a file; a file that cannot be read at all (not found, a",
        "  directory) has no position.",
        "- The hint is there only when there is one to give: a did-you-mean, or how to fix it.",
        "- Every problem found in one pass is reported, one line each, sorted by position. Passes run in",
        "  order (reading, keys and types, expansion, the graph, shapes), and a pass with problems stops",
        "  the later ones.",
        "- The message is one line whatever the spec holds: line breaks and other unprintable characters",
        "  in keys and values are written as escapes (`\\n`).",
        "- The exit status is 2, stdout stays empty and no file is written. Every command that reads a",
        f"  spec ({commands})",
        "  makes the same checks and prints the same lines (tests/test_bad_cases.py runs every case",
        "  below through each of them).",
        "- Exit status 1 is an internal error: `archgraph: internal error: ...`; `archgraph --debug ...`",
        "  shows its traceback. Exit status 130: interrupted (Ctrl-C); no file is written then either.",
        "",
        "From Python, `archgraph.load` and `archgraph.build` raise `archgraph.SpecError` (or `SpecErrors`,",
        "several at once, iterable), whose `str()` is the same lines; `.loc`, `.message` and `.hint` hold",
        "the parts.",
        "",
        "## Bounds",
        "",
        "Nothing in a spec can run code: YAML tags other than the plain types are refused, expressions are",
        "evaluated by a whitelist, and op, block and pattern names are looked up among those registered",
        "(plugins are imported only when named on the command line with `--plugin MODULE`, or installed",
        "under the `archgraph.ops` entry-point group). Nor can a spec make archgraph run out of time or",
        "memory:",
        "",
        "| bound | value | raise it with |",
        "|---|---|---|",
        f"| spec file size | {source.MAX_BYTES // 2**20} MiB | (fixed) |",
        f"| nesting of lists and mappings | {source.MAX_DEPTH} levels | (fixed) |",
        f"| values, aliases expanded | {source.MAX_NODES:,} | (fixed) |",
        f"| expression length; nesting; exponent | {expr.MAX_TEXT:,} characters; {expr.MAX_DEPTH} levels; "
        f"{expr.MAX_EXPONENT} | (fixed) |",
        f"| any count or size in a spec: channels, strides, kernels, repeats, input H and W, ... "
        f"| 1 to {limits.MAX_VALUE:,} | (fixed) |",
        f"| nodes after expansion | {limits.DEFAULT.max_nodes:,} | `--max-nodes N` |",
        f"| edges after expansion | {limits.DEFAULT.max_edges:,} | `--max-edges N` |",
        f"| body blocks, repeats unrolled | {limits.DEFAULT.max_blocks:,} | `--max-blocks N` |",
        f"| parameters of a build (compile, profile `--verify`/`--device`, `archgraph.build`) "
        f"| {limits.DEFAULT.max_params:,} ({limits.DEFAULT.max_params * limits.PARAM_BYTES // 2**30} GiB of float32) "
        "| `--max-params N` |",
        "",
        "The adjustable limits are options of `archgraph` itself (`archgraph --max-nodes 50000 validate",
        "big.yaml`); `--allow-large` lifts all of them. From Python: `archgraph.load(spec,",
        "limits=archgraph.Limits(max_nodes=50_000))`, or `limits=archgraph.Limits.unlimited()`. They are",
        "defined in one place, `archgraph/limits.py`.",
        "",
        "## The checks",
        "",
        "Each check below is a case of tests/cases/bad, shown with what archgraph prints for it and the",
        "line each problem points at.",
        "",
    ]
    for section, title in SECTIONS.items():
        out += [f"- [{title}](#{title.lower().replace(',', '').replace(' ', '-')})"]
    out.append("")
    for section, title in SECTIONS.items():
        out += [f"### {title}", ""]
        by_name = {path.stem: path for path in cases()}
        for stem in [stem for stem, (where, _) in INDEX.items() if where == section and stem in by_name]:
            path = by_name[stem]
            rel = path.relative_to(ROOT).as_posix()
            out += [f"**{INDEX[path.stem][1][0].upper() + INDEX[path.stem][1][1:]}**: [`{path.name}`](../{rel})", ""]
            lines = _source_lines(path)
            shown = ["```text"]
            for line in path.with_suffix(".expected").read_text().splitlines():
                shown.append(line.replace("{file}", path.name))
                where = line.split(": error: ", 1)[0].split(":")
                if len(where) == 3:
                    shown += _pointer(lines, int(where[1]), int(where[2]))
            out += shown + ["```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python -m tests.cases.errors_doc", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)} ({len(cases())} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
