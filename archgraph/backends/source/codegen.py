"""A verified graph as one standalone Python file: a plain ``nn.Module`` with a straight-line forward.

The file is rendered from the jinja2 template ``module.py.j2`` (see :func:`templates_dir`). The
pieces it fills in are built here:

* ``__init__`` builds the same modules as the executor (:mod:`archgraph.backends.torch`), in the
  same order, into the same containers: ``self.nodes[<node>]`` (an ``nn.Sequential`` of the
  body's blocks) and ``self.edges[<to>][<from>]``, both ``nn.ModuleDict``. So ``state_dict``
  keys, shapes and order are the executor's, weights load either way with ``strict=True``, and
  under the same ``torch.manual_seed`` both start from the same weights. Each module is written
  by its op's ``emit`` rule (next to its ``build``), as an expression over ``nn`` and the
  helpers of ``archgraph/ops/_layers.py``.
* ``forward`` is one block per node, in the executor's order: the in-edges' outputs, summed in
  declaration order as the executor does (``y = p0 + p1``, then ``y += p2`` and so on: each
  output dropped once added; with out-of-place adds where the first input adopts its size) or
  concatenated, ReLU after the merge (in place only on a tensor the merge made, as the executor
  does), then the body. Edges that adopt the
  target's size are resized to the size of the first input that has one of its own, edges that
  resize to the network input's size to ``<input>.shape[-2:]`` (forward keeps the input to the
  end: read at run time, so that scripted and exported modules take any size); a guided
  edge (``op: flow_warp``) is called with its source and its guide's variable. Submodules
  are reached as attributes (``self.edges.s2_m0_f0.s2_m0_b1``): no names are looked up while it
  runs.
* the helpers used (``BasicBlock``, ``conv_bn_act``, ...) and what they use are copied verbatim
  from ``_layers.py`` (read as text with :mod:`ast`, so generating never imports torch), inside
  ``# fmt: off``/``# fmt: on`` so that formatters keep them byte-identical to their origin.

Everything that comes from a spec and is not an identifier (docs, file names, parameter values)
is written only into comments, one escaped line at a time (see :func:`comment`); the first two
lines of the file are fixed text, so no spec can smuggle in a PEP 263 coding declaration. The
result is ``ast.parse``-d before it is returned. Lines are laid out to be stable under
``ruff format`` (and black) at line length 88 or more: a call that does not fit is split one
argument per line with a trailing comma.
"""

from __future__ import annotations

import ast
import builtins
import functools
import keyword
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archgraph.ir.graph import ArchGraph, Edge, Node
from archgraph.ops.base import literal
from archgraph.spec.init import LAYERS

LINE = 88  # ruff's and black's default; the layout below is stable at this length and above
INDENT = "    "
TEMPLATE = "module.py.j2"
# names that the generated file binds or uses itself, on top of keywords and builtins
RESERVED = frozenset({"self", "x", "torch", "nn", "F", "size", "annotations"})


# --- templates -----------------------------------------------------------------------------------


@functools.cache
def templates_dir() -> Path:
    """Where ``module.py.j2`` is: the checkout's ``templates/`` or, installed, ``share/archgraph/templates``.

    The source tree comes first (an editable install, or running from a checkout), so that
    edits to ``templates/`` take effect at once; a regular install finds the copy that
    ``pip install`` put under the environment's data directory (pyproject's ``data-files``),
    located through the distribution's file list so that any install scheme works.
    """
    import archgraph

    package = Path(archgraph.__file__).resolve().parent
    checkout = package.parent / "templates"
    if (checkout / TEMPLATE).is_file() and (package.parent / "pyproject.toml").is_file():
        return checkout
    from importlib.metadata import PackageNotFoundError, files

    try:
        installed = files("archgraph") or []
    except PackageNotFoundError:
        installed = []
    for entry in installed:
        parts = Path(str(entry)).parts
        if parts[-4:] == ("share", "archgraph", "templates", TEMPLATE):
            return Path(str(entry.locate())).resolve().parent
    raise FileNotFoundError(f"archgraph's code templates ({TEMPLATE}) are neither in {checkout} nor installed")


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # the output is Python, not HTML: every spec-given text goes through `comment`
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["comment"] = comment
    return env


# --- text that ends up in comments ---------------------------------------------------------------


def clean(text: Any) -> str:
    """One line of printable text: line breaks and other unprintable characters become escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def comment(text: Any, indent: int = 0, width: int = LINE) -> str:
    """``text`` as ``#`` comment lines at ``indent`` spaces, wrapped, every character escaped to print.

    Whatever ``text`` holds (newlines, ``\"\"\"``, NULs), each output line starts with ``#``: a
    comment cannot end before the line does.
    """
    pad = " " * indent
    out = []
    for paragraph in str(text).splitlines() or [""]:
        line = clean(paragraph).rstrip()
        wrapped = textwrap.wrap(line, width=max(20, width - indent - 2), subsequent_indent="  ",
                                break_long_words=False, break_on_hyphens=False) or [""]
        out += [f"{pad}# {part}".rstrip() for part in wrapped]
    return "\n".join(out)


# --- identifiers ---------------------------------------------------------------------------------


class Namer:
    """Legal, unique local names that shadow no keyword, builtin or name the file uses."""

    def __init__(self, reserved: Iterable[str]):
        self.taken = set(reserved) | set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))

    def __call__(self, wish: str) -> str:
        name = re.sub(r"\W", "_", wish) or "v"
        if name[0].isdigit() or name.startswith("__"):
            name = "v" + name  # no leading digit; no leading "__" (class-private names are mangled)
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name


def _member(owner: str, key: str) -> str:
    """``owner.key``, or ``owner["key"]`` where attribute syntax would mangle the name (``__x``)."""
    if key.startswith("__") and not key.endswith("__"):
        return f"{owner}[{literal(key)}]"
    return f"{owner}.{key}"


# --- layout --------------------------------------------------------------------------------------


def _flat(node: ast.AST) -> str:
    """Source for an expression on one line; strings always double-quoted (ruff's and black's choice)."""
    if isinstance(node, ast.Constant):
        return literal(node.value)
    if isinstance(node, ast.Call):
        items = [_flat(a) for a in node.args] + [f"{k.arg}={_flat(k.value)}" for k in node.keywords]
        return f"{_flat(node.func)}({', '.join(items)})"
    if isinstance(node, ast.Starred):
        return "*" + _flat(node.value)
    if isinstance(node, ast.Attribute):
        return f"{_flat(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        return f"{_flat(node.value)}[{_flat(node.slice)}]"
    if isinstance(node, ast.List):
        return "[" + ", ".join(_flat(e) for e in node.elts) + "]"
    if isinstance(node, ast.Dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in zip(node.keys, node.values)) + "}"  # type: ignore[arg-type]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return f"{_flat(node.left)} + {_flat(node.right)}"
    return ast.unparse(node)  # names, slices of numbers: nothing to normalise


def _layout(prefix: str, node: ast.AST, indent: int, suffix: str = "") -> list[str]:
    """``prefix + node + suffix`` at ``indent``: one line if it fits, else split at the last call/list/dict."""
    pad = " " * indent
    line = f"{pad}{prefix}{_flat(node)}{suffix}"
    if len(line) <= LINE:
        return [line]
    if isinstance(node, ast.Starred):
        return _layout(prefix + "*", node.value, indent, suffix)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.Call):
        return _layout(f"{prefix}{_flat(node.left)} + ", node.right, indent, suffix)  # split the last call
    if isinstance(node, ast.Call) and (node.args or node.keywords):
        head, close = _flat(node.func) + "(", ")"
        items = [("", a) for a in node.args] + [(f"{k.arg}=", k.value) for k in node.keywords]
    elif isinstance(node, ast.List) and node.elts:
        head, close, items = "[", "]", [("", e) for e in node.elts]
    elif isinstance(node, ast.Dict) and node.keys:
        head, close = "{", "}"
        items = [(_flat(k) + ": ", v) for k, v in zip(node.keys, node.values)]  # type: ignore[arg-type]
    else:
        return [line]  # nothing to split: ruff leaves it long too
    out = [f"{pad}{prefix}{head}"]
    for item_prefix, item in items:
        out += _layout(item_prefix, item, indent + 4, ",")  # the magic trailing comma keeps it split
    out.append(f"{pad}{close}{suffix}")
    return out


def statement(code: str, indent: int) -> list[str]:
    """One simple statement (``target = expression``, ``target += expression``, ``return expression`` or a
    call), laid out."""
    stmt = ast.parse(code).body[0]
    if isinstance(stmt, ast.Assign):
        target = " = ".join(_flat(t) for t in stmt.targets) + " = "
        lines = _layout(target, stmt.value, indent)
        if len(lines) > 1 and len(lines[0]) > LINE:  # even the head is too long: ruff parenthesizes the value
            lines = [f"{' ' * indent}{target}(", *_layout("", stmt.value, indent + 4), f"{' ' * indent})"]
        return lines
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add):
        target = f"{_flat(stmt.target)} += "
        lines = _layout(target, stmt.value, indent)
        if len(lines) > 1 and len(lines[0]) > LINE:
            lines = [f"{' ' * indent}{target}(", *_layout("", stmt.value, indent + 4), f"{' ' * indent})"]
        return lines
    if isinstance(stmt, ast.Return) and stmt.value is not None:
        return _layout("return ", stmt.value, indent)
    if isinstance(stmt, ast.Expr):
        return _layout("", stmt.value, indent)
    return [" " * indent + ast.unparse(stmt)]


# --- the helpers of ops/_layers.py ---------------------------------------------------------------


@dataclass(frozen=True)
class Helper:
    names: tuple[str, ...]  # what it binds at module level
    text: str  # its source, verbatim
    uses: frozenset[str]  # the names it reads
    imports: bool  # an import statement (goes to the file's import block)
    params: tuple[str, ...] = ()  # a function's (or a class's __init__'s) parameters, self excluded
    defaults: tuple[tuple[str, Any], ...] = ()  # (parameter, default) for those that have a literal default


def _signature(stmt: ast.stmt) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    fn = stmt
    if isinstance(stmt, ast.ClassDef):
        fn = next((s for s in stmt.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
    if not isinstance(fn, ast.FunctionDef) or fn.args.vararg or fn.args.kwonlyargs or fn.args.posonlyargs:
        return (), ()
    args = [a.arg for a in fn.args.args]
    if isinstance(stmt, ast.ClassDef):
        args = args[1:]
    defaults = []
    for arg, default in zip(args[len(args) - len(fn.args.defaults):], fn.args.defaults):
        try:
            defaults.append((arg, ast.literal_eval(default)))
        except ValueError:
            pass
    return tuple(args), tuple(defaults)


@functools.cache
def layer_helpers() -> tuple[Helper, ...]:
    """The top-level statements of ``archgraph/ops/_layers.py``, in file order, read without importing it."""
    from archgraph import ops

    path = Path(ops.__file__).resolve().parent / "_layers.py"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    helpers = []
    for stmt in ast.parse(text).body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the module docstring
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            continue
        start = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
        source = "\n".join(lines[start - 1:stmt.end_lineno])
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names = tuple((a.asname or a.name).split(".")[0] for a in stmt.names)
        elif isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            names = (stmt.name,)
        else:
            names = tuple(n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
        uses = frozenset(n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
        helpers.append(Helper(names, source, uses, isinstance(stmt, (ast.Import, ast.ImportFrom)), *_signature(stmt)))
    return tuple(helpers)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class _DropDefaults(ast.NodeTransformer):
    """Leave out the arguments of helper calls that equal the helper's defaults (``stride=1``, ...).

    The helper is copied into the generated file with its defaults, so the call means the same;
    ``conv_bn_act(256, 18, 3)`` reads better than ``conv_bn_act(256, 18, 3, 1, None, bias=False, ...)``.
    """

    def __init__(self) -> None:
        self.signatures = {h.names[0]: h for h in layer_helpers() if h.params}

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        helper = self.signatures.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if helper is None or any(isinstance(a, ast.Starred) for a in node.args):
            return node
        defaults = dict(helper.defaults)

        def default(param: str, value: ast.expr) -> bool:
            return isinstance(value, ast.Constant) and param in defaults and _same(value.value, defaults[param])

        keywords = [k for k in node.keywords if not (k.arg and default(k.arg, k.value))]
        given = {k.arg for k in keywords}
        args = list(node.args)
        # a trailing positional argument can go if it is the default, and no keyword depends on its position
        while args and len(args) <= len(helper.params) and default(helper.params[len(args) - 1], args[-1]):
            args.pop()
        if given & set(helper.params[:len(args)]):
            return node  # would be an error anyway; leave it for Python to report
        node.args, node.keywords = args, keywords
        return node


def _needed(uses: set[str]) -> tuple[list[str], list[str]]:
    """(import lines, helper sources) for the names in ``uses``, closed over what the helpers use."""
    helpers = layer_helpers()
    by_name = {name: h for h in helpers for name in h.names}
    wanted, todo = set(), [n for n in uses if n in by_name]
    while todo:
        h = by_name[todo.pop()]
        if h not in wanted:
            wanted.add(h)
            todo += [n for n in h.uses if n in by_name]
    imports = [h.text for h in helpers if h in wanted and h.imports]
    return imports, [h.text for h in helpers if h in wanted and not h.imports]


# --- the module ----------------------------------------------------------------------------------


def _squash(tags: list[str]) -> str:
    """['basic', 'basic', 'conv'] -> 'basic x2, conv'."""
    runs: list[list] = []
    for tag in tags:
        if runs and runs[-1][0] == tag:
            runs[-1][1] += 1
        else:
            runs.append([tag, 1])
    return ", ".join(tag if n == 1 else f"{tag} x{n}" for tag, n in runs)


def _loc(thing: Node | Edge | None) -> str:
    """Where a node or edge is in its spec, as one printable line (file names can hold anything)."""
    return clean(thing.origin.loc()) if thing is not None and thing.origin is not None else "<unknown>"


def _declared_with(edge: Edge, node: Node) -> bool:
    """True if the edge comes from the node's own entry in the spec (its ``from:`` or the same pattern)."""
    if edge.origin is None or node.origin is None:
        return edge.origin is None
    n = len(node.origin.path)
    return edge.origin.source is node.origin.source and edge.origin.path[:n] == node.origin.path


def class_name(graph: ArchGraph) -> str:
    """The generated class's name: the spec's name, unless the file needs that name for something else."""
    helper_names = {n for h in layer_helpers() for n in h.names}
    name = graph.name
    while name in RESERVED or name in helper_names or keyword.iskeyword(name) or hasattr(builtins, name):
        name += "_"
    return name


class _Writer:
    def __init__(self, graph: ArchGraph):
        self.graph = graph
        helper_names = {n for h in layer_helpers() for n in h.names}
        self.cls = class_name(graph)
        self.names = Namer(RESERVED | helper_names | {self.cls})
        self.var = {graph.input.name: self.names(graph.input.name)}
        for name in graph.order:
            self.var[name] = self.names(name)
        self.uses: set[str] = set()  # global names the emitted code reads
        self.edge_modules: set[tuple[str, str]] = set()  # (to, from) of the edges with a module
        self.last_use: dict[str, str] = {}  # tensor -> the node whose step reads it last (as the executor's plan)
        for name in graph.order:
            for src in graph.reads(name):
                self.last_use[src] = name

    def expression(self, code: str) -> str:
        """An op's ``emit`` result, checked to be one expression, with default arguments left out."""
        tree = _DropDefaults().visit(ast.parse(code, mode="eval"))
        self.uses |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        return _flat(tree.body)

    # __init__ ---------------------------------------------------------------------------------

    def init_block(self, name: str) -> list[str]:
        graph, node = self.graph, self.graph.nodes[name]
        lines: list[str] = []
        pad = 2 * len(INDENT)
        if node.body:
            blocks = [self.expression(b.emit(c)) for b, c in zip(node.body, graph.body_channels(name))]
            lines += [f"{' ' * pad}self.nodes[{literal(name)}] = nn.Sequential(",
                      *(line for b in blocks for line in _layout("", ast.parse(b, mode="eval").body, pad + 4, ",")),
                      f"{' ' * pad})"]
        edges = []
        for edge in graph.in_edges(name):
            c_in, c_out = graph.edge_channels(edge)
            code = edge.op.emit(c_in, c_out, graph.stride(edge.src), graph.types[name].arrival_stride,
                                **graph.guide_args(edge))
            if code is not None:
                edges.append((edge, self.expression(code)))
                self.edge_modules.add((name, edge.src))
        if edges:
            lines += statement(f"self.edges[{literal(name)}] = nn.ModuleDict()", pad)
            for edge, code in edges:
                lines += statement(f"self.edges[{literal(name)}][{literal(edge.src)}] = {code}", pad)
        if not lines:
            return []
        return [comment(f"{name}: stride {node.stride}, {node.channels} channels ({_loc(node)})", pad), *lines]

    def init_rules(self) -> list[str]:
        """The spec's init rules as the reference codes write them: a loop over the built layers."""
        if not self.graph.init:
            return []
        pad = 2 * len(INDENT)
        lines = [comment("The spec's init rules; other layers keep PyTorch's defaults.", pad),
                 f"{' ' * pad}for m in self.modules():"]
        for k, rule in enumerate(self.graph.init):
            lines.append(f"{' ' * (pad + 4)}{'if' if k == 0 else 'elif'} isinstance(m, nn.{LAYERS[rule.layers]}):")
            lines += statement(_init_call(*rule.weight_init(), "m.weight"), pad + 8)
            if (bias := rule.bias_init()) is not None:
                lines.append(f"{' ' * (pad + 8)}if m.bias is not None:")
                lines += statement(_init_call(*bias, "m.bias"), pad + 12)
        return lines

    # forward ----------------------------------------------------------------------------------

    def forward_block(self, name: str) -> list[str]:
        graph, node = self.graph, self.graph.nodes[name]
        pad = 2 * len(INDENT)
        out = self.var[name]
        edges = graph.in_edges(name)
        modules = {src for dst, src in self.edge_modules if dst == name}  # init_block(name) ran first
        code: list[str] = []

        def call(edge: Edge, *args: str) -> str:
            module = _member(_member("self.edges", name), edge.src)
            guide = (self.var[edge.guide],) if edge.guide is not None else ()  # a guided edge: module(x, guide)
            return f"{module}({', '.join((self.var[edge.src], *guide, *args))})"

        input_size = f"{self.var[graph.input.name]}.shape[-2:]"  # never deleted: see `done` below
        parts = [call(e, input_size) if e.op.takes_input_size
                 else call(e) if e.src in modules and not e.op.adopts_size else self.var[e.src] for e in edges]
        temporaries: list[str] = []
        incremental = graph.sums_as_it_goes(name)
        if incremental:
            # the executor's _sum: each output added as it comes (the first add a new tensor, the
            # later ones in place into it), and dropped once added
            if any(e.op.adopts_size for e in edges):
                if edges[0].src in modules:  # its output is needed twice: for the sum and for its size
                    code += statement(f"{out} = {parts[0]}", pad)
                    parts[0] = out
                size = self.names(f"{name}_size")
                code += statement(f"{size} = {parts[0]}.shape[-2:]", pad)
                parts = [call(e, size) if e.op.adopts_size else p for e, p in zip(edges, parts)]
            if len(parts) > 2 and parts[0] != out and len(f"{' ' * pad}{out} = {parts[0]} + {parts[1]}") > LINE:
                code += statement(f"{out} = {parts[0]}", pad)  # one input per line, as the executor does
                parts[0] = out
            code += statement(f"{out} = {parts[0]} + {parts[1]}", pad)
            for part in parts[2:]:
                code += statement(f"{out} += {part}", pad)
        elif any(e.op.adopts_size for e in edges):
            first = next(k for k, e in enumerate(edges) if not e.op.adopts_size)
            if edges[first].src in modules:  # its output is needed twice: for the sum and for its size
                tmp = self.names(f"{name}_{edges[first].src}")
                code += statement(f"{tmp} = {parts[first]}", pad)
                parts[first] = tmp
            size = self.names(f"{name}_size")
            code += statement(f"{size} = {parts[first]}.shape[-2:]", pad)
            parts = [call(e, size) if e.op.adopts_size else p for e, p in zip(edges, parts)]
            temporaries = [parts[first]] if edges[first].src in modules else []
        concat = node.merge == "concat" and len(parts) > 1  # one input: that tensor, not a copy
        fresh = len(parts) > 1 or edges[0].src in modules
        if incremental:
            pass  # summed above
        elif node.act == "relu" and not fresh:  # another node's tensor: never modify it in place
            code += statement(f"{out} = torch.relu({parts[0]})", pad)
        elif concat:
            code += statement(f"{out} = torch.cat([{', '.join(parts)}], 1)", pad)
        elif len(f"{' ' * pad}{out} = {' + '.join(parts)}") <= LINE or len(parts) <= 2:
            code += statement(f"{out} = {' + '.join(parts)}", pad)
        else:  # _merge's loop, one input per line: y = y + t
            code += statement(f"{out} = {parts[0]}", pad)
            for part in parts[1:]:
                code += statement(f"{out} = {out} + {part}", pad)
        if node.act == "relu" and fresh:  # a tensor the merge made: in place, as the executor does
            code += statement(f"{out} = torch.relu_({out})", pad)
        if node.body:
            code += statement(f"{out} = {_member('self.nodes', name)}({out})", pad)
        if len(code) == 2 and node.body and not fresh and node.act != "relu":
            # a lone identity input straight into the body: one line
            code = statement(f"{out} = {_member('self.nodes', name)}({parts[0]})", pad)
        # drop what no later step reads, as the executor does: straight-line code would otherwise hold
        # every node's tensor until forward returns (the input stays: the caller holds it anyway)
        done = temporaries + [self.var[src] for src in graph.reads(name) if self.last_use[src] == name
                              and src not in graph.outputs and src != graph.input.name]
        if done:
            line = f"{' ' * pad}del {', '.join(done)}"
            code += [line] if len(line) <= LINE else [f"{' ' * pad}del {v}" for v in done]
        return [comment(self.describe(name), pad), *code]

    def describe(self, name: str) -> str:
        """'node s2_m0_f0 = relu(s2_m0_b0 + upsample(s2_m0_b1)) (specs/hrnet.yaml:64:5)'."""
        graph, node = self.graph, self.graph.nodes[name]
        edges = graph.in_edges(name)
        parts = [e.src if e.op.tag == "identity" else f"{e.op.tag}({e.src}{f', guide={e.guide}' if e.guide else ''})"
                 for e in edges]
        merged = f"concat({', '.join(parts)})" if node.merge == "concat" else " + ".join(parts)
        if node.act == "relu":
            merged = f"relu({merged})"
        text = f"node {name} = {merged}"
        if node.body:
            text += f", then {_squash([b.tag for b in node.body])}"
        text += f" ({_loc(node)})"
        for edge in edges:
            if not _declared_with(edge, node) and _loc(edge) != _loc(node):
                text += f"\n  edge {edge.src} -> {name}: {_loc(edge)}"
        return text

    def returns(self) -> tuple[str, list[str]]:
        outputs = self.graph.outputs
        pad = 2 * len(INDENT)
        if len(outputs) == 1:
            return "torch.Tensor", statement(f"return {self.var[outputs[0]]}", pad)
        pairs = ", ".join(f"{literal(n)}: {self.var[n]}" for n in outputs)
        return "dict[str, torch.Tensor]", statement(f"return {{{pairs}}}", pad)


def _init_call(function: str, keywords: dict[str, Any], tensor: str) -> str:
    arguments = "".join(f", {k}={literal(v)}" for k, v in keywords.items())
    return f"nn.init.{function}({tensor}{arguments})"


def spec_file(graph: ArchGraph) -> str:
    for thing in (graph.input_origin, *(n.origin for n in graph.nodes.values())):
        if thing is not None:
            return thing.source.file
    return "<unknown>"


def generate(graph: ArchGraph) -> str:
    """The source of a standalone PyTorch module for a verified graph (deterministic: same graph, same bytes)."""
    if not graph.order:
        raise ValueError("generate needs a verified graph (archgraph.load, or ir.verify)")
    w = _Writer(graph)
    init = [block for name in graph.order if (block := w.init_block(name))]
    if rules := w.init_rules():
        init.append(rules)
    forward = [w.forward_block(name) for name in graph.order]
    returns, ret = w.returns()
    w.uses |= {"torch", "nn"}  # the class and forward use both
    imports, helpers = _needed(w.uses)
    params = ", ".join(f"{k}={v!r}" for k, v in graph.params.items()) or "none"
    outputs = ", ".join(graph.outputs)
    text = _environment().get_template(TEMPLATE).render(
        cls=w.cls,
        spec=clean(spec_file(graph)),
        params=params,
        doc=graph.doc.strip(),
        input=graph.input,
        input_var=w.var[graph.input.name],
        outputs=outputs,
        n_nodes=len(graph.nodes),
        n_edges=len(graph.edges),
        imports=imports,
        helpers=helpers,
        init=init,
        forward=forward,
        returns=returns,
        ret=ret,
    )
    ast.parse(text)  # a template or a rule that writes broken Python fails here, not in the user's hands
    return text
