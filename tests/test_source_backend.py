"""The source backend: generated files are equivalent to the executor, readable, exportable and safe.

Oracles: the executor (same state_dict keys and shapes, weights loaded with strict=True, outputs
equal within 1e-5: in practice bit for bit), ruff (lint and format), TorchScript, torch.export,
onnxruntime, and the golden files in tests/golden (refresh: ``python -m tests.golden.refresh``).
"""

from __future__ import annotations

import ast
import importlib.metadata
import io
import re
import shutil
import subprocess
import sys
import tokenize
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import archgraph
from archgraph.backends.source import export as ex
from archgraph.backends.source import generate
from archgraph.backends.source.codegen import comment, templates_dir
from archgraph.cli import app
from archgraph.lang.source import loads
from tests.golden import refresh
from tests.test_resize_to_input import RESIZE_TO_INPUT

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/hrnet.yaml"
HEAD_SIZES = {"classification": (64, 64), "pose": (64, 96), "segmentation": (70, 50)}


@pytest.fixture(scope="module")
def goldens() -> dict[str, tuple[archgraph.ir.ArchGraph, str]]:
    out = {}
    for case in refresh.CASES:
        spec = loads((ROOT / "tests/golden" / f"{case}.yaml").read_bytes(), file=f"tests/golden/{case}.yaml")
        graph = archgraph.load(spec)
        out[case] = graph, generate(graph)
    return out


def assert_equivalent(graph, source=None, size=None, batch=2):
    """Same state_dict (keys, order, shapes), strict load, same outputs for random weights and input."""
    reference, generated = ex.paired(graph, source)
    ours, theirs = reference.state_dict(), generated.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    x = ex.example_input(graph, size, batch)
    with torch.no_grad():
        expected, got = ex.as_dict(reference(x), graph), ex.as_dict(generated(x), graph)
    assert list(expected) == list(got) == graph.outputs
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-5)
    return generated


# --- equivalence ---------------------------------------------------------------------------------


@pytest.mark.parametrize("head", list(HEAD_SIZES))
def test_hrnet_every_head_matches_the_executor(head):
    graph = archgraph.load(SPEC, width=18, head=head)
    assert_equivalent(graph, size=HEAD_SIZES[head])


def test_same_seed_same_initial_weights(goldens):
    graph, source = goldens["hrnet_tiny"]
    torch.manual_seed(3)
    reference = archgraph.build(graph)
    torch.manual_seed(3)
    generated = ex.module_class(graph, source)()
    for (k, a), (j, b) in zip(reference.state_dict().items(), generated.state_dict().items(), strict=True):
        assert k == j and torch.equal(a, b), k


# Names that a careless generator would let shadow something: builtins, the file's own globals,
# the forward's first parameter, class-private names; and the names of its temporaries.
TRICKY = ["x", "sum", "input", "self", "torch", "nn", "F", "size", "list", "__private", "BasicBlock",
          "conv_bn_act", "ResizeTo", "n1_size", "annotations", "match", "print", "n2_n1", "image"]


def _edge(draw, src, src_stride, dst, arrival, concat):
    edge = {"from": src, "to": dst}
    if src_stride == arrival:
        edge["op"] = "identity" if concat else draw(st.sampled_from(["conv", "lateral", "identity"]))
    elif src_stride > arrival:
        sizes = ["scale", "target"] + (["input"] if arrival == 1 else [])
        edge |= {"op": "upsample", "mode": draw(st.sampled_from(["nearest", "bilinear"])),
                 "size": draw(st.sampled_from(sizes)), "project": not concat}
        if edge["mode"] == "bilinear":
            edge["align_corners"] = draw(st.sampled_from([None, False, True]))
    else:
        edge |= {"op": "downsample", "act_last": draw(st.booleans()), "bias": draw(st.booleans())}
    return edge


@st.composite
def random_specs(draw):
    """Small valid graphs over strides 1-8 with tricky names (widths kept equal where a sum needs it)."""
    names = draw(st.lists(st.sampled_from(TRICKY), min_size=3, max_size=5, unique=True))
    image, names = names[0], names[1:]
    stem = names[0]
    width = draw(st.sampled_from([4, 8]))
    nodes = [{"name": stem, "stride": 2, "channels": width, "from": image,
              "body": [{"block": "conv", "channels": width, "stride": 2}]}]
    edges, known = [], {stem: (2, width)}
    for name in names[1:]:
        stride = draw(st.sampled_from([1, 2, 4, 8]))
        previous = list(known)[-1]
        extra = draw(st.lists(st.sampled_from(list(known)), unique=True, max_size=2))
        inputs = list(dict.fromkeys([previous, *extra]))
        concat = draw(st.booleans()) and all(known[s][0] >= stride for s in inputs)
        # a lone identity input must keep its width: give this node the source's width then
        in_edges = [_edge(draw, s, known[s][0], name, stride, concat) for s in inputs]
        if all(e.get("size") == "target" for e in in_edges):
            in_edges[0]["size"] = "scale"
        kept = [known[e["from"]][1] for e in in_edges if e["op"] == "identity" or e.get("project") is False]
        if concat:
            channels = sum(known[s][1] for s in inputs)
        elif kept:
            if len(set(kept)) > 1:
                for e in in_edges:  # project every input to one width instead
                    if e["op"] == "identity":
                        e["op"] = "conv"
                    if e["op"] == "upsample":
                        e["project"] = True
                channels = width
            else:
                channels = kept[0]
        else:
            channels = width
        body = []
        if draw(st.booleans()):
            kind = draw(st.sampled_from(["basic", "conv", "bottleneck"]))
            body = [{"block": kind, "channels": 8}]
            channels = 8
        nodes.append({"name": name, "stride": stride, "channels": channels, "body": body,
                      "merge": "concat" if concat else "sum", "act": draw(st.sampled_from(["none", "relu"]))})
        edges += in_edges
        known[name] = (stride, channels)
    nodes[-1]["output"] = True
    if len(nodes) > 2 and draw(st.booleans()):
        nodes[1]["output"] = True
    return {"archgraph": 1, "name": draw(st.sampled_from(["Net", "torch", "BasicBlock", "list"])),
            "input": {"name": image, "channels": 3, "size": [32, 32]}, "nodes": nodes, "edges": edges}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=random_specs())
def test_random_graphs_match_the_executor(data):
    graph = archgraph.load(data)
    source = generate(graph)
    assert_equivalent(graph, source, batch=1)
    assert generate(graph) == source  # deterministic


def test_dilated_blocks_match_the_executor():
    """A dilation reaches the generated constructors as a keyword (left out where it is 1)."""
    data = {"archgraph": 1, "name": "Dilated", "input": {"size": [37, 29]}, "nodes": [
        {"name": "a", "stride": 2, "channels": 8, "from": "image",
         "body": [{"block": "conv", "channels": 8, "stride": 2, "dilation": 2, "padding": 1},
                  {"block": "basic", "channels": 8, "dilation": 2}]},
        {"name": "b", "stride": 4, "channels": 16, "from": "a", "output": True,
         "body": [{"block": "bottleneck", "channels": 16, "stride": 2, "dilation": 3},
                  {"block": "basic", "channels": 16}]},
    ]}
    graph = archgraph.load(data)
    source = generate(graph)
    assert "conv_bn_act(3, 8, 3, 2, 1, dilation=2)" in source
    assert "BasicBlock(8, 8, dilation=2)" in source and "BasicBlock(16, 16)" in source
    assert "Bottleneck(8, 4, 16, 2, dilation=3)" in source
    assert_equivalent(graph, source, size=(37, 29))


def test_lone_identity_input_with_relu_is_not_modified_in_place():
    data = {"archgraph": 1, "name": "Net", "input": {"size": [16, 16]}, "nodes": [
        {"name": "a", "stride": 2, "channels": 4, "from": "image", "body": [{"block": "conv", "channels": 4,
                                                                              "stride": 2, "act": "none"}]},
        {"name": "b", "stride": 2, "channels": 4, "from": "a", "act": "relu", "output": True},
        {"name": "c", "stride": 2, "channels": 4, "from": "a", "output": True}]}
    graph = archgraph.load(data)
    source = generate(graph)
    assert "b = torch.relu(a)" in source
    assert_equivalent(graph, source)


# --- readable ------------------------------------------------------------------------------------


def test_goldens_are_up_to_date(goldens):
    """Byte for byte; after an intended change run ``python -m tests.golden.refresh`` and review the diff."""
    for case, (_, source) in goldens.items():
        expected = (ROOT / "tests/golden" / f"{case}.py").read_text(encoding="utf-8")
        assert source == expected, f"tests/golden/{case}.py is stale: run python -m tests.golden.refresh"


def test_goldens_match_the_executor(goldens):
    for graph, source in goldens.values():
        assert_equivalent(graph, source, batch=1)


def test_layout(goldens):
    graph, source = goldens["fpn_tiny"]
    tree = ast.parse(source)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert classes == ["BasicBlock", "Bottleneck", "ResizeTo", "GlobalAvgPool", "FPNTiny"]  # each helper once
    forward = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "forward"
                   and "image" in [a.arg for a in n.args.args])
    loops = (ast.For, ast.While, ast.comprehension, ast.If)
    assert not any(isinstance(n, loops) for n in ast.walk(forward)), "forward must be straight-line"
    # every node's block says where the node is in the spec
    for name, node in graph.nodes.items():
        assert f"# node {name} = " in source
        assert str(node.origin.loc()) in source
    assert source.splitlines()[3] == "# Spec: tests/golden/fpn_tiny.yaml"
    assert "# Parameters: width=8, classes=5" in source


def test_unused_helpers_are_left_out(goldens):
    _, source = goldens["hrnet_tiny"]
    assert "class GlobalAvgPool" in source and "class Bottleneck" in source
    graph = archgraph.load(SPEC, width=18, head="pose")
    pose = generate(graph)
    assert "class GlobalAvgPool" not in pose and "class ResizeTo" not in pose
    assert "import torch.nn.functional as F" not in pose  # only the left-out helpers use F


def _ruff() -> list[str]:
    try:
        import ruff  # noqa: F401
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.skip("ruff is not installed (pip install -e '.[test]')")
        return ["ruff"]
    return [sys.executable, "-m", "ruff"]


def test_ruff_check_and_format(goldens, tmp_path):
    files = []
    for case, (_, source) in goldens.items():
        (tmp_path / f"{case}.py").write_text(source, encoding="utf-8")
        files.append(f"{case}.py")
    for head in HEAD_SIZES:
        (tmp_path / f"hrnet_{head}.py").write_text(generate(archgraph.load(SPEC, width=18, head=head)))
        files.append(f"hrnet_{head}.py")
    ruff = _ruff()
    for args in (["check", "--isolated"], ["format", "--check", "--isolated"],
                 ["format", "--check", "--isolated", "--line-length", "120"]):  # ruff's default and ours
        run = subprocess.run([*ruff, *args, *files], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert run.returncode == 0, f"ruff {' '.join(args)}:\n{run.stdout}{run.stderr}"


# --- safe ----------------------------------------------------------------------------------------


def _code_tokens(source: str) -> list[tuple[int, str]]:
    """The source without its comments and blank lines: what Python runs."""
    skip = {tokenize.COMMENT, tokenize.NL}
    return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type not in skip]


HOSTILE = 'x"""\n\'\'\'\r\nimport os; os.system("echo pwned")\x00\u2028# fmt: off\x0b\\\n# -*- coding: utf-7 -*-\n+AAo-'


def test_hostile_text_stays_in_comments():
    data = {"archgraph": 1, "name": "Net", "doc": HOSTILE, "params": {"note": HOSTILE},
            "input": {"size": [16, 16]},
            "nodes": [{"name": "stem", "stride": 2, "channels": 4, "from": "image", "doc": HOSTILE,
                       "body": [{"block": "conv", "channels": 4, "stride": 2}], "output": True}]}
    benign = {**data, "doc": "plain", "params": {"note": "plain"}}
    import yaml

    hostile_source = loads(yaml.safe_dump(data), file=f"evil{HOSTILE}.yaml")
    source = generate(archgraph.load(hostile_source))
    plain = generate(archgraph.load(loads(yaml.safe_dump(benign), file="plain.yaml")))
    ast.parse(source)
    assert _code_tokens(source) == _code_tokens(plain)  # the text changed comments only
    assert "\x00" not in source and "\r" not in source and "\u2028" not in source
    # no PEP 263 coding declaration can reach the first two lines (they are fixed text)
    assert not any(re.match(r"^[ \t\f]*#.*?coding[:=]", line) for line in source.splitlines()[:2])
    for line in source.splitlines():
        if "pwned" in line:
            assert line.lstrip().startswith("#")
    assert_equivalent(archgraph.load(hostile_source), source, batch=1)


def test_comment_escapes_every_line_break():
    text = comment("a\nb\rc\u2028d\x85e\x00f\"\"\"", indent=4)
    lines = text.split("\n")
    assert all(line.startswith("    #") for line in lines)
    assert "\\x00" in text and '"""' in text


# --- exportable ----------------------------------------------------------------------------------


def test_torchscript(goldens):
    for graph, source in goldens.values():
        _, generated = ex.paired(graph, source)
        scripted = torch.jit.script(generated)
        x = ex.example_input(graph)
        with torch.no_grad():
            expected, got = ex.as_dict(generated(x), graph), ex.as_dict(scripted(x), graph)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-5)


def test_the_executor_cannot_be_scripted(goldens):
    """Why the source backend exists: the executor's forward interprets a schedule (documented)."""
    graph, _ = goldens["fpn_tiny"]
    with pytest.raises(Exception, match=r"(?s)backends/torch/executor\.py.*GraphModule\._run"):
        torch.jit.script(archgraph.build(graph))  # fails in the interpreter's own Python, where it first meets any


def test_torch_export_and_compile(goldens):
    graph, source = goldens["hrnet_tiny"]
    _, generated = ex.paired(graph, source)
    x = ex.example_input(graph)
    with torch.no_grad():
        expected = generated(x)
    program = torch.export.export(generated, (x,))
    torch.testing.assert_close(program.module()(x), expected, rtol=0, atol=1e-5)
    # the whole forward is one graph for dynamo; inductor's C++ compile is too slow for the suite
    compiled = torch.compile(generated, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), expected, rtol=0, atol=1e-5)


def test_onnx_ends_may_share_a_name_with_the_exporters_values(tmp_path):
    """The exporter names inner values after their ops; nodes called 'cat' and 'add' still export."""
    pytest.importorskip("onnxscript", reason="torch.onnx's exporter needs onnxscript")
    onnx = pytest.importorskip("onnx")
    text = (ROOT / "tests" / "golden" / "fpn_tiny.yaml").read_text()
    spec = tmp_path / "named.yaml"
    spec.write_text(re.sub(r"\bseg\b", "cat", re.sub(r"\bimage\b", "add", text)))
    graph = archgraph.load(spec)
    assert graph.outputs[0] == "cat" and graph.input.name == "add"
    compiled = ex.compile_graph(graph, "onnx", verify=True)
    assert any(check.startswith("ONNX opset 18 (onnxruntime) == generated module") for check in compiled.checks)
    model = onnx.load_from_string(compiled.data)
    assert [v.name for v in model.graph.input] == ["add"] and [v.name for v in model.graph.output] == graph.outputs


def test_onnx_matches_onnxruntime(goldens):
    pytest.importorskip("onnxscript", reason="torch.onnx's exporter needs onnxscript")
    pytest.importorskip("onnxruntime")
    graph, source = goldens["fpn_tiny"]  # every op, two outputs
    _, generated = ex.paired(graph, source)
    x = ex.example_input(graph)
    assert ex.onnx_opset(source) == 18
    data = ex.onnx_bytes(generated, x, graph)
    got = ex.run_onnx(data, x)
    with torch.no_grad():
        expected = ex.as_dict(generated(x), graph)
    for name, array in zip(graph.outputs, got, strict=True):
        torch.testing.assert_close(torch.from_numpy(array), expected[name], rtol=0, atol=1e-4)


def test_opset_follows_the_ops():
    assert ex.onnx_opset("y = F.interpolate(x)") == ex.ONNX_NATIVE_OPSET
    ex_needs = dict(ex.OPSET_NEEDS)
    try:
        ex.OPSET_NEEDS["grid_sample"] = 20  # an op that needs more than the exporter's own opset
        assert ex.onnx_opset("y = F.grid_sample(x, g)") == 20
    finally:
        ex.OPSET_NEEDS.update(ex_needs)


# --- upsample to the input's size: read from the input tensor as forward runs --------------------


def test_upsample_to_the_input_size_is_read_from_the_input():
    graph = archgraph.load(RESIZE_TO_INPUT)
    source = generate(graph)
    assert "self.edges.full.s4(s4, image.shape[-2:])" in source and "70" not in source.split("class ResizeToInput")[1]
    for size in ((70, 50), (33, 17)):
        assert_equivalent(graph, source, size)


def test_upsample_to_the_input_size_scripts_and_exports_for_any_size():
    graph = archgraph.load(RESIZE_TO_INPUT)
    _, generated = ex.paired(graph)
    scripted = torch.jit.script(generated)
    x = ex.example_input(graph, (70, 50), batch=2)
    h, w = torch.export.Dim("h", min=16, max=512), torch.export.Dim("w", min=16, max=512)
    program = torch.export.export(generated, (x,), dynamic_shapes=({2: h, 3: w},)).module()
    for size in ((70, 50), (33, 17), (64, 96)):
        x = ex.example_input(graph, size, batch=2)
        with torch.no_grad():
            expected = generated(x)
            assert tuple(expected["full"].shape) == (2, 8, *size)
            for got in (scripted(x), program(x)):
                for name in graph.outputs:
                    torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-5)


def test_upsample_to_the_input_size_exports_to_onnx():
    pytest.importorskip("onnxscript", reason="torch.onnx's exporter needs onnxscript")
    pytest.importorskip("onnxruntime")
    compiled = ex.compile_graph(archgraph.load(RESIZE_TO_INPUT), "onnx", size=(33, 17), verify=True)
    assert any(check.startswith("ONNX opset 18 (onnxruntime) == generated module") for check in compiled.checks)


def test_sfnet_source_and_torchscript_where_h_and_w_are_not_multiples_of_4():
    # the logits are resized to the input's size (size: input), 70x50, not 4 x 18x13
    compiled = ex.compile_graph(archgraph.load("specs/sfnet.yaml"), "torchscript", size=(70, 50), verify=True)
    assert compiled.checks[0].startswith("generated source == executor: logits (1, 19, 70, 50), max |diff|")
    assert compiled.checks[1].startswith("TorchScript == generated module")


# --- the command line ----------------------------------------------------------------------------


def test_cli_writes_checked_source(tmp_path):
    runner = CliRunner()
    out = tmp_path / "net.py"
    result = runner.invoke(app, ["compile", "tests/golden/hrnet_tiny.yaml", "--target", "source", "-o", str(out),
                                 "--check"])
    assert result.exit_code == 0, result.output
    assert "check: generated source == executor" in result.output
    assert out.read_text() == (ROOT / "tests/golden/hrnet_tiny.py").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["net.py"]  # written atomically: no temporary left


def test_cli_torchscript(tmp_path):
    out = tmp_path / "net.pt"
    result = CliRunner().invoke(app, ["compile", "tests/golden/fpn_tiny.yaml", "-t", "torchscript", "-o", str(out),
                                      "--check", "--input", "32x48"])
    assert result.exit_code == 0, result.output
    assert "check: TorchScript == generated module" in result.output
    scripted = torch.jit.load(str(out))
    assert tuple(scripted(torch.randn(1, 3, 32, 48))["seg"].shape) == (1, 5, 16, 24)


def test_cli_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["compile", "tests/golden/fpn_tiny.yaml", "--target", "onnx"])
    assert result.exit_code == 2 and "give it with -o/--output" in result.output
    result = runner.invoke(app, ["compile", "tests/golden/fpn_tiny.yaml", "--target", "wasm", "-o", "x"])
    assert result.exit_code == 2 and "--target must be one of source, torchscript, onnx" in result.output
    result = runner.invoke(app, ["compile", "tests/golden/fpn_tiny.yaml", "-o", str(tmp_path / "x.py")])
    assert result.exit_code == 2 and "go with --target" in result.output
    assert not list(tmp_path.iterdir())


def test_cli_check_failure_writes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "net.py"
    real = ex.generate

    def broken(graph):  # a generator bug: every sum becomes a difference
        return real(graph).replace(" + self.edges", " - self.edges")

    monkeypatch.setattr(ex, "generate", broken)
    result = CliRunner().invoke(app, ["compile", "tests/golden/hrnet_tiny.yaml", "-t", "source", "-o", str(out),
                                      "--check"])
    assert result.exit_code == 1 and "check failed" in result.output
    assert not out.exists()


# --- packaging -----------------------------------------------------------------------------------


def test_templates_come_from_the_checkout():
    assert templates_dir() == ROOT / "templates"


def _project_copy(tmp_path: Path) -> Path:
    """What a build needs, copied: pip's in-tree builds would leave build/ and egg-info in the checkout."""
    project = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("archgraph", "templates"):
        shutil.copytree(ROOT / part, project / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        if (ROOT / part).exists():
            shutil.copy(ROOT / part, project / part)
    return project


def test_the_wheel_ships_the_templates(tmp_path):
    """``pip install .`` (not editable) must still generate code: the wheel carries templates/.

    Built from a copy of the project (so that no build/ or egg-info lands in the checkout), with
    the setuptools already installed (no network, no build isolation).
    """
    project = _project_copy(tmp_path)
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(project)], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        pytest.skip(f"could not build a wheel here: {run.stderr[-500:]}")
    (wheel,) = tmp_path.glob("archgraph-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for template in (ROOT / "templates").glob("*.j2"):
        assert any(n.endswith(f".data/data/share/archgraph/templates/{template.name}") for n in names)


def test_a_regular_install_generates_code(tmp_path):
    """A non-editable install into a fresh venv finds its templates; generating needs no torch."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    requirements = [r for r in importlib.metadata.requires("archgraph") or [] if "extra ==" not in r]
    without_torch = [r for r in requirements if not r.startswith(("torch", "numpy"))]
    subprocess.run([str(python), "-m", "pip", "install", "-q", *without_torch], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(_project_copy(tmp_path))], check=True)
    code = ("import archgraph, sys; from archgraph.backends.source import generate, templates_dir; "
            "print(templates_dir()); g = archgraph.load(sys.argv[1]); print(len(generate(g))); "
            "assert 'torch' not in sys.modules")
    run = subprocess.run([str(python), "-c", code, str(ROOT / "tests/golden/fpn_tiny.yaml")], cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert "share/archgraph/templates" in run.stdout
    assert int(run.stdout.split()[-1]) > 1000


def test_docs_excerpts_are_verbatim():
    """docs/compile.md quotes generated code: every ```python excerpt=PATH block is in PATH, in one piece."""
    text = (ROOT / "docs/compile.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python excerpt=(\S+)\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    assert blocks
    for path, block in blocks:
        assert block in (ROOT / path).read_text(encoding="utf-8"), f"docs/compile.md quotes {path} wrongly"
