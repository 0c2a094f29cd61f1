"""Load generated source as a module, check it against the executor, and export it.

* :func:`load_source` runs the generated text as a fresh module. Its lines are registered with
  :mod:`linecache` under a name derived from the text, so ``inspect.getsource`` (which
  ``torch.jit.script`` needs) and tracebacks work without a file on disk, and two different
  networks never share a qualified name.
* :func:`check` builds both backends from the same graph, gives the generated module the
  executor's weights (random, BN statistics included) with ``load_state_dict(strict=True)`` and
  compares their outputs on one input.
* :func:`torchscript_bytes` and :func:`onnx_bytes` give the files the CLI writes. The executor
  itself cannot be scripted: its forward walks a schedule of Python dataclasses and keeps
  tensors in a ``dict`` keyed by node name, neither of which TorchScript compiles; the
  generated module is straight-line code over submodules, which it does.
"""

from __future__ import annotations

import hashlib
import io
import linecache
import sys
import types
from dataclasses import dataclass

import torch
from torch import nn

from archgraph.backends.source.codegen import class_name, generate
from archgraph.ir.graph import ArchGraph

# the lowest ONNX opset each construct of the generated code needs (ai.onnx domain)
OPSET_NEEDS = {
    "conv": 11,  # Conv, BatchNormalization, Relu, Add, Concat, ReduceMean/AveragePool, Gemm
    "interpolate": 11,  # Resize with nearest/linear modes and align_corners (coordinate_transformation_mode)
    "grid_sample": 16,  # GridSample (a flow-warp edge would need it)
}
# what the exporter (torch.export-based) writes natively; lower opsets go through a version converter
ONNX_NATIVE_OPSET = 18


def onnx_opset(graph: ArchGraph | str) -> int:
    """The ONNX opset for a graph: the highest that its ops need, and at least the exporter's own.

    Read from the generated source, so that a new op that calls ``F.grid_sample`` raises it
    without a table to keep up to date beside it.
    """
    source = graph if isinstance(graph, str) else generate(graph)
    needs = [OPSET_NEEDS["conv"]]
    if "interpolate(" in source or "nn.Upsample(" in source:
        needs.append(OPSET_NEEDS["interpolate"])
    if "grid_sample(" in source:
        needs.append(OPSET_NEEDS["grid_sample"])
    return max(max(needs), ONNX_NATIVE_OPSET)


def load_source(source: str, name: str | None = None) -> types.ModuleType:
    """Execute generated source as a new module (registered in ``sys.modules`` under ``name``)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    name = name or f"archgraph_generated_{digest}"
    filename = f"<archgraph-generated-{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module  # TorchScript and pickle resolve classes through their module
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - our own generated code
    return module


def module_class(graph: ArchGraph, source: str | None = None) -> type[nn.Module]:
    """The generated ``nn.Module`` class for ``graph`` (from ``source`` if given)."""
    module = load_source(source if source is not None else generate(graph))
    return getattr(module, class_name(graph))


def randomize(model: nn.Module, seed: int = 0) -> None:
    """Random weights and BN statistics, so that a wrong mapping cannot hide behind init values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                if name.endswith("running_var"):
                    tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
                else:
                    tensor.copy_(torch.randn(tensor.shape, generator=g) * 0.1)
            else:
                tensor.zero_()  # num_batches_tracked


@dataclass(frozen=True)
class CheckResult:
    outputs: dict[str, tuple[int, ...]]  # output name -> shape
    max_abs_diff: float
    atol: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.atol


def as_dict(result, graph: ArchGraph) -> dict[str, torch.Tensor]:
    return result if isinstance(result, dict) else {graph.outputs[0]: result}


def paired(graph: ArchGraph, source: str | None = None, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """(executor, generated module) in eval mode with the same random weights, loaded strictly."""
    from archgraph.backends.torch import GraphModule

    cls = module_class(graph, source)
    with torch.device("meta"):  # no weight initialisation: randomize and load_state_dict fill everything
        reference, generated = GraphModule(graph), cls()
    reference = reference.to_empty(device="cpu").eval()
    randomize(reference, seed)
    generated = generated.to_empty(device="cpu").eval()
    generated.load_state_dict(reference.state_dict(), strict=True)
    return reference, generated


def check(graph: ArchGraph, source: str | None = None, size: tuple[int, int] | None = None, batch: int = 1,
          atol: float = 1e-5, seed: int = 0) -> CheckResult:
    """Compare the executor and the generated module on one random input (same weights)."""
    reference, generated = paired(graph, source, seed)
    h, w = size or graph.input.size
    x = torch.randn(batch, graph.input.channels, h, w, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        expected, got = as_dict(reference(x), graph), as_dict(generated(x), graph)
    if list(expected) != list(got):
        raise AssertionError(f"outputs differ: executor {list(expected)}, generated {list(got)}")
    diff = 0.0
    for name in expected:
        if expected[name].shape != got[name].shape:
            raise AssertionError(f"output {name}: executor {tuple(expected[name].shape)}, "
                                 f"generated {tuple(got[name].shape)}")
        diff = max(diff, (expected[name] - got[name]).abs().max().item())
    return CheckResult({k: tuple(v.shape) for k, v in expected.items()}, diff, atol)


def example_input(graph: ArchGraph, size: tuple[int, int] | None = None, batch: int = 1) -> torch.Tensor:
    h, w = size or graph.input.size
    return torch.randn(batch, graph.input.channels, h, w, generator=torch.Generator().manual_seed(1))


def torchscript_bytes(model: nn.Module) -> bytes:
    """``torch.jit.script(model)``, saved (the weights included)."""
    scripted = torch.jit.script(model)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    return buffer.getvalue()


def onnx_bytes(model: nn.Module, example: torch.Tensor, graph: ArchGraph, opset: int | None = None) -> bytes:
    """``torch.onnx.export`` (the torch.export-based exporter) at the graph's opset, weights inside."""
    import logging
    import warnings

    quiet = logging.getLogger("torch.onnx")  # it logs a warning per torchvision op it cannot register
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model.eval(), (example,), dynamo=True,
                                        opset_version=opset or onnx_opset(graph),
                                        external_data=False, verbose=False)
    finally:
        quiet.setLevel(level)
    _name_ends(program.model, [graph.input.name], list(graph.outputs))  # type: ignore[union-attr]
    buffer = io.BytesIO()
    program.save(buffer)  # type: ignore[union-attr]
    return buffer.getvalue()


def _name_ends(model, inputs: list[str], outputs: list[str]) -> None:
    """Name the ONNX graph's inputs and outputs after the spec's nodes.

    The exporter names inner values after their ops (``cat``, ``add_3``), so an output node called
    ``cat`` given as ``output_names`` would be defined twice, which onnxruntime refuses: an inner
    value with an end's name is renamed first (``cat_1``, ...)."""
    g = model.graph
    ends = {id(v) for v in (*g.inputs, *g.outputs)}
    values = [*g.initializers.values(), *(v for node in g for v in node.outputs)]
    taken = {v.name for v in values} | set(inputs) | set(outputs)
    for v in values:
        if id(v) not in ends and v.name in inputs + outputs:
            k = 1
            while f"{v.name}_{k}" in taken:
                k += 1
            v.name = f"{v.name}_{k}"
            taken.add(v.name)
    for v, name in zip((*g.inputs, *g.outputs), inputs + outputs):
        v.name = name


def run_onnx(data: bytes, x: torch.Tensor) -> list:
    """Outputs of an ONNX model under onnxruntime (raises ImportError where it is not installed)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})


TARGETS = ("source", "torchscript", "onnx")


class CheckFailed(Exception):
    """The generated module (or its export) does not compute what the executor computes."""


@dataclass
class Compiled:
    """What ``archgraph compile --target`` writes, and what it checked on the way."""

    target: str
    data: bytes
    source: str
    checks: list[str]


def compile_graph(graph: ArchGraph, target: str, size: tuple[int, int] | None = None, batch: int = 1,
                  verify: bool = False, atol: float = 1e-5, seed: int = 0, optimize: bool = False) -> Compiled:
    """The file for ``target``; with ``verify``, raise :class:`CheckFailed` unless both backends agree.

    Weights: the generated module's own initialisation under ``torch.manual_seed(seed)`` (the
    same as the executor's under the same seed). The check uses random weights and BN statistics
    instead, copied from the executor with ``strict=True``, and a random input of ``size``.
    ``optimize`` (torchscript and onnx): BatchNorm folded into the convs of the exported module
    (the portable part of ``archgraph.optimize``: no oneDNN ops, NCHW); checked, with
    ``verify``, against the unoptimised module within 1e-4 relative.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
    source = generate(graph)
    checks = []
    if verify:
        result = check(graph, source, size, batch, atol, seed)
        shapes = ", ".join(f"{k} {v}" for k, v in result.outputs.items())
        if not result.ok:
            raise CheckFailed(f"the generated module differs from the executor by {result.max_abs_diff:.3g} "
                              f"(tolerance {atol:g}) on {shapes}")
        checks.append(f"generated source == executor: {shapes}, max |diff| {result.max_abs_diff:.3g}")
    if target == "source":
        return Compiled(target, source.encode("utf-8"), source, checks)
    torch.manual_seed(seed)
    model = module_class(graph, source)().eval()
    x = example_input(graph, size, batch)
    if optimize:
        _fold_batchnorm(model, x, graph, seed, checks if verify else None)
    if target == "torchscript":
        data = torchscript_bytes(model)
        if verify:
            scripted = torch.jit.load(io.BytesIO(data))
            _compare("TorchScript", model, lambda t: as_dict(scripted(t), graph), x, graph, atol, checks)
    else:
        opset = onnx_opset(source)
        data = onnx_bytes(model, x, graph, opset)
        if verify:
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                checks.append(f"ONNX opset {opset}: not run (onnxruntime is not installed)")
            else:
                _compare(f"ONNX opset {opset} (onnxruntime)", model,
                         lambda t: dict(zip(graph.outputs, map(torch.from_numpy, run_onnx(data, t)))), x, graph,
                         max(atol, 1e-4), checks)
    return Compiled(target, data, source, checks)


def _compare(what: str, model: nn.Module, run, x: torch.Tensor, graph: ArchGraph, atol: float,
             checks: list[str]) -> None:
    with torch.no_grad():
        expected, got = as_dict(model(x), graph), run(x)
    diff = max((expected[k] - got[k]).abs().max().item() for k in expected)
    if diff > atol:
        raise CheckFailed(f"{what} differs from the generated module by {diff:.3g} (tolerance {atol:g})")
    checks.append(f"{what} == generated module: max |diff| {diff:.3g}")


def _fold_batchnorm(model: nn.Module, x: torch.Tensor, graph: ArchGraph, seed: int,
                    checks: list[str] | None) -> None:
    """``compile --optimize``: fold BN into ``model``'s convs; with ``checks``, compare on random statistics first."""
    import copy

    from archgraph.backends.torch.optimize import optimize

    if checks is not None:
        probe = copy.deepcopy(model)
        randomize(probe, seed)  # random BN statistics: folding the defaults (mean 0, var 1) proves little
        folded = optimize(copy.deepcopy(probe), mkldnn=False, channels_last=False)
        with torch.no_grad():
            expected, got = as_dict(probe(x), graph), as_dict(folded(x), graph)
        rel = max(((got[k] - expected[k]).abs().max() / expected[k].abs().max().clamp_min(1e-12)).item()
                  for k in expected)
        if rel > 1e-4:
            raise CheckFailed(f"the optimised module differs from the generated module by {rel:.3g} relative "
                              "(tolerance 1e-4)")
        checks.append(f"optimised (BatchNorm folded) == generated module: max relative diff {rel:.3g}")
    optimize(model, mkldnn=False, channels_last=False)
