"""The networks compared, each as a :class:`Contestants`: a hand-written reference and archgraph's builds of
the same network with the same weights.

* HRNet-W32/W48 classification: ``tests/reference/hrnet_official.py`` (a port of the official
  HRNet-Image-Classification code), weights moved into ``specs/hrnet.yaml``'s module with the
  ``hrnet_official`` key map (``archgraph.weights``; formerly ``tests/hrnet_keys.py``);
* FPN on ResNet-50: ``tests/reference/resnet_fpn.py`` (torchvision's ResNet and
  FeaturePyramidNetwork, as ``resnet_fpn_backbone`` assembles them, without P6), weights moved into
  ``specs/fpn.yaml``'s module with the ``torchvision_fpn`` key map (formerly ``tests/test_fpn.py``'s).

The reference gets random weights and BatchNorm statistics (``randomize``), so that a wrong
mapping cannot hide behind initial values; ``load_state_dict(strict=True)`` moves them. Every
contestant's output is checked against the reference's before anything is timed.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

import archgraph
from archgraph.backends.source.export import module_class, randomize

HRNET = "specs/hrnet.yaml"
FPN = "specs/fpn.yaml"
NAMES = ("reference", "executor", "generated", "optimized")  # the contestants every network has


@dataclass
class Contestants:
    name: str
    graph: archgraph.ir.ArchGraph
    size: tuple[int, int]
    reference: nn.Module
    executor: nn.Module
    generated: nn.Module
    optimized: nn.Module
    extra: dict[str, nn.Module] = field(default_factory=dict)  # ablations, built on request
    device: str = "cpu"  # where the modules are, and the inputs are made (:func:`on`)

    def modules(self) -> dict[str, nn.Module]:
        return {"reference": self.reference, "executor": self.executor, "generated": self.generated,
                "optimized": self.optimized, **self.extra}

    def input(self, batch: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(batch, self.graph.input.channels, *self.size, generator=g).to(self.device)


def outputs(result) -> list[torch.Tensor]:
    """Outputs in order: a tensor, a dict (archgraph: p2..p5; torchvision: '0'..'3') or a tuple."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return list(result.values())
    return list(result)


def relative(got: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    """Max |difference| of corresponding outputs, each relative to the expected output's largest |value|."""
    return max(((g - e).abs().max() / e.abs().max()).item() for g, e in zip(got, expected))


def check(c: Contestants, batch: int = 1) -> dict[str, float]:
    """Max |difference| to the reference's output (relative, for the optimised ones); raises if too large."""
    x = c.input(batch, seed=123)
    diffs = {}
    with torch.inference_mode():
        expected = outputs(c.reference(x))
        for name, module in c.modules().items():
            if name == "reference":
                continue
            got = outputs(module(x))
            assert len(got) == len(expected), name
            if name in ("executor", "generated"):  # the same arithmetic in the same order
                diff = max((g - e).abs().max().item() for g, e in zip(got, expected))
                limit = 1e-4
            else:  # BatchNorm folded, other kernels: equal up to float rounding
                diff = relative(got, expected)
                limit = 1e-4
            if not diff <= limit:
                raise AssertionError(f"{c.name}: {name} differs from the reference by {diff:.3g} (limit {limit:g})")
            diffs[name] = diff
    return diffs


def _archgraph_modules(graph, reference: nn.Module, to_archgraph: Callable[[str], str]):
    executor = archgraph.build(graph).eval()
    executor.load_state_dict({to_archgraph(k): v for k, v in reference.state_dict().items()}, strict=True)
    generated = module_class(graph)().eval()
    generated.load_state_dict(executor.state_dict(), strict=True)
    optimized = archgraph.optimize(copy.deepcopy(executor))
    return executor, generated, optimized


def on(c: Contestants, device: str) -> Contestants:
    """Copies of ``c``'s reference, executor and generated module on ``device``, and the optimised module
    made there, as ``archgraph.build(spec, optimize=True, device=device)`` makes it (on CUDA: BatchNorm
    folded, nothing else; ``archgraph/backends/torch/optimize.py``). ``c`` itself is left as it is."""
    moved = {k: copy.deepcopy(getattr(c, k)).to(device) for k in ("reference", "executor", "generated")}
    optimized = archgraph.optimize(copy.deepcopy(moved["executor"]))
    return dataclasses.replace(c, **moved, optimized=optimized, extra={}, device=device)


def _hrnet_keys(graph) -> Callable[[str], str]:
    """The official HRNet key -> archgraph's: ``archgraph.weights`` (or, before it, ``tests/hrnet_keys.py``)."""
    try:
        from archgraph.weights.hrnet import hrnet_official
    except ImportError:
        from tests.hrnet_keys import official_to_archgraph

        return lambda key: official_to_archgraph(key, "classification", {2: 1, 3: 4, 4: 3})
    return lambda key: hrnet_official(key, graph)


def _fpn_keys(graph) -> Callable[[str], str]:
    """torchvision's BackboneWithFPN key -> archgraph's: ``archgraph.weights`` (or ``tests/test_fpn.py``'s)."""
    try:
        from archgraph.weights.torchvision import torchvision_fpn
    except ImportError:
        from tests.test_fpn import _FPN_RULES, to_archgraph

        return lambda key: to_archgraph(key, _FPN_RULES)
    return lambda key: torchvision_fpn(key, graph)


def hrnet(width: int, size: tuple[int, int] = (224, 224)) -> Contestants:
    """HRNet-W{width}-C: the official classification network."""
    from tests.reference import hrnet_official as official

    torch.manual_seed(0)
    reference = official.hrnet_cls(width).eval()
    randomize(reference, seed=1)
    graph = archgraph.load(HRNET, width=width)
    executor, generated, optimized = _archgraph_modules(graph, reference, _hrnet_keys(graph))
    return Contestants(f"HRNet-W{width}", graph, size, reference, executor, generated, optimized)


def fpn(depth: int = 50, size: tuple[int, int] = (224, 224)) -> Contestants:
    """torchvision's ResNet-{depth} + FeaturePyramidNetwork (P2..P5, 256 channels)."""
    from tests.reference import resnet_fpn as ref

    torch.manual_seed(0)
    reference = ref.resnet_fpn(depth).eval()
    randomize(reference, seed=1)
    graph = archgraph.load(FPN, depth=depth)
    executor, generated, optimized = _archgraph_modules(graph, reference, _fpn_keys(graph))
    return Contestants(f"FPN-R{depth}", graph, size, reference, executor, generated, optimized)


def ablations(c: Contestants) -> None:
    """The optimisation's parts, separately (``c.extra``): what each one buys."""
    opt = archgraph.optimize
    c.extra = {
        "reference, channels_last": copy.deepcopy(c.reference).to(memory_format=torch.channels_last),
        "BN folded, NCHW": opt(copy.deepcopy(c.executor), mkldnn=False, channels_last=False),
        "BN folded, channels_last": opt(copy.deepcopy(c.executor), mkldnn=False, channels_last=True),
        "BN folded + oneDNN fused, NCHW": opt(copy.deepcopy(c.executor), mkldnn=True, channels_last=False),
        "BN folded + oneDNN fused, channels_last": opt(copy.deepcopy(c.executor), mkldnn=True, channels_last=True),
    }
