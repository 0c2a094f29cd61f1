"""``archgraph profile``: tables, JSON that round-trips, CSV that adds up, sweeps, --verify, latency.

Static profiling must not import torch (checked in a fresh interpreter). The measuring paths
(--verify, --device) run on the tiny spec of test_cost; no timing is asserted.
"""

from __future__ import annotations

import csv
import doctest
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from archgraph.analysis import Profile, convention
from archgraph.cli import app
from tests.test_cost import TINY

SPEC = "specs/hrnet.yaml"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")



@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return str(path)


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(app, ["profile", *args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def test_static_profile_does_not_import_torch():
    # typer's app() ends in SystemExit: run each call in its own interpreter-level try
    script = (
        "import sys\n"
        "from archgraph.cli import app\n"
        f"for args in (['profile', '{SPEC}', '--set', 'width=18,32', '--by', 'edge'],\n"
        f"             ['profile', '{SPEC}', '--json', '--by', 'op', '-c', 'flops'],\n"
        f"             ['profile', '{SPEC}', '--csv', '--set', 'head=pose']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'profile imported torch'\n"
        "print('no torch')\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120,
                            cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("no torch")


def test_json_round_trips_and_states_its_convention():
    result = run(SPEC, "--set", "width=18", "--json", "--convention", "hrnet-readme")
    doc = json.loads(result.stdout)
    assert doc["schema"] == "archgraph-profile/1"
    assert doc["convention"]["name"] == "hrnet-readme" and doc["convention"]["divisor"] == 1024**3
    (variant,) = doc["variants"]
    assert variant["set"] == {"width": 18} and variant["verify"] is None and variant["latency"] is None
    data = variant["profile"]
    prof = Profile.from_data(data)
    assert prof.to_data("hrnet-readme") == data
    assert json.loads(json.dumps(prof.to_data("hrnet-readme"))) == data
    assert round(data["total"]["count"] / 1024**3, 2) == 3.99
    assert data["total"]["params"] == 21_299_004
    # counts add up in the document too
    assert sum(n["count"] for n in data["nodes"]) + sum(e["count"] for e in data["edges"]) == data["total"]["count"]
    assert sum(o["count"] for o in data["ops"]) == data["total"]["count"]


def test_json_fvcore_total_is_the_exact_static_count():
    doc = json.loads(run(SPEC, "--set", "width=32", "--json").stdout)
    assert doc["variants"][0]["profile"]["total"]["count"] == 8_967_661_888  # the published fvcore total


@pytest.mark.parametrize("by", ["node", "edge", "op"])
def test_csv_rows_add_up_to_the_total(by):
    result = run(SPEC, "--set", "width=18", "--set", "head=pose", "--csv", "--by", by, "-c", "flops")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    total = [r for r in rows if r["kind"] == "total"]
    assert len(total) == 1
    parts = [r for r in rows if r["kind"] not in ("subtotal", "total")]
    for column in ("count", "params", "act_bytes", "conv_mac", "bn", "add"):
        assert sum(int(r[column]) for r in parts) == int(total[0][column]), column
    assert int(total[0]["params"]) == 9_318_215  # pose W18 (head of 17 joints)


@pytest.mark.parametrize("by", ["node", "edge", "op"])
def test_tables_show_units_groups_and_the_convention(by):
    out = run(SPEC, "--set", "width=32", "--by", by).stdout
    assert "FLOPs (fvcore)" in out and "counted as fvcore:" in out and "not counted:" in out
    assert "8,967,661,888" in out and "41,232,680 parameters" in out and "MiB" in out
    if by == "node":
        assert "stride 4 (" in out and "stride 32 (" in out and "edges (131" in out
    elif by == "edge":
        assert "upsample (" in out and "downsample (" in out and "nodes (66" in out
    else:
        assert "block basic" in out and "edge upsample" in out and "merge sum+relu" in out


def test_sweep_profiles_each_value_in_one_table():
    out = run(SPEC, "--set", "width=18,32,48", "-c", "hrnet-readme").stdout
    for label, gflops in (("width=18", "3.99"), ("width=32", "8.31"), ("width=48", "16.1")):
        line = next(line for line in out.splitlines() if line.strip().startswith(label))
        assert gflops in line
    doc = json.loads(run(SPEC, "--set", "width=18,32", "--set", "head=pose,classification", "--json").stdout)
    assert [v["set"] for v in doc["variants"]] == [
        {"width": 18, "head": "pose"}, {"width": 18, "head": "classification"},
        {"width": 32, "head": "pose"}, {"width": 32, "head": "classification"}]


def test_input_batch_and_dtype_options():
    doc = json.loads(run(SPEC, "--set", "head=segmentation", "--input", "3x70x50", "--batch", "2", "--dtype",
                         "float16", "--json").stdout)
    data = doc["variants"][0]["profile"]
    assert data["input"] == [3, 70, 50] and data["batch"] == 2 and data["dtype"] == "float16"
    # 2 x 19 classes x 18 x 13 (stride 4 of 70x50) x 2 bytes
    seg = next(n for n in data["nodes"] if n["name"] == "segmentation")
    assert seg["shape"] == [19, 18, 13] and seg["act_bytes"] == 2 * 19 * 18 * 13 * 2


@pytest.mark.parametrize(("args", "message"), [
    (["--convention", "fvcor"], "did you mean 'fvcore'"),
    (["--by", "lane"], "--by must be node, edge or op"),
    (["--json", "--csv"], "exclude each other"),
    (["--dtype", "int8"], "--dtype must be one of"),
    (["--set", "widht=18"], "did you mean 'width'"),
    (["--input", "3x65x65"], "disagree in size"),
])
def test_command_line_problems_are_located_errors(args, message):
    result = run(SPEC, *args, code=2)
    assert message in result.output


def test_verify_prints_the_counters_beside_the_static_figures(tiny):
    out = run(tiny, "--verify", "--by", "op").stdout
    assert "fvcore" in out and "flop_counter" in out and "aten.convolution" in out and "batch_norm" in out
    assert "(ignores) add" in out and "adaptive_avg_pool2d" in out
    assert "differs" not in out
    doc = json.loads(run(tiny, "--verify", "--json", "--batch", "2").stdout)
    verify = doc["variants"][0]["verify"]
    assert verify["fvcore"]["total"] == doc["variants"][0]["profile"]["total"]["count"]
    assert verify["flop_counter"]["total"] == 2 * convention("macs").count(
        Profile.from_data(doc["variants"][0]["profile"]).total)
    assert verify["peak_bytes"]["static"] == verify["peak_bytes"]["measured"]
    assert all(r["difference"] == 0 for r in verify["rows"])
    fvcore_rows = {r["op"]: r for r in verify["rows"] if r["counter"] == "fvcore"}
    assert fvcore_rows["adaptive_avg_pool2d"]["static"] == 2 * 32 * 4 * 4  # the pool: batch 2, 32x4x4 in
    assert "(ignores) global_pool" not in fvcore_rows


def test_latency_on_cpu_states_its_conditions(tiny):
    doc = json.loads(run(tiny, "--device", "cpu", "--runs", "3", "--warmup", "1", "--threads", "1",
                         "--channels-last", "--json").stdout)
    lat = doc["variants"][0]["latency"]
    assert {"median_ms", "p90_ms", "min_ms", "iqr_ms", "threads", "dtype", "batch", "input", "channels_last",
            "warmup", "runs", "device", "torch"} <= set(lat)
    assert lat["runs"] == len(lat["times_ms"]) == 3 and lat["threads"] == 1 and lat["channels_last"] is True
    assert lat["min_ms"] <= lat["median_ms"] <= lat["p90_ms"]
    out = run(tiny, "--device", "cpu", "--runs", "2", "--warmup", "0", "--dtype", "bfloat16").stdout
    assert "latency on cpu" in out and "median" in out and "bfloat16" in out and "inference_mode" in out
    out = run(tiny, "--set", "width=4,8", "--device", "cpu", "--runs", "2", "--warmup", "0").stdout
    assert "median ms" in out and "width=4" in out and "width=8" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when there is no GPU")
def test_cuda_without_a_gpu_is_a_clear_error(tiny):
    result = run(tiny, "--device", "cuda", code=2)
    assert "no CUDA device is available" in result.output and "--device cpu" in result.output


# --- docs/profile.md: its examples run, its conventions table is the data ---------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "profile.md"


def _blocks(lang: str) -> list[tuple[int, list[str]]]:
    lines, found, i = DOC.read_text(encoding="utf-8").splitlines(), [], 0
    while i < len(lines):
        if lines[i].strip() == f"```{lang}":
            start, body = i + 1, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            found.append((start, body))
        i += 1
    return found


def _matches(expected: list[str], output: str) -> bool:
    """Line by line, trailing spaces ignored; a line '...' stands for any number of lines."""
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line.rstrip()) + r"\n" for line in expected)
    actual = "".join(line.rstrip() + "\n" for line in output.rstrip("\n").splitlines())
    return re.fullmatch(pattern, actual) is not None


CONSOLES = _blocks("console")


@pytest.mark.parametrize(("line", "body"), CONSOLES, ids=[f"profile.md:{line}" for line, _ in CONSOLES])
def test_doc_console_examples(line, body, monkeypatch):
    monkeypatch.chdir(DOC.parents[1])
    session: list[tuple[str, list[str]]] = []
    for text in body:
        if text.startswith("$ "):
            session.append((text[2:], []))
        else:
            session[-1][1].append(text)
    for command, expected in session:
        args = shlex.split(command)
        assert args[:2] == ["archgraph", "profile"], command
        result = CliRunner().invoke(app, args[1:])
        assert result.exit_code == 0, (command, result.output)
        while expected and not expected[-1].strip():
            expected.pop()
        assert _matches(expected, result.output), f"{command}\n--- expected\n" + "\n".join(expected) + \
            f"\n--- got\n{result.output}"


def test_doc_python_example(monkeypatch):
    monkeypatch.chdir(DOC.parents[1])
    ((line, body),) = _blocks("pycon")
    test = doctest.DocTestParser().get_doctest("\n".join(body) + "\n", {}, "profile.md", str(DOC), line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_doc_conventions_table_is_the_data():
    from archgraph.analysis import CONVENTIONS
    from archgraph.ops.base import WORK_TERMS

    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("| term | `fvcore`"):].split("\n\n")[0].splitlines()
    names = [cell.strip(" `") for cell in table[0].strip("|").split("|")[1:]]
    assert names == list(CONVENTIONS)
    seen = set()
    for row in table[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        term = cells[0].strip("`")
        if term == "shown divided by":
            assert [CONVENTIONS[n].divisor for n in names] == [1 if c == "1" else 1024**3 for c in cells[1:]]
            continue
        seen.add(term)
        for name, cell in zip(names, cells[1:], strict=True):
            conv = CONVENTIONS[name]
            weight, _, training = cell.partition(" (training: ")
            assert int(weight) == conv.weight(term), (term, name)
            assert int(training.rstrip(")") or weight) == conv.weight(term, training=True), (term, name)
    assert seen == set(WORK_TERMS)
