"""Writes docs/specs.md: every spec in specs/ and its variants, with parameters, compute and published figures.

    python -m docs.specs_table           # rewrite docs/specs.md
    python -m docs.specs_table --check   # exit 1 if docs/specs.md is not what this would write

Counts come from the static cost model (``archgraph.analysis.cost.profile``: parameters and
multiply-accumulates from the graph, no torch); tests/test_specs.py checks that they equal the
built modules' parameter counts and that docs/specs.md is up to date. Published figures are data
below, each with its source; tests/test_specs.py also checks that every one of them rounds to ours
(or is marked as not reproduced).
"""

from __future__ import annotations

import functools
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
OUTPUT = ROOT / "docs" / "specs.md"

SOURCES = {
    "hrnet": "HRNet/HRNet-Image-Classification, deep-high-resolution-net.pytorch and HRNet-Semantic-Segmentation "
             "READMEs (their \"GFLOPs\" are conv + linear multiply-adds / 2^30)",
    "torchvision": "torchvision.models documentation, ResNet*_Weights.IMAGENET1K_V1: num_params and \"GFLOPS\" "
                   "(which are multiply-adds / 10^9)",
    "lw": "Light-Weight RefineNet (Nekrasov et al., BMVC 2018) and DrSleep/light-weight-refinenet README: 27M / 46M "
          "/ 62M parameters, 33 / 52 / 71 \"FLOPs, B\" at 625x468",
    "sfnet": "SFNet (Li et al., ECCV 2020), comparison table: 12.87M parameters for ResNet-18",
}


@dataclass(frozen=True)
class Row:
    spec: str  # file name in specs/
    params: dict[str, Any] = field(default_factory=dict)  # overrides (the choices' values, and named variants)
    size: tuple[int, int] | None = None  # H, W: the paper's input size; None: the spec's default
    name: str = ""  # the variant's usual name
    published_params: str = ""  # e.g. "41.2M" or "25,557,032"
    published_compute: str = ""  # e.g. "8.31"
    compute_convention: str = "macs"  # how published_compute counts: macs (/10^9) or hrnet-readme (/2^30)
    reproduced: bool = True  # False: the published compute is not reproduced (the spec's header says why)
    source: str = ""  # a key of SOURCES


# Named variants beyond the choices' defaults, with their published figures.
NAMED = [
    Row("hrnet.yaml", {"width": 18}, name="HRNet-W18-C", published_params="21.3M", published_compute="3.99",
        compute_convention="hrnet-readme", source="hrnet"),
    Row("hrnet.yaml", {"variant": "small_v1"}, name="HRNet-W18-C-Small-v1", published_params="13.2M",
        published_compute="1.49", compute_convention="hrnet-readme", source="hrnet"),
    Row("hrnet.yaml", {"variant": "small_v2"}, name="HRNet-W18-C-Small-v2", published_params="15.6M",
        published_compute="2.42", compute_convention="hrnet-readme", source="hrnet"),
    Row("hrnet.yaml", {"width": 32}, name="HRNet-W32-C", published_params="41.2M", published_compute="8.31",
        compute_convention="hrnet-readme", source="hrnet"),
    Row("hrnet.yaml", {"width": 48}, name="HRNet-W48-C", published_params="77.5M", published_compute="16.1",
        compute_convention="hrnet-readme", source="hrnet"),
    Row("hrnet.yaml", {"width": 32, "head": "pose"}, name="pose HRNet-W32", published_params="28.5M",
        published_compute="7.1", compute_convention="hrnet-readme", source="hrnet"),
    Row("hrnet.yaml", {"width": 32, "head": "pose"}, (384, 288), name="pose HRNet-W32", published_params="28.5M",
        published_compute="16.0", compute_convention="hrnet-readme", source="hrnet"),
    Row("hrnet.yaml", {"width": 48, "head": "pose"}, name="pose HRNet-W48", published_params="63.6M",
        published_compute="14.6", compute_convention="hrnet-readme", source="hrnet"),
    Row("hrnet.yaml", {"width": 32, "head": "segmentation"}, (1024, 2048), name="HRNetV2-W32 (Cityscapes)"),
    Row("hrnet.yaml", {"width": 48, "head": "segmentation"}, (1024, 2048), name="HRNetV2-W48 (Cityscapes)",
        published_params="65.8M", published_compute="696.2", compute_convention="hrnet-readme", source="hrnet"),
    *[Row("resnet.yaml", {"depth": d, "head": "classification"}, name=f"ResNet-{d}", published_params=p,
          published_compute=c, source="torchvision")
      for d, p, c in [(18, "11,689,512", "1.81"), (34, "21,797,672", "3.66"), (50, "25,557,032", "4.09"),
                      (101, "44,549,160", "7.8"), (152, "60,192,808", "11.51")]],
    *[Row("resnet.yaml", {"depth": d, "head": "features"}, name=f"ResNet-{d} C2..C5") for d in (18, 34, 50, 101, 152)],
    *[Row("fpn.yaml", {"depth": d}, name=f"FPN-{d} (torchvision)") for d in (18, 34, 50, 101, 152)],
    *[Row("fpn.yaml", {"depth": d, "bias": False, "smooth_p5": False}, name=f"FPN-{d} (FroyoZzz's code)")
      for d in (50, 101)],
    *[Row("refinenet.yaml", {"variant": "light", "depth": d}, name=f"LW-RefineNet-{d}", published_params=p,
          published_compute=c, reproduced=False, source="lw")
      for d, p, c in [(50, "27M", "33"), (101, "46M", "52"), (152, "62M", "71")]],
    # the size the published compute fits (the paper times its models on 512x512 inputs)
    *[Row("refinenet.yaml", {"variant": "light", "depth": d}, (512, 512), name=f"LW-RefineNet-{d} at 512x512")
      for d in (50, 101, 152)],
    *[Row("refinenet.yaml", {"variant": "original", "depth": d}, name=f"RefineNet-{d}") for d in (50, 101, 152)],
    Row("refinenet.yaml", {"variant": "original", "depth": 101, "crp_blocks": 4},
        name="RefineNet-101 (4 CRP blocks, as released)"),
    Row("sfnet.yaml", {"depth": 18}, name="SFNet ResNet-18", published_params="12.87M", source="sfnet"),
    *[Row("sfnet.yaml", {"depth": d}, name=f"SFNet ResNet-{d}") for d in (50, 101)],
    *[Row("alignseg.yaml", {"depth": d}, name=f"AlignSeg ResNet-{d}") for d in (50, 101, 152)],
    Row("alignseg.yaml", {"depth": 101}, (1024, 2048), name="AlignSeg ResNet-101 (a whole image)"),
    Row("unet.yaml", {}, name="U-Net (paper: no BN)"),
    Row("unet.yaml", {"bn": True}, name="U-Net with BN"),
]


def choice_variants(spec: Path) -> list[dict[str, Any]]:
    """Every combination of the values of the spec's parameters that have ``choices`` (others at default)."""
    from archgraph.api import source_of

    params = source_of(spec).data.get("params", {}) or {}
    axes = [(name, decl["choices"]) for name, decl in params.items() if isinstance(decl, dict) and decl.get("choices")]
    return [dict(zip([a for a, _ in axes], combo)) for combo in itertools.product(*[c for _, c in axes])]


def resolved(spec: str, params: dict[str, Any]) -> dict[str, Any]:
    """Every parameter's value for these overrides (no expansion: cheap)."""
    from archgraph.api import source_of
    from archgraph.spec.params import resolve

    return resolve(source_of(SPECS / spec), params)


def rows() -> list[Row]:
    """The named variants, then any choice variant of any spec they do not cover (at the spec's defaults)."""
    table = list(NAMED)
    for spec in sorted(SPECS.glob("*.yaml")):
        named = [resolved(r.spec, r.params) for r in table if r.spec == spec.name]
        for variant in choice_variants(spec):
            if resolved(spec.name, variant) not in named:
                table.append(Row(spec.name, variant))
    order = {p.name: i for i, p in enumerate(sorted(SPECS.glob("*.yaml")))}
    return sorted(table, key=lambda r: order[r.spec])  # stable: each spec's rows keep their order


@dataclass(frozen=True)
class Measured:
    params: int
    macs: int
    size: tuple[int, int]
    overrides: dict[str, Any]


def measure(row: Row) -> Measured:
    return _measure(row.spec, tuple(row.params.items()), row.size)


@functools.cache
def _measure(spec: str, params: tuple, size: tuple[int, int] | None) -> Measured:
    import archgraph
    from archgraph.analysis.cost import convention, profile

    graph = archgraph.load(SPECS / spec, **dict(params))
    prof = profile(graph, size)
    defaults = resolved(spec, {})
    overrides = {k: v for k, v in graph.params.items() if k in dict(params) or defaults.get(k) != v}
    return Measured(prof.total.params, convention("macs").count(prof.total), tuple(prof.input[1:]), overrides)


def _value(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def ours_in(m: Measured, unit: str) -> float:
    return m.macs / (1024**3 if unit == "hrnet-readme" else 1e9)


def render() -> str:
    lines = [
        "# The specs and their variants",
        "",
        "<!-- generated by `python -m docs.specs_table`; tests/test_specs.py checks that it is up to date -->",
        "",
        "Every spec in [`specs/`](../specs), every value of its parameters that have `choices`, and the",
        "named variants of the papers. **Parameters** and **GMACs** are archgraph's own counts, from the",
        "static cost model (`archgraph.analysis.cost.profile`, which `archgraph profile` prints;",
        "tests/test_specs.py checks the parameters against the built modules): GMACs are the",
        "multiply-accumulates of the convolutions and linear layers, / 10^9, for one image at the",
        "**input** size (convention `macs`: `archgraph profile SPEC --convention macs`; 2 FLOPs each in",
        "torch's FlopCounterMode). The input is the paper's: 224x224 for ImageNet classification,",
        "256x192 (and 384x288) for COCO pose, 1024x2048 for Cityscapes (AlignSeg: the 769x769 tile its",
        "evaluation slides over the image, and the whole image), 468x625 for RefineNet's PASCAL VOC",
        "timing; FPN at 224x224 (its paper gives no compute figure) and U-Net at the spec's 256x256 (the",
        "paper's 572x572 tiles are unpadded).",
        "",
        "**Published** is the figure the paper, the official code or torchvision states, with its source",
        "below; where it counts in another convention, our count in that convention follows it in",
        "brackets (the HRNet READMEs' \"GFLOPs\" are multiply-adds / 2^30). Variants without a",
        "published figure are archgraph's exact counts for the code each spec's header names.",
        "",
        "| spec | variant | set | input | parameters | published | GMACs | published compute |",
        "|---|---|---|---|---:|---|---:|---|",
    ]
    used: list[str] = []
    for row in rows():
        m = measure(row)
        sets = " ".join(f"{k}={_value(v)}" for k, v in m.overrides.items()) or "(defaults)"
        ref = ""
        if row.source:
            if row.source not in used:
                used.append(row.source)
            ref = f" [{used.index(row.source) + 1}]"
        compute = ""
        if row.published_compute:
            compute = row.published_compute
            if row.compute_convention != "macs":
                compute += f" (MACs / 2^30; ours {ours_in(m, row.compute_convention):.2f})"
            if not row.reproduced:
                compute += " (not reproduced at this size; see the 512x512 rows and the spec's header)"
            compute += ref
        published = f"{row.published_params}{ref}" if row.published_params else ""
        lines.append(f"| `{row.spec}` | {row.name or ''} | {sets} | {m.size[0]}x{m.size[1]} | {m.params:,} | "
                     f"{published} | {m.macs / 1e9:.2f} | {compute} |")
    lines += ["", "Sources:", ""]
    lines += [f"{i + 1}. {SOURCES[key]}" for i, key in enumerate(used)]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            sys.stderr.write(f"{OUTPUT} is out of date: run python -m docs.specs_table\n")
            return 1
        return 0
    from archgraph.io import write_atomic

    write_atomic(OUTPUT, text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
