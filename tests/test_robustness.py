"""Limits, code injection, plugins and interrupted runs.

Oracles: archgraph/limits.py's documented defaults (10,000 nodes, 40,000 edges, 100,000 blocks,
2**31 parameters = 8 GiB of float32, every count at most 65536), parameter counts worked out by
hand, the installed torch's nn.ModuleDict (for names a node cannot take), and the package's
own source text (for what it never calls).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archgraph
from archgraph.cli import app
from archgraph.errors import SpecError
from archgraph.limits import DEFAULT, MAX_VALUE, LimitExceeded, Limits, parameter_count

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "archgraph"


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result


def wide(width: int, nodes: int = 1) -> str:
    """A chain of 3x3 convs at ``width``: (9 * width**2 + 2 * width) parameters per node after the first."""
    lines = ["archgraph: 1", "name: wide", "input: {size: [8, 8]}", "nodes:",
             f"  - {{name: n0, stride: 1, channels: {width}, from: image, body: [{{block: conv, channels: {width}}}]}}"]
    for i in range(1, nodes):
        lines.append(f"  - {{name: n{i}, stride: 1, channels: {width}, from: n{i - 1}, "
                     f"body: [{{block: conv, channels: {width}}}]}}")
    lines[-1] = lines[-1][:-1] + ", output: true}"
    return "\n".join(lines) + "\n"


# --- limits ------------------------------------------------------------------------------------------


def test_the_defaults():
    assert DEFAULT == Limits(max_nodes=10_000, max_edges=40_000, max_blocks=100_000, max_params=2**31)
    assert MAX_VALUE == 65536
    assert Limits.unlimited() == Limits(None, None, None, None)
    assert archgraph.Limits is Limits


def test_parameter_count_is_the_built_modules(tmp_path):
    spec = tmp_path / "w.yaml"
    spec.write_text(wide(16, 3))
    graph = archgraph.load(spec)
    # n0: conv 3->16 (432) + BN (32); n1, n2: conv 16->16 (2304) + BN (32)
    assert parameter_count(graph) == 464 + 2 * 2336
    import torch

    with torch.device("meta"):
        assert sum(p.numel() for p in archgraph.build(graph).parameters()) == parameter_count(graph)


def test_build_refuses_over_the_parameter_limit_before_allocating(tmp_path):
    spec = tmp_path / "w.yaml"
    spec.write_text(wide(16, 3))
    with pytest.raises(LimitExceeded) as info:
        archgraph.build(spec, limits=Limits(max_params=5000))
    assert str(info.value) == (f"{spec}:2:7: error: building 'wide' would allocate 20.1 KiB for its 5,136 parameters "
                               "(float32), over the limit of 19.5 KiB (5,000 parameters) (hint: to build it anyway: "
                               "--max-params N or --allow-large (API: limits=Limits(max_params=N)))")
    assert archgraph.build(spec, limits=Limits(max_params=5136)) is not None
    assert archgraph.build(spec, limits=Limits.unlimited()) is not None


def test_a_network_over_8_gib_is_refused_by_default_and_built_on_purpose(tmp_path):
    # 10 nodes of 3x3 convs with BN at 65536 channels, the first from 3 channels: 1.3 TiB of float32
    count = (3 * 9 * 65536 + 2 * 65536) + 9 * (9 * 65536**2 + 2 * 65536)
    assert count == 347_895_431_168
    spec = tmp_path / "huge.yaml"
    spec.write_text(wide(65536, 10))
    assert run("validate", str(spec)).exit_code == 0  # nothing is allocated: a valid spec
    for command in (["compile"], ["compile", "--device", "cpu"], ["profile", "--verify"],
                    ["compile", "--target", "source", "-o", str(tmp_path / "huge.py")]):
        result = run(command[0], str(spec), *command[1:])
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith(f"{spec}:2:7: error: building 'wide' would allocate 1.3 TiB for its "
                                        f"{count:,} parameters (float32), over the limit of 8.0 GiB")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.yaml"]
    with pytest.raises(LimitExceeded):
        archgraph.build(spec)
    assert run("profile", str(spec)).exit_code == 0  # counting allocates nothing either
    # on purpose, on the meta device (which allocates nothing): --allow-large, or a --max-params above it
    for flags in (["--allow-large"], ["--max-params", str(count)]):
        result = run(*flags, "compile", str(spec))
        assert result.exit_code == 0, result.stderr
        assert f"{count:,} parameters (built on meta)" in result.stdout
    assert run("--max-params", str(count - 1), "compile", str(spec)).exit_code == 2


def test_node_and_edge_limits_can_be_raised_on_purpose(tmp_path):
    spec = tmp_path / "chain.yaml"
    spec.write_text(wide(4, 30))
    result = run("--max-nodes", "20", "validate", str(spec))
    assert result.exit_code == 2
    assert result.stderr == (f"{spec}:25:5: error: the network has more than 20 nodes after expansion, the limit "
                             "(hint: to go further on purpose: --max-nodes N or --allow-large (API: "
                             "limits=Limits(max_nodes=N)))\n")  # at the 21st node (line 25)
    assert run("--max-nodes", "30", "validate", str(spec)).exit_code == 0
    assert run("--max-edges", "29", "validate", str(spec)).exit_code == 2  # 30 from: edges
    assert run("--max-edges", "30", "validate", str(spec)).exit_code == 0
    with pytest.raises(LimitExceeded, match="more than 20 nodes"):
        archgraph.load(spec, limits=Limits(max_nodes=20))
    assert len(archgraph.load(spec, limits=Limits(max_nodes=30)).nodes) == 30


def test_a_pattern_stops_at_the_limit_rather_than_writing_everything(tmp_path):
    import time

    spec = tmp_path / "stage.yaml"
    spec.write_text("archgraph: 1\nname: big\nnodes:\n"
                    "  - {name: stem, stride: 4, channels: 8, from: image, body: [{block: conv, channels: 8, "
                    "stride: 4}]}\n"
                    "  - {use: multires_stage, name: s2, from: stem, widths: [8, 16, 32, 64], modules: 65536, "
                    "blocks: 65536}\n")
    start = time.perf_counter()
    result = run("validate", str(spec))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{spec}:5:5: error: the network has more than 10,000 nodes after expansion")
    assert time.perf_counter() - start < 10  # 65536 modules would be 524,288 nodes and 1.2 million edges


def test_limits_from_the_api_do_not_leak_into_the_cli(tmp_path):
    spec = tmp_path / "chain.yaml"
    spec.write_text(wide(4, 30))
    assert run("--max-nodes", "20", "validate", str(spec)).exit_code == 2
    assert run("validate", str(spec)).exit_code == 0  # the next command has the defaults again


@pytest.mark.parametrize("value, message", [
    ("65536", "node 'a' declares 65536 channels but its body gives 4"),  # within the bound: checked further
    ("65537", "'channels' must be <= 65536, got 65537"),
    ("0", "'channels' must be >= 1, got 0"),
    ("'2**16 + 1'", "'channels' must be <= 65536, got 65537 (from '2**16 + 1')"),
    ("true", "'channels' must be an integer, got true"),
])
def test_channel_bounds(tmp_path, value, message):
    spec = tmp_path / "c.yaml"
    spec.write_text(f"archgraph: 1\nname: c\nnodes:\n  - {{name: a, stride: 1, channels: {value}, from: image, "
                    "body: [{block: conv, channels: 4}], output: true}\n")
    with pytest.raises(SpecError) as info:
        archgraph.load(spec)
    assert info.value.message == message
    assert str(info.value).startswith(f"{spec}:4:")


# --- no code from a spec -------------------------------------------------------------------------------

# (file, what) -> why it is allowed; everything else that could run code is forbidden in the package
ALLOWED = {
    ("archgraph/ops/registry.py", "importlib.import_module"):
        "discovery of archgraph's own op modules, and --plugin modules named on the command line",
    ("archgraph/backends/source/export.py", "exec"): "runs the source archgraph generated (identifiers checked, "
                                                     "spec text only in comments), to check and export it",
    ("archgraph/backends/source/export.py", "compile"): "the same: compiles that generated source",
    ("archgraph/weights/__init__.py", "importlib.import_module"): "archgraph's own key-mapping modules, by fixed name",
    ("archgraph/weights/checkpoint.py", "torch.load"): "a checkpoint named on the command line, read with "
                                                       "weights_only=True: no pickled code runs",
    ("archgraph/weights/checkpoint.py", "pickle"): "for pickle.UnpicklingError, which torch.load raises",
}
CALLS = {"eval", "exec", "compile", "breakpoint", "input"}  # builtins, when called
DOTTED = {"importlib.import_module", "os.system", "os.popen", "os.execv", "os.execvp", "os.spawnv", "yaml.load",
          "yaml.unsafe_load", "yaml.full_load", "torch.load", "pickle.load", "pickle.loads"}
MODULES = {"subprocess", "pickle", "marshal", "shelve", "runpy", "ctypes", "code", "pty"}


def _code_tokens(path: Path) -> list[tokenize.TokenInfo]:
    skip = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    if sys.version_info >= (3, 12):
        skip |= {tokenize.FSTRING_START, tokenize.FSTRING_MIDDLE, tokenize.FSTRING_END}
    with open(path, "rb") as f:
        return [t for t in tokenize.tokenize(f.readline) if t.type not in skip and t.type != tokenize.ENCODING]


def dangerous_calls(path: Path) -> list[tuple[str, int]]:
    """(what, line) for every call that could run code or a shell, in the code (not strings, not comments)."""
    tokens = _code_tokens(path)
    found = []
    for i, t in enumerate(tokens):
        before = tokens[i - 1].string if i else ""
        after = tokens[i + 1].string if i + 1 < len(tokens) else ""
        if t.type == tokenize.NAME and t.string in CALLS and after == "(" and before not in (".", "def"):
            found.append((t.string, t.start[0]))
        if t.type == tokenize.NAME and t.string in MODULES and before in ("import", "from"):
            found.append((t.string, t.start[0]))
        if t.type == tokenize.NAME and i + 2 < len(tokens) and tokens[i + 1].string == "." and before != ".":
            dotted = f"{t.string}.{tokens[i + 2].string}"
            if dotted in DOTTED:
                found.append((dotted, t.start[0]))
        if t.type == tokenize.NAME and t.string == "__import__":
            found.append(("__import__", t.start[0]))
    return found


def test_the_scanner_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import subprocess\nx = eval('1')  # eval( in a comment\ns = 'exec(1)'\nm.eval()\n"
                      "importlib.import_module(name)\nos.system('ls')\ndef compile(): pass\ny = __import__('os')\n")
    assert dangerous_calls(sample) == [("subprocess", 1), ("eval", 2), ("importlib.import_module", 5),
                                       ("os.system", 6), ("__import__", 8)]


def test_nothing_in_the_package_runs_code_from_a_spec():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for what, line in dangerous_calls(path):
            if (rel, what) not in ALLOWED:
                found.setdefault(f"{rel}:{line}", what)
    assert not found, f"calls that could run code: {found}"


def test_checkpoints_are_read_without_running_pickled_code():
    for path in sorted(PACKAGE.rglob("*.py")):
        tokens = [t.string for t in _code_tokens(path)]
        for i in range(len(tokens) - 3):
            if tokens[i:i + 4] == ["torch", ".", "load", "("]:
                depth, j = 0, i + 3
                while True:  # to the call's closing parenthesis
                    depth += (tokens[j] in ("(", "[", "{")) - (tokens[j] in (")", "]", "}"))
                    if not depth:
                        break
                    j += 1
                assert "weights_only=True" in "".join(tokens[i:j]), f"{path}: torch.load without weights_only=True"


def test_generated_source_is_run_only_after_it_is_generated():
    """export.py's exec runs the output of codegen, never spec text: only load_source calls it."""
    source = (PACKAGE / "backends" / "source" / "export.py").read_text()
    assert source.count("exec(") == 1
    body = source.split("def load_source", 1)[1].split("\ndef ", 1)[0]
    assert "exec(compile(source" in body


def test_node_names_that_torch_uses_are_rejected_and_the_list_is_complete():
    from torch import nn

    from archgraph.ir.verify import MODULE_ATTRIBUTES, reserved_name

    attributes = {a for a in dir(nn.ModuleDict()) if not (a.startswith("__") and a.endswith("__"))}
    assert attributes <= MODULE_ATTRIBUTES, f"torch has new attributes: {sorted(attributes - MODULE_ATTRIBUTES)}"
    assert all(reserved_name(a) for a in dir(nn.ModuleDict()))
    assert not reserved_name("stem") and not reserved_name("s2_m0_b0") and not reserved_name("_stem")


# --- plugins -------------------------------------------------------------------------------------------

PLUGIN = '''
"""A test plugin: the 'double' block, x -> 2x. It leaves a mark when it is imported."""
import os
from pathlib import Path
from typing import Literal

from archgraph.ops import BlockOp, register

Path(os.environ["PLUGIN_MARK"]).write_text("imported")


@register
class Double(BlockOp):
    """Multiply by two (a test plugin)."""

    block: Literal["double"] = "double"

    def out_channels(self, c_in):
        return c_in

    def build(self, c_in):
        from torch import nn

        class Double(nn.Module):
            def forward(self, x):
                return 2 * x

        return Double()
'''
USES_IT = """archgraph: 1
name: plugged
doc: "plugin: tinyplug"
nodes:
  - {name: stem, stride: 1, channels: 3, from: image, output: true, body: [{block: double}]}
"""
SESSION = """
import json, sys
from typer.testing import CliRunner
from archgraph.cli import app
results = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(app, args)
    results.append([r.exit_code, r.stdout, r.stderr])
print(json.dumps(results))
"""


def test_plugins_come_from_the_command_line_only(tmp_path):
    (tmp_path / "tinyplug.py").write_text(PLUGIN)
    spec = tmp_path / "plugged.yaml"
    spec.write_text(USES_IT)
    mark = tmp_path / "mark"
    sessions = [
        ["validate", str(spec)],  # first without: the spec names the module, but nothing imports it
        ["--plugin", "tinyplug", "validate", str(spec)],
        ["--plugin", "tinyplug", "ops"],
        ["--plugin", "tinyplug", "compile", str(spec)],
        ["--plugin", "no_such_plugin", "validate", str(spec)],
        ["--plugin", "os; rm -rf /", "validate", str(spec)],
    ]
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "PLUGIN_MARK": str(mark), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-c", SESSION, json.dumps(sessions[:1])], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120, check=True)
    [(code, _, err)] = json.loads(proc.stdout)
    col = USES_IT.splitlines()[4].index("double") + 1
    assert code == 2 and err.startswith(f"{spec}:5:{col}: error: unknown block 'double'")
    assert not mark.exists()
    proc = subprocess.run([sys.executable, "-c", SESSION, json.dumps(sessions[1:])], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120, check=True)
    validated, listed, compiled, missing, bad_name = json.loads(proc.stdout)
    assert mark.read_text() == "imported"
    assert validated[0] == 0 and validated[1] == f"{spec}: ok: plugged, 1 nodes, 1 edges; input 3x224x224 -> stem " \
                                                 "3x224x224\n"
    assert listed[0] == 0 and " double " in listed[1] and "Multiply by two" in listed[1]
    assert compiled[0] == 0 and "plugged: 1 nodes, 1 edges, 0 parameters (built on meta)" in compiled[1]
    assert missing[0] == 2 and missing[2] == ("<command line>: error: plugin module 'no_such_plugin' not found (hint: "
                                              "is its package installed, or its folder on PYTHONPATH?)\n")
    assert bad_name[0] == 2 and bad_name[2].startswith(
        "<command line>: error: --plugin expects a Python module name, got 'os; rm -rf /'")


def test_installed_packages_register_ops_through_the_entry_point_group(tmp_path):
    """A package installed with an ``archgraph.ops`` entry point is imported by discovery, no --plugin needed."""
    (tmp_path / "tinyplug.py").write_text(PLUGIN)
    info = tmp_path / "tinyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[archgraph.ops]\ndouble = tinyplug\n")
    spec = tmp_path / "plugged.yaml"
    spec.write_text(USES_IT)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "PLUGIN_MARK": str(tmp_path / "mark")}
    proc = subprocess.run([sys.executable, "-m", "archgraph.cli", "validate", str(spec)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{spec}: ok: plugged")


def test_a_failing_plugin_is_a_command_line_error(tmp_path):
    (tmp_path / "brokenplug.py").write_text("raise RuntimeError('half-written plugin')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    proc = subprocess.run([sys.executable, "-m", "archgraph.cli", "--plugin", "brokenplug", "ops"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr == ("<command line>: error: plugin 'brokenplug' failed to load: RuntimeError: half-written "
                           "plugin (hint: rerun with --debug for its traceback)\n")


# --- interrupted and failed runs write nothing ------------------------------------------------------------


def test_an_interrupted_profile_leaves_no_file(tmp_path, monkeypatch):
    from archgraph.analysis import cost

    calls = []
    real = cost.profile

    def slow_profile(*args, **kwargs):  # the second variant is interrupted (Ctrl-C), after the first is done
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(cost, "profile", slow_profile)
    target = tmp_path / "report.json"
    result = run("profile", "specs/hrnet.yaml", "--set", "width=18,32", "--json", "-o", str(target))
    assert result.exit_code == 130
    assert result.stderr == "interrupted\n"
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []
    target.write_text("an older report")
    calls.clear()
    assert run("profile", "specs/hrnet.yaml", "--set", "width=18,32", "-o", str(target)).exit_code == 130
    assert target.read_text() == "an older report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_profile_writes_its_report_to_a_file(tmp_path):
    target = tmp_path / "report.json"
    result = run("profile", "specs/hrnet.yaml", "--set", "width=18", "--json", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert json.loads(target.read_text())["variants"][0]["profile"]["total"]["params"] == 21_299_004
    table = tmp_path / "report.txt"
    assert run("profile", "specs/hrnet.yaml", "--set", "width=18", "-o", str(table)).exit_code == 0
    assert "21,299,004 parameters" in table.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.txt"]


def test_every_file_the_package_writes_goes_through_write_atomic():
    """Outside archgraph/io.py, nothing opens a file for writing or writes one directly."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "io.py":
            continue
        tokens = _code_tokens(path)
        for i, t in enumerate(tokens):
            if t.type != tokenize.NAME:
                continue
            window = "".join(x.string for x in tokens[i:i + 12])
            if t.string in ("write_text", "write_bytes") and tokens[i - 1].string == ".":
                found.append(f"{path.name}:{t.start[0]} {t.string}")
            if t.string == "open" and tokens[i + 1].string == "(" and any(m in window for m in ("'w", '"w', "'a", '"a',
                                                                                                "'x", '"x')):
                found.append(f"{path.name}:{t.start[0]} open for writing")
            if t.string in ("save", "export") and tokens[i - 1].string == "." and '"' in window:
                found.append(f"{path.name}:{t.start[0]} {t.string} to a path")
    assert not found, found
    # and the commands that write call it, through the command line's write_output: expand, compile --target,
    # profile, render, weights import
    assert "write_atomic(output," in (PACKAGE / "cli" / "common.py").read_text()
    for module in ("validate", "compile", "profile", "render", "weights"):
        assert "write_output(output," in (PACKAGE / "cli" / f"{module}.py").read_text(), module


def test_write_atomic_leaves_nothing_when_interrupted(tmp_path, monkeypatch):
    from archgraph import io as aio

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(aio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        aio.write_atomic(tmp_path / "out.txt", "text")
    assert list(tmp_path.iterdir()) == []


# --- hostile command lines ------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["validate", "specs/hrnet.yaml", "--input", "²x3"], "--input expects HxW or CxHxW with positive integers"),
    (["validate", "specs/hrnet.yaml", "--input", "3x99999x224"], "--input sizes are at most 65536, got '3x99999x224'"),
    (["validate", "specs/hrnet.yaml", "--input", "3x" + "9" * 5000 + "x224"], "--input sizes are at most 65536"),
    (["validate", "specs/hrnet.yaml", "--set", "width=1e400"], "parameter 'width' takes an integer, got inf"),
    (["validate", "specs/hrnet.yaml", "--set", "width=" + "9" * 5000], "parameter 'width' takes an integer, got '999"),
    (["validate", "specs/hrnet.yaml", "--set", "wi\ndth=3"], "unknown parameter 'wi\\ndth' for specs/hrnet.yaml"),
    (["validate", "specs/hrnet.yaml", "--set", "head=" + "a" * 3000], "parameter 'head' cannot be 'aaaaaaaa"),
    (["validate", "specs/hrnet.yaml", "--set", "width=!!python/object/apply:os.system ['ls']"],
     "parameter 'width' takes an integer"),
    (["--plugin", "", "validate", "specs/hrnet.yaml"], "--plugin expects a Python module name, got ''"),
])
def test_hostile_command_lines_are_one_located_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and len(result.stderr) < 300
    assert result.stderr.startswith(f"<command line>: error: {message}")
