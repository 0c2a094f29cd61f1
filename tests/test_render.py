"""archgraph render: the SVG's structure, checked for every spec in specs/ (and each of its choices).

The pictures are read back from the SVG Graphviz writes, in its coordinates: lanes in stride order
top to bottom, every graph edge drawn (or folded) with its class, a legend entry per edge kind, no
two boxes overlapping, no edge through a box. The committed docs/img/<spec>.svg must show the
spec's current graph. No torch anywhere.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import archgraph
from archgraph.analysis.cost import convention, profile
from archgraph.cli import app
from archgraph.ops.base import EdgeOp, EdgeStyle
from archgraph.ops.upsample import Upsample
from archgraph.render import BackendMissing, diagram, draw, render, to_dot
from archgraph.render.diagram import pattern_name
from archgraph.render.layout import columns

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
runner = CliRunner()


def variants(path: Path) -> list[dict]:
    """The spec's defaults, then each other value of every parameter with ``choices``."""
    params = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("params") or {}
    found: list[dict] = [{}]
    for name, p in params.items():
        if isinstance(p, dict) and p.get("choices"):
            found += [{name: c} for c in p["choices"] if c != p.get("default")]
    return found


CASES = [(path, params) for path in SPECS for params in variants(path)]
CASE_IDS = [f"{path.stem}-" + ("-".join(f"{k}={v}" for k, v in params.items()) or "default") for path, params in CASES]


# --- reading an SVG back --------------------------------------------------------------------------


@dataclass
class Item:
    id: str
    classes: set[str]
    tooltip: str
    points: list[tuple[float, float]] = field(default_factory=list)  # the outline's or the path's points
    texts: list[str] = field(default_factory=list)

    @property
    def box(self) -> tuple[float, float, float, float]:
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)]


def parse(svg: bytes) -> dict[str, Item]:
    root = ET.fromstring(svg)
    items = {}
    for g in root.iter(f"{SVG}g"):
        classes = set((g.get("class") or "").split())
        if not classes & {"node", "edge"}:
            continue
        anchor = next(g.iter(f"{SVG}a"), None)
        item = Item(g.get("id", ""), classes, anchor.get(f"{XLINK}title", "") if anchor is not None else "")
        shape = next((e for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path", f"{SVG}ellipse")), None)
        if shape is not None and shape.tag == f"{SVG}polygon":
            nums = _numbers(shape.get("points", ""))
            item.points = list(zip(nums[::2], nums[1::2]))
        elif shape is not None and shape.tag == f"{SVG}path":
            nums = _numbers(shape.get("d", ""))
            item.points = list(zip(nums[::2], nums[1::2]))
        item.texts = ["".join(t.itertext()) for t in g.iter(f"{SVG}text")]
        items[item.id] = item
    return items


def overlap(a, b, slack: float = 0.5) -> bool:
    return a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack


def bezier_points(points: list[tuple[float, float]], steps: int = 12) -> list[tuple[float, float]]:
    """Points along a path 'M p0 C p1 p2 p3 [p4 p5 p6 ...]'."""
    out = [points[0]]
    for k in range(1, len(points) - 2, 3):
        p0, p1, p2, p3 = points[k - 1], points[k], points[k + 1], points[k + 2]
        for i in range(1, steps + 1):
            t = i / steps
            u = 1 - t
            out.append(tuple(u**3 * a + 3 * u * u * t * b + 3 * u * t * t * c + t**3 * d
                             for a, b, c, d in zip(p0, p1, p2, p3)))
    return out


_cache: dict = {}


def rendered(path: Path, params: dict, **options):
    """(graph, diagram, parsed SVG) for a spec, cached across tests."""
    key = (path, tuple(sorted(params.items())), tuple(sorted(options.items())))
    if key not in _cache:
        graph = archgraph.load(path, **params)
        picture = diagram(graph, **options)
        _cache[key] = (graph, picture, parse(draw(to_dot(picture), "svg")))
    return _cache[key]


FOLDS = [pytest.param({}, id="auto"), pytest.param({"fold": False}, id="no-fold")]


# --- structure, for every spec --------------------------------------------------------------------


@pytest.mark.parametrize("options", FOLDS)
@pytest.mark.parametrize(("path", "params"), CASES, ids=CASE_IDS)
def test_lanes_run_top_to_bottom_in_stride_order(path, params, options):
    graph, picture, svg = rendered(path, params, **options)
    strides = sorted({node.stride for node in graph.nodes.values()})
    assert list(picture.lanes) == strides
    bands = [svg[f"band-{s}"].box for s in strides]
    assert all(a[3] <= b[1] + 0.5 for a, b in itertools.pairwise(bands)), "lanes stack top to bottom, finest first"
    labels = [svg[f"lane-{s}"] for s in strides]
    assert [item.texts[0] for item in labels] == [f"1/{s}" for s in strides]
    for s, label in zip(strides, labels):
        assert label.box[2] < min(svg[n].box[0] for n in svg if "arch-node" in svg[n].classes), \
            "lane labels sit in the left margin"
    for name, node in graph.nodes.items():
        box_id = picture.nodes[name]
        band = svg[f"band-{node.stride}"].box
        box = svg[box_id].box
        assert f"lane-{node.stride}" in svg[box_id].classes
        assert band[1] <= box[1] and box[3] <= band[3], f"{name} lies outside its lane"


@pytest.mark.parametrize("options", FOLDS)
@pytest.mark.parametrize(("path", "params"), CASES, ids=CASE_IDS)
def test_every_edge_is_drawn_with_its_class(path, params, options):
    graph, picture, svg = rendered(path, params, **options)
    assert set(picture.edges) == {(e.src, e.dst) for e in graph.edges}
    for edge in graph.edges:
        drawn = picture.edges[(edge.src, edge.dst)]
        assert drawn in svg, f"edge {edge.label} is missing"
        item = svg[drawn]
        if "fold" in item.classes:  # from one copy of a folded module into the next
            assert options.get("fold", True) is not False
            continue
        kind = edge.op.render_style().kind
        assert {"edge", "arch-edge", f"fusion-{kind}", f"op-{edge.op.tag}"} <= item.classes, (edge.label,
                                                                                              item.classes)
        assert edge.origin is None or str(edge.origin.loc()) in item.tooltip
        assert re.search(r"^cost( \(all \d+ copies\))?: ", item.tooltip, re.MULTILINE)
    if options.get("fold") is False:
        drawn = {i for i in svg if "arch-edge" in svg[i].classes}
        assert drawn == {f"edge-{e.src}--{e.dst}" for e in graph.edges}
        assert {i for i in svg if "arch-node" in svg[i].classes} == \
            {f"node-{n}" for n in [graph.input.name, *graph.nodes]}


@pytest.mark.parametrize("options", FOLDS)
@pytest.mark.parametrize(("path", "params"), CASES, ids=CASE_IDS)
def test_every_guide_is_drawn_into_its_edges_target(path, params, options):
    graph, picture, svg = rendered(path, params, **options)
    guided = [e for e in graph.edges if e.guide is not None]
    assert set(picture.guides) == {(e.src, e.dst) for e in guided}
    assert len([i for i in svg if "arch-guide" in svg[i].classes]) == len(guided)
    for edge in guided:
        item = svg[picture.guides[(edge.src, edge.dst)]]
        assert {"arch-guide", f"op-{edge.op.tag}"} <= item.classes
        (x0, y0), (x1, y1) = item.points[0], item.points[-1]
        guide, target = svg[picture.nodes[edge.guide]].box, svg[picture.nodes[edge.dst]].box
        assert abs(x0 - guide[2]) < 1 and guide[1] <= y0 <= guide[3], "leaves the guide's right side"
        assert target[0] - 10 < x1 <= target[0] and target[1] <= y1 <= target[3], "enters the target's left side"
        assert f"the guide of {edge.src} → {edge.dst}" in item.tooltip
        assert str(edge.origin.loc()) in item.tooltip
    if guided:
        assert "fusion-guide" in svg["legend-guide"].classes


@pytest.mark.parametrize(("path", "params"), CASES, ids=CASE_IDS)
def test_a_legend_entry_per_edge_kind(path, params):
    graph, picture, svg = rendered(path, params)
    assert "legend" in svg
    kinds = {e.op.render_style().kind for e in graph.edges}
    for kind in kinds:
        entry = svg[f"legend-{kind}"]
        assert f"fusion-{kind}" in entry.classes and svg[f"legend-{kind}-text"].texts
    if any(node.merge == "concat" for node in graph.nodes.values()):
        assert "legend-concat" in svg
    if picture.folds:
        assert "legend-fold-sample" in svg


@pytest.mark.parametrize("options", FOLDS)
@pytest.mark.parametrize(("path", "params"), CASES, ids=CASE_IDS)
def test_no_boxes_overlap_and_no_edge_crosses_a_box(path, params, options):
    graph, picture, svg = rendered(path, params, **options)
    nodes = {i: svg[i].box for i in svg if "arch-node" in svg[i].classes}
    captions = {i: svg[i].box for i in svg if svg[i].classes & {"lane-label", "fold-label", "title", "legend-text"}}
    names = sorted(nodes)
    for k, a in enumerate(names):
        for b in names[k + 1:]:
            assert not overlap(nodes[a], nodes[b]), f"{a} overlaps {b}"
        for c, box in captions.items():
            assert not overlap(nodes[a], box), f"{a} overlaps the caption {c}"
    guide_ends = {picture.guides[(e.src, e.dst)]: (e.guide, e.dst) for e in graph.edges if e.guide is not None}
    for i, item in svg.items():
        if "arch-edge" in item.classes:
            names = i[len("edge-"):].split("--")
        elif "arch-guide" in item.classes:
            names = guide_ends[i]
        else:
            continue
        ends = {f"node-{n}" for n in names} | {picture.nodes.get(n, "") for n in names}
        for x, y in bezier_points(item.points):
            for n, (x0, y0, x1, y1) in nodes.items():
                if n not in ends:
                    assert not (x0 + 1 < x < x1 - 1 and y0 + 1 < y < y1 - 1), f"{i} runs through {n}"


@pytest.mark.parametrize(("path", "params"), CASES, ids=CASE_IDS)
def test_node_boxes_say_name_shape_and_where(path, params):
    graph, _, svg = rendered(path, params, fold=False)
    shapes = archgraph.ir.infer(graph)
    for name, node in graph.nodes.items():
        item = svg[f"node-{name}"]
        shape = shapes[name]
        assert item.texts[0] == name
        assert item.texts[1] == (f"{shape.channels} ch · {shape.h}×{shape.w}" if shape.h is not None
                                 else f"{shape.channels} (vector)")
        assert str(node.origin.loc()) in item.tooltip and "\ncost: " in item.tooltip


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_the_docs_show_every_spec_as_it_is(path):
    committed = ROOT / "docs" / "img" / f"{path.stem}.svg"
    assert committed.exists(), (f"{committed.relative_to(ROOT)} is missing: "
                                f"archgraph render specs/{path.name} -o docs/img/{path.stem}.svg")
    shown = parse(committed.read_bytes())
    _, _, current = rendered(path, {})
    kinds = ("arch-node", "arch-edge", "arch-guide", "fold")
    assert {i for i in shown if shown[i].classes & set(kinds)} == {i for i in current if current[i].classes & set(kinds)}, \
        f"{committed.relative_to(ROOT)} is out of date: archgraph render specs/{path.name} -o {committed.relative_to(ROOT)}"


# --- folding, depth, cost -------------------------------------------------------------------------


def test_hrnet_folds_its_repeated_modules():
    _, picture, svg = rendered(ROOT / "specs/hrnet.yaml", {})
    assert picture.fold_names == ["s3_m[0-3] ×4", "s4_m[0-2] ×3"]
    assert "node-s3_m1_b0" not in svg and "node-s3_m0_b0" in svg
    assert svg["node-s3_m0_b0"].texts[0] == "s3_m[0-3]_b0" and "folded" in svg["node-s3_m0_b0"].classes
    assert svg["fold-0-label"].texts[0] == "×4"
    assert picture.nodes["s3_m2_f1"] == "node-s3_m0_f1"
    assert picture.edges[("s3_m0_f0", "s3_m1_b0")] == "fold-0"  # from one copy into the next
    assert picture.edges[("s3_m2_b1", "s3_m2_f0")] == "edge-s3_m0_b1--s3_m0_f0"  # drawn once for all copies
    assert picture.edges[("s3_m3_f2", "s4_t3")] == "edge-s3_m3_f2--s4_t3"  # leaving the last copy
    # the pose network's last module fuses only into stride 4: not a copy of the others
    _, pose, _ = rendered(ROOT / "specs/hrnet.yaml", {"head": "pose"})
    assert pose.fold_names == ["s3_m[0-3] ×4", "s4_m[0-1] ×2"]


def test_columns_align_branches_and_fusions():
    graph = archgraph.load(ROOT / "specs/hrnet.yaml")
    col = columns(graph)
    assert col["s3_t2"] < col["s3_m0_b0"] == col["s3_m0_b1"] == col["s3_m0_b2"] < col["s3_m0_f0"] == col["s3_m0_f2"]
    assert [col[f"classifier_incre{i}"] for i in range(4)] == [col["s4_m2_f0"] + 1] * 2 + [col["s4_m2_f0"] + 2,
                                                                                          col["s4_m2_f0"] + 3]


def test_pattern_names():
    assert pattern_name(["s3_m0_b0", "s3_m1_b0", "s3_m2_b0"]) == "s3_m[0-2]_b0"
    assert pattern_name(["m9_x", "m10_x", "m11_x"]) == "m[9-11]_x"
    assert pattern_name(["a", "b"]) == "a (+1)"


def test_depth_shows_more_of_each_body():
    path = ROOT / "specs/hrnet.yaml"
    texts = {d: rendered(path, {}, depth=d)[2]["node-layer1"].texts for d in (0, 1, 2)}
    assert texts[0] == ["layer1", "256 ch · 56×56"]
    assert texts[1] == ["layer1", "256 ch · 56×56", "bottleneck ×4"]
    assert texts[2] == ["layer1", "256 ch · 56×56", "bottleneck ×4 → 256"]
    assert rendered(path, {}, depth=2)[2]["node-stem"].texts[2:] == ["conv3×3/2 → 64", "conv3×3/2 → 64"]


@pytest.mark.parametrize("cost", ["flops", "params"])
def test_cost_shades_by_share(cost):
    graph, picture, svg = rendered(ROOT / "specs/hrnet.yaml", {}, cost=cost)
    shares = {}
    for i, item in svg.items():
        if "arch-node" in item.classes and i != "node-image":
            share = next(t for t in item.texts if t.endswith(("% of FLOPs", "% of params")))
            shares[i] = float(share.split("%")[0])
    heaviest = max(shares, key=shares.get)
    fills = {b.id: b.fill for b in picture.boxes}
    assert fills[heaviest] == "#990000"  # the top of the scale
    assert fills["node-s2_m0_f0"] == "#fff7ec" and shares["node-s2_m0_f0"] == 0  # a sum costs no FLOPs or params
    prof = profile(graph)
    count = (lambda c: c.params) if cost == "params" else convention("fvcore").count
    nodes = 100 * sum(count(n.cost) for n in prof.nodes) / count(prof.total)  # the rest is in the edges
    assert abs(sum(shares.values()) - nodes) < 0.05 * len(shares)
    assert [svg[f"legend-cost-{k}"] for k in range(5)]


def test_edge_style_hook(monkeypatch):
    """A new op draws itself: its render_style names its class and legend entry."""
    warp = EdgeStyle("flow-warp", "flow warp (aligned upsampling)", "#6a3d9a", "dashed", "vee")
    monkeypatch.setattr(Upsample, "render_style", lambda self: warp)
    graph = archgraph.load(ROOT / "specs/hrnet.yaml")
    svg = parse(render(graph, "svg"))
    assert "fusion-flow-warp" in svg["edge-s2_m0_b1--s2_m0_f0"].classes
    assert svg["legend-flow-warp-text"].texts == ["flow warp (aligned upsampling)"]
    monkeypatch.setattr(Upsample, "render_style", EdgeOp.render_style)  # an op without a style of its own
    picture = diagram(graph)
    curve = next(c for c in picture.curves if c.id == "edge-s2_m0_b1--s2_m0_f0")
    assert "fusion-upsample" in curve.classes and (curve.style, curve.arrowhead) == ("dashed", "empty")


def test_a_skip_edge_goes_around_the_boxes_it_would_cross(tmp_path):
    spec = tmp_path / "skip.yaml"
    spec.write_text("""
archgraph: 1
name: Skip
input: {name: image, channels: 3, size: [64, 64]}
nodes:
  - {name: a, stride: 4, channels: 16, from: image, body: [{block: conv, channels: 16, stride: 4}]}
  - {name: b, stride: 4, channels: 16, from: a, body: [{block: basic, channels: 16}]}
  - {name: c, stride: 4, channels: 16, from: b, body: [{block: basic, channels: 16}]}
  - {name: d, stride: 8, channels: 32, from: c, body: [{block: basic, channels: 32, stride: 2}]}
  - {name: e, stride: 4, channels: 16, from: [a, c], output: true}
edges:
  - {from: d, to: e, op: upsample}
""")
    graph = archgraph.load(spec)
    picture = diagram(graph)
    svg = parse(draw(to_dot(picture), "svg"))
    skip = svg["edge-a--e"]
    assert len(skip.points) > 4  # not a single cubic: it detours
    nodes = {i: svg[i].box for i in svg if "arch-node" in svg[i].classes}
    for x, y in bezier_points(skip.points):
        for n in ("node-b", "node-c"):
            x0, y0, x1, y1 = nodes[n]
            assert not (x0 < x < x1 and y0 < y < y1)


def test_rendering_is_deterministic():
    graph = archgraph.load(ROOT / "specs/hrnet.yaml", head="pose")
    assert to_dot(diagram(graph)) == to_dot(diagram(graph))


# --- formats and the command ----------------------------------------------------------------------


def test_formats_by_extension_and_option(tmp_path):
    spec = str(ROOT / "specs/hrnet.yaml")
    for name, magic in (("a.svg", b"<?xml"), ("a.png", b"\x89PNG"), ("a.pdf", b"%PDF"), ("a.dot", b"// HRNet")):
        result = runner.invoke(app, ["render", spec, "-o", str(tmp_path / name), "--no-fold", "--depth", "0"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_bytes().startswith(magic)
        assert f"wrote {tmp_path / name}" in result.stdout
    result = runner.invoke(app, ["render", spec, "-o", str(tmp_path / "picture"), "--format", "dot"])
    assert result.exit_code == 0 and (tmp_path / "picture").read_text().startswith("// HRNet")
    result = runner.invoke(app, ["render", spec, "-f", "dot", "--set", "width=18"])
    assert result.exit_code == 0 and "digraph" in result.stdout and 'pos="' in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "x.gif"], "--format must be one of svg, png, pdf, dot, got 'gif'"),
    (["-o", "x"], "cannot tell the format of 'x' from its extension"),
    (["-f", "png"], "PNG is binary: give a file with -o/--output"),
    (["--cost", "latency", "-f", "dot"], "--cost must be flops or params, got 'latency'"),
    (["--input", "100x100", "-f", "dot"], "disagree in size for a 100x100 input"),
])
def test_command_line_errors(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["render", str(ROOT / "specs/hrnet.yaml"), *args])
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_without_pygraphviz_dot_still_works(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pygraphviz", None)  # import pygraphviz -> ImportError
    spec = str(ROOT / "specs/hrnet.yaml")
    result = runner.invoke(app, ["render", spec, "-o", str(tmp_path / "net.dot")])
    assert result.exit_code == 0 and (tmp_path / "net.dot").exists()
    result = runner.invoke(app, ["render", spec, "-o", str(tmp_path / "net.svg")])
    assert result.exit_code == 2 and not (tmp_path / "net.svg").exists()
    assert "writing SVG needs pygraphviz, which is not installed (hint: pip install 'pygraphviz>=2.0'" \
        in result.stderr
    with pytest.raises(BackendMissing, match="pip install"):
        draw("digraph {}", "png")


def test_render_does_not_import_torch(tmp_path):
    code = ("import sys; from typer.testing import CliRunner; from archgraph.cli import app; "
            f"r = CliRunner().invoke(app, ['render', {str(ROOT / 'specs/hrnet.yaml')!r}, '--set', 'width=48', "
            f"'--cost', 'flops', '-o', {str(tmp_path / 'w48.svg')!r}]); "
            "assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules, 'torch was imported'")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "w48.svg").stat().st_size > 10_000


def test_input_size_sets_every_hxw(tmp_path):
    out = tmp_path / "pose.svg"
    result = runner.invoke(app, ["render", str(ROOT / "specs/hrnet.yaml"), "--input", "256x192", "-o", str(out)])
    assert result.exit_code == 0, result.output
    svg = parse(out.read_bytes())
    assert [svg[f"lane-{s}"].texts for s in (4, 8, 16, 32)] == [["1/4", "64×48"], ["1/8", "32×24"],
                                                               ["1/16", "16×12"], ["1/32", "8×6"]]
    assert svg["node-image"].texts[1] == "3 ch · 256×192"
