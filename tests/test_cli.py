"""The `archgraph` command: every command and its help, exit codes, files written, torch-free commands.

Oracles: the documented contract in archgraph/cli/__init__.py's docstring (exit 0 / 2 / 1, one
located line per problem, validate/expand/schema/ops never import torch), the published
HRNet-W18-C parameter count (21,299,004), and node/edge counts of HRNet-W18-C worked
out by hand from the architecture (66 nodes, 131 edges).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from archgraph.api import plain
from archgraph.cli import app

ROOT = Path(__file__).resolve().parent.parent
HRNET = "specs/hrnet.yaml"
COMMANDS = ["validate", "expand", "compile", "schema", "ops"]
TINY = """\
archgraph: 1
name: tiny
params:
  width: 8
input: {size: [32, 32]}
nodes:
  - name: stem
    stride: 2
    channels: width
    from: image
    body: [{block: conv, channels: width, stride: 2}]
  - {name: low, stride: 4, channels: 2*width}
  - {name: out, stride: 2, channels: width, from: stem, output: true}
edges:
  - {from: stem, to: low, op: downsample}
  - {from: low, to: out, op: upsample}
"""


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture
def broken(tmp_path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(TINY.replace("channels: width, from: stem", "chanels: width, from: stem"))
    return path


# --- help --------------------------------------------------------------------------------------


def test_top_level_help():
    result = run("--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: archgraph [OPTIONS] COMMAND")
    for command in COMMANDS:
        assert f"  {command} " in result.stdout
    assert "--debug" in result.stdout


def test_no_arguments_prints_help_as_a_usage_error():
    result = run()
    assert result.exit_code == 2
    assert "Usage: archgraph" in result.stdout + result.stderr


@pytest.mark.parametrize(("command", "words"), [
    ("validate", ["Check a spec", "--set", "--input"]),
    ("expand", ["Print the plain graph", "--output", "--format"]),
    ("compile", ["Build the PyTorch module", "--input", "--batch", "--device"]),
    ("schema", ["JSON Schema"]),
    ("ops", ["edge op", "pattern"]),
])
def test_command_help(command, words):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: archgraph {command}")
    for word in words:
        assert word in result.stdout


def test_every_registered_command_has_working_help():
    import typer

    commands = typer.main.get_command(app).commands
    assert set(COMMANDS) <= set(commands)
    for name in commands:
        result = run(name, "--help")
        assert result.exit_code == 0, (name, result.stderr)
        assert result.stdout.startswith(f"Usage: archgraph {name}")


@pytest.mark.parametrize("args", [["bogus"], ["validate"], ["compile", HRNET, "--batch", "0"],
                                  ["validate", HRNET, "--bogus"]])
def test_usage_errors_exit_2(args):
    result = run(*args)
    assert result.exit_code == 2
    assert "Error:" in result.stderr


# --- validate ----------------------------------------------------------------------------------


def test_validate_ok():
    result = run("validate", HRNET, "--set", "width=18")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == (f"{HRNET}: ok: HRNet, 66 nodes, 131 edges; "
                             "input 3x224x224 -> classifier 1000\n")


@pytest.mark.parametrize(("sets", "size", "expected"), [
    ([], "160x224", "input 3x160x224 -> classifier 1000"),
    ([], "3x64x96", "input 3x64x96 -> classifier 1000"),
    (["head=pose"], None, "input 3x256x192 -> heatmaps 17x64x48"),
    (["head=segmentation", "seg_classes=7"], "70X50", "input 3x70x50 -> segmentation 7x18x13"),
])
def test_validate_input_sizes(sets, size, expected):
    args = ["validate", HRNET, *[a for s in sets for a in ("--set", s)], *(["--input", size] if size else [])]
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith(expected + "\n")


@pytest.mark.parametrize(("size", "message"), [
    ("224", "--input expects HxW or CxHxW with positive integers, got '224' (hint: for example --input 3x224x224)"),
    ("3x224x224x1", "--input expects HxW or CxHxW with positive integers, got '3x224x224x1'"),
    ("0x224", "--input expects HxW or CxHxW with positive integers, got '0x224'"),
    ("-3x224", "--input expects HxW or CxHxW with positive integers, got '-3x224'"),
    ("axb", "--input expects HxW or CxHxW with positive integers, got 'axb'"),
    ("224 x 224", "--input expects HxW or CxHxW with positive integers, got '224 x 224'"),
    ("1x224x224", "--input has 1 channels but the spec's input has 3"),
])
def test_input_parsing_errors(size, message):
    result = run("validate", HRNET, f"--input={size}")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"<command line>: error: {message}")
    assert len(result.stderr.splitlines()) == 1


def test_validate_rejects_a_size_the_network_cannot_take():
    result = run("validate", HRNET, "--input", "225x225")
    assert result.exit_code == 2
    # located at the stage (pattern) whose fusion node the sizes disagree at: line 52 is `    name: s2`
    assert result.stderr.startswith(f"{HRNET}:65:11: error: inputs to 's2_m0_f0' disagree in size for a "
                                    "225x225 input: 's2_m0_b0' gives 57x57, 's2_m0_b1' gives 58x58")
    assert "divisible by 32" in result.stderr


def test_malformed_set():
    result = run("validate", HRNET, "--set", "width")
    assert result.exit_code == 2
    assert result.stderr == ("<command line>: error: --set expects NAME=VALUE, got 'width' "
                             "(hint: for example --set width=48)\n")


BAD_SETS = [
    ("widht=18", "unknown parameter 'widht' for specs/hrnet.yaml (hint: did you mean 'width'?)"),
    ("head=posse", "parameter 'head' cannot be 'posse' (hint: did you mean 'pose'?)"),
    ("width=wide", "parameter 'width' takes an integer, got 'wide'"),
    ("width=1e3", "parameter 'width' takes an integer, got 1000.0"),
    ("width=1_8", "parameter 'width' takes an integer, got '1_8'"),
]


@pytest.mark.parametrize(("pair", "message"), BAD_SETS)
def test_bad_overrides(pair, message):
    result = run("validate", HRNET, "--set", pair)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.split(": error: ", 1)[1] == message + "\n"


@pytest.mark.parametrize(("pair", "message"), BAD_SETS)
def test_bad_overrides_are_located_at_the_command_line(pair, message):
    result = run("validate", HRNET, "--set", pair)
    assert result.stderr == f"<command line>: error: {message}\n"


def test_set_reads_values_as_a_spec_file_does():
    """YAML 1.2's core schema: 018 is eighteen (no octal), 0x10 sixteen, and yes is not a boolean."""
    result = run("expand", HRNET, "--set", "width=018", "--set", "classes=0x10")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.partition("\n")[0] == \
        f"# {HRNET} expanded width=18 variant=standard head=classification classes=16 joints=17 seg_classes=19"
    result = run("validate", "specs/sfnet.yaml", "--set", "deep_supervision=yes")
    assert result.exit_code == 2
    assert result.stderr == ("<command line>: error: parameter 'deep_supervision' takes a boolean, got 'yes' "
                             "(hint: YAML 1.2 reads yes, no, on and off as strings: write true)\n")


def test_missing_spec_file():
    result = run("validate", "specs/hrnet.yml")
    assert result.exit_code == 2
    assert result.stderr == "specs/hrnet.yml: error: spec file not found (hint: did you mean 'hrnet.yaml'?)\n"
    result = run("validate", "specs")
    assert result.exit_code == 2
    assert result.stderr == "specs: error: spec path is a directory, not a file\n"


def test_several_problems_are_one_line_each(broken):
    broken.write_text(broken.read_text().replace("stride: 4", "stride: 0").replace("op: upsample", "op: upsampel"))
    result = run("validate", str(broken))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split(": error: ")[1] for line in lines] == [
        "'stride' must be >= 1, got 0",
        "unknown key 'chanels' (hint: did you mean 'channels'?)",
        "unknown edge op 'upsampel' (hint: did you mean 'upsample'?)",
    ]
    assert [line.split(": error: ")[0] for line in lines] == [f"{broken}:12:25", f"{broken}:13:28",
                                                              f"{broken}:16:30"]


# --- expand ------------------------------------------------------------------------------------


def test_expand_yaml_to_stdout():
    result = run("expand", HRNET, "--set", "width=18", "--set", "head=pose")
    assert result.exit_code == 0, result.stderr
    header, _, _ = result.stdout.partition("\n")
    assert header == f"# {HRNET} expanded width=18 variant=standard head=pose classes=1000 joints=17 seg_classes=19"
    assert yaml.safe_load(result.stdout) == plain(HRNET, width=18, head="pose").to_data()


def test_expanded_yaml_is_a_spec(tmp_path):
    target = tmp_path / "plain.yaml"
    result = run("expand", HRNET, "--output", str(target), "--set", "width=18", "--set", "head=pose")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    again = run("validate", str(target))
    assert again.exit_code == 0, again.stderr
    assert again.stdout == f"{target}: ok: HRNet, 56 nodes, 109 edges; input 3x256x192 -> heatmaps 17x64x48\n"
    assert run("expand", str(target)).stdout.split("\n", 1)[1] == target.read_text().split("\n", 1)[1]


def test_expanded_yaml_quotes_strings_that_read_as_numbers(tmp_path):
    """PyYAML's writer leaves 1e3 unquoted (a string in YAML 1.1); a spec reads it as a number."""
    spec = tmp_path / "net.yaml"
    spec.write_text("archgraph: 1\nname: net\ndoc: '1e3'\n"
                    "nodes: [{name: stem, stride: 1, channels: 3, from: image, output: true}]\n")
    target = tmp_path / "plain.yaml"
    assert run("expand", str(spec), "-o", str(target)).exit_code == 0
    assert "\ndoc: '1e3'\n" in target.read_text()
    assert plain(target).to_data() == plain(spec).to_data()


def test_expand_json_to_a_file(tmp_path):
    target = tmp_path / "plain.json"
    result = run("expand", HRNET, "-f", "json", "-o", str(target), "--set", "head=segmentation")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert json.loads(target.read_text()) == plain(HRNET, head="segmentation").to_data()
    assert [p.name for p in tmp_path.iterdir()] == ["plain.json"]  # no temporary file left behind
    again = run("validate", str(target))  # the expanded spec is a spec
    assert again.exit_code == 0, again.stderr
    assert again.stdout.endswith("input 3x224x224 -> segmentation 19x56x56\n")


def test_expand_of_a_bad_spec_writes_no_file(tmp_path, broken):
    target = tmp_path / "out.yaml"
    result = run("expand", str(broken), "-o", str(target))
    assert result.exit_code == 2
    assert "unknown key 'chanels'" in result.stderr
    assert not target.exists()
    target.write_text("keep me")
    assert run("expand", str(broken), "-o", str(target)).exit_code == 2
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.yaml", "out.yaml"]


def test_expand_bad_format(tmp_path):
    target = tmp_path / "out.xml"
    result = run("expand", HRNET, "--format", "xml", "-o", str(target))
    assert result.exit_code == 2
    assert result.stderr == "<command line>: error: --format must be yaml or json, got 'xml'\n"
    assert not target.exists()


def test_expand_to_a_missing_directory_is_a_user_error(tmp_path):
    result = run("expand", HRNET, "-o", str(tmp_path / "missing" / "out.yaml"))
    assert result.exit_code == 2
    assert "internal error" not in result.stderr


# --- compile -----------------------------------------------------------------------------------


def test_compile_hrnet_w18():
    result = run("compile", HRNET, "--set", "width=18")
    assert result.exit_code == 0, result.stderr
    assert "HRNet: 66 nodes, 131 edges, 21,299,004 parameters (built on meta)" in result.stdout
    assert "output classifier: (1, 1000)" in result.stdout
    assert "static inference said" not in result.stdout


def test_compile_tiny_on_cpu_with_batch_and_input(tiny):
    result = run("compile", str(tiny), "--device", "cpu", "--batch", "2", "--input", "3x20x36")
    assert result.exit_code == 0, result.stderr
    # stem conv 3->8 (216 + BN 16); downsample 8->16 (1152 + 32); upsample 1x1 16->8 (128 + 16)
    assert "tiny: 3 nodes, 4 edges, 1,560 parameters (built on cpu)" in result.stdout
    assert "output out: (2, 8, 10, 18)" in result.stdout


def test_compile_rejects_what_validate_rejects(tiny):
    result = run("compile", str(tiny), "--input", "20x34")  # 34 -> 17 -> 9 -> upsampled 18 != 17
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{tiny}:13:12: error: inputs to 'out' disagree in size for a 20x34 input")


def test_compile_bad_device_is_a_user_error(tiny):
    result = run("compile", str(tiny), "--device", "bogus")
    assert result.exit_code == 2
    assert "internal error" not in result.stderr


# --- schema, ops -------------------------------------------------------------------------------


def test_schema():
    result = run("schema")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["title"] == "archgraph spec"
    assert set(document["required"]) == {"archgraph", "name", "nodes"}


def test_ops_lists_every_op_block_and_pattern():
    from archgraph.ops import blocks, edge_ops
    from archgraph.patterns import patterns

    result = run("ops")
    assert result.exit_code == 0
    names = {line.split()[0] for line in result.stdout.splitlines() if line.strip() and line.startswith(" ")}
    assert {"conv", "downsample", "identity", "lateral", "upsample"} <= names
    assert set(edge_ops()) | set(blocks()) | set(patterns()) <= names
    for title in ("edge ops (op:)", "blocks (block:)", "patterns (use:)"):
        assert title in result.stdout


# --- torch stays unimported ---------------------------------------------------------------------

_NO_TORCH = """
import sys
from archgraph.cli import app
try:
    app({args!r}, prog_name="archgraph")
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
print("torch imported:", "torch" in sys.modules)
"""


def _torch_imported(*args: str) -> bool:
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH.format(args=list(args))], capture_output=True,
                          text=True, check=False, cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("torch imported: ")
    return last == "torch imported: True"


@pytest.mark.parametrize("args", [
    ["validate", HRNET, "--set", "head=segmentation", "--input", "64x64"],
    ["expand", HRNET, "--format", "json"],
    ["schema"],
    ["ops"],
])
def test_command_does_not_import_torch(args):
    assert not _torch_imported(*args)


def test_compile_does_import_torch(tiny):  # the check above can tell
    assert _torch_imported("compile", str(tiny))


# --- --debug -----------------------------------------------------------------------------------


def test_debug_does_not_turn_spec_errors_into_tracebacks(broken):
    result = run("--debug", "validate", str(broken))
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(f"{broken}:13:28: error: unknown key 'chanels'")


_BOOM = """
import sys
import archgraph.spec.expand
def boom(*args, **kwargs):
    raise ZeroDivisionError("boom")
archgraph.spec.expand.expand = boom
from archgraph.cli import app
app(sys.argv[1:], prog_name="archgraph")
"""


@pytest.mark.parametrize("debug", [False, True])
def test_internal_errors(debug):
    args = [*(["--debug"] if debug else []), "expand", HRNET]
    proc = subprocess.run([sys.executable, "-c", _BOOM, *args], capture_output=True, text=True, check=False,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    if debug:
        assert "Traceback (most recent call last)" in proc.stderr
        assert proc.stderr.rstrip().endswith("ZeroDivisionError: boom")
    else:
        assert "Traceback" not in proc.stderr
        assert proc.stderr == ("archgraph: internal error: ZeroDivisionError: boom (hint: rerun with --debug for a "
                               "traceback, and please report it)\n")
