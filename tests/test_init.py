"""Init rules: a build starts as its spec's rules say, each layer initialised once, in both backends.

Oracles:

* the official HRNet entry points (tests/reference/hrnet_official.py: ``get_cls_net``,
  ``get_pose_net``, ``get_seg_model``, which run each repository's ``init_weights`` after the
  constructors), their keys mapped by :mod:`archgraph.weights.hrnet`: tensors the official code
  sets to a constant are equal, random ones have the same mean and standard deviation;
* the analytical distributions, with the fans worked out here from the shapes: kaiming_normal_
  with fan_out and relu is N(0, 2 / fan_out), the official pose and segmentation convs N(0, 0.001²),
  PyTorch's default conv and linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BatchNorm
  weight 1, bias 0, running mean 0, running variance 1;
* a count of the random draws into each parameter (the official code's two per conv weight show
  that the count can tell), and tensors allocated full of NaN, so that whatever a build leaves unset
  shows;
* the documented CLI contract (exit 2, one located line per problem) for bad rules.

The tolerances come from the sampling spread of a standard deviation: a sample of n values from
N(0, s²) has a std within about s / sqrt(2n) of s, from a uniform distribution within
0.45 s / sqrt(n); the checks allow six times that (and twice the variance for two samples), so they
are tight for large tensors and do not flake for small ones; tensors of fewer than ``SMALL``
values are checked only against their bounds.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.overrides import TorchFunctionMode

import archgraph
from archgraph.api import plain
from archgraph.backends.source import generate
from archgraph.backends.source.export import module_class
from archgraph.ops._layers import ZeroConv2d
from archgraph.weights.hrnet import hrnet_official
from tests.reference import hrnet_official as official
from tests.test_cli import TINY, run

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/hrnet.yaml"
HEADS = ["classification", "pose", "segmentation"]
ENTRY_POINTS = {
    "classification": lambda: official.get_cls_net(18),
    "pose": lambda: official.get_pose_net(18),
    "segmentation": lambda: official.get_seg_model(18, 19),
}
SIZES = {"classification": (64, 64), "pose": (64, 96), "segmentation": (64, 64)}
# a small AlignSeg-style network: flow_warp's offset generators end in a zero-initialised conv
WARP = """\
archgraph: 1
name: warp
input: {size: [32, 32]}
init:
  - {layers: norm, weight: constant, value: 0.5}
nodes:
  - name: fine
    stride: 2
    channels: 16
    from: image
    body: [{block: conv, channels: 16, stride: 2}]
  - name: coarse
    stride: 4
    channels: 16
    from: fine
    body: [{block: conv, channels: 16, stride: 2}]
  - {name: out, stride: 2, channels: 16, output: true}
edges:
  - {from: coarse, to: out, op: flow_warp, variant: alignseg, guide: fine}
"""
SMALL = 64  # fewer values than this: only the bounds are checked, not the std
SPREAD = {"normal": math.sqrt(0.5), "uniform": math.sqrt(0.2)}  # sqrt(n) * the relative spread of a sample std


# --- the oracles ----------------------------------------------------------------------------------


def official_start(model: nn.Module, head: str | None) -> dict[str, tuple[str, float]]:
    """How each tensor of an official HRNet starts: ("constant", v), ("normal", std) or ("uniform", bound).

    ``head`` None: the constructors alone (PyTorch's defaults); otherwise that repository's
    ``init_weights`` after them.
    """
    start: dict[str, tuple[str, float]] = {}
    for name, m in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(m, nn.BatchNorm2d):
            for tensor, value in [("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0),
                                  ("num_batches_tracked", 0)]:
                start[prefix + tensor] = ("constant", value)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            shape = m.weight.shape
            receptive = math.prod(shape[2:])
            fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
            default = ("uniform", 1 / math.sqrt(fan_in))
            conv = isinstance(m, nn.Conv2d)
            if conv and head == "classification":
                start[prefix + "weight"] = ("normal", math.sqrt(2 / fan_out))
            elif conv and head in ("pose", "segmentation"):
                start[prefix + "weight"] = ("normal", 0.001)
            else:
                start[prefix + "weight"] = default
            if m.bias is not None:
                start[prefix + "bias"] = ("constant", 0.0) if conv and head == "pose" else default
    assert start.keys() == model.state_dict().keys()  # every tensor has its expected start
    return start


def std_of(start: tuple[str, float]) -> float:
    kind, value = start
    return value if kind == "normal" else value / math.sqrt(3)


def off_start(tensor: torch.Tensor, start: tuple[str, float]) -> str | None:
    """Why ``tensor`` does not look drawn from ``start``, or None."""
    kind, value = start
    if kind == "constant":
        return None if bool(torch.all(tensor == value)) else f"not all {value}"
    x = tensor.detach().double().flatten()
    n = x.numel()
    std = std_of(start)
    if kind == "uniform" and x.abs().max() > value:
        return f"max |x| {x.abs().max():.4g} over the bound {value:.4g}"
    if kind == "normal" and x.abs().max() > 8 * std:
        return f"max |x| {x.abs().max():.4g} over 8 std ({std:.4g})"
    if n < SMALL:
        return None
    if abs(x.std() / std - 1) > 6 * SPREAD[kind] / math.sqrt(n):
        return f"std {x.std():.4g}, expected {std:.4g}"
    if abs(x.mean()) > 6 * std / math.sqrt(n):
        return f"mean {x.mean():.4g}, expected 0 (std {std:.4g})"
    return None


def off_starts(state: dict[str, torch.Tensor], starts: dict[str, tuple[str, float]]) -> dict[str, str]:
    assert state.keys() == starts.keys()
    return {k: why for k, start in starts.items() if (why := off_start(state[k], start))}


def unlike(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> dict[str, str]:
    """Where ``ours`` does not start as ``theirs``: their constants exactly, their random tensors in
    distribution (the same std and mean within the sampling spread of both)."""
    assert ours.keys() == theirs.keys()
    differ = {}
    for key, b in theirs.items():
        a = ours[key]
        if a.shape != b.shape or a.dtype != b.dtype:
            differ[key] = f"{a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
            continue
        x, y = a.detach().double().flatten(), b.detach().double().flatten()
        n = y.numel()
        if bool(torch.all(y == y[0])):
            if not torch.equal(a, b):
                differ[key] = "their constant differs"
        elif bool(torch.all(x == x[0])):
            differ[key] = "constant where theirs is random"
        elif n >= SMALL:
            if abs(x.std() / y.std() - 1) > 6 / math.sqrt(n):
                differ[key] = f"std {x.std():.4g} vs {y.std():.4g}"
            elif abs(x.mean() - y.mean()) > 6 * math.sqrt((x.var() + y.var()) / n):
                differ[key] = f"mean {x.mean():.4g} vs {y.mean():.4g}"
    return differ


def mapped(official_keys: dict, graph) -> dict:
    """An official model's state_dict (or its starts) under archgraph's keys."""
    return {hrnet_official(k, graph): v for k, v in official_keys.items()}


# --- builds, once per module ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hrnet() -> dict[str, tuple]:
    """Per head: (graph, our state_dict, the official entry point's state_dict, its expected starts)."""
    out = {}
    for k, head in enumerate(HEADS):
        graph = archgraph.load(SPEC, width=18, head=head)
        torch.manual_seed(10 + k)
        ours = archgraph.build(graph).state_dict()
        torch.manual_seed(20 + k)
        theirs = ENTRY_POINTS[head]()
        out[head] = graph, ours, mapped(theirs.state_dict(), graph), mapped(official_start(theirs, head), graph)
    return out


# --- 1. the official initialisation, per head -----------------------------------------------------


@pytest.mark.parametrize("head", HEADS)
def test_the_official_entry_points_start_as_their_init_weights_say(hrnet, head):
    """The oracle's own check: the official models are what the analytical starts describe."""
    _, _, theirs, starts = hrnet[head]
    assert off_starts(theirs, starts) == {}


@pytest.mark.parametrize("head", HEADS)
def test_each_head_starts_as_the_official_code(hrnet, head):
    _, ours, theirs, starts = hrnet[head]
    assert unlike(ours, theirs) == {}
    assert off_starts(ours, starts) == {}
    kinds = Counter(kind for kind, _ in starts.values())
    assert kinds["normal"] > 100 and kinds["constant"] > 1000  # the comparison covered what it should
    if head == "pose":  # the pose code zeroes the heatmap conv's bias
        assert torch.equal(ours["nodes.heatmaps.0.0.bias"], torch.zeros(17))
    if head == "classification":  # the classifier's Linear keeps PyTorch's default
        assert starts["nodes.classifier.2.weight"] == ("uniform", 1 / math.sqrt(2048))


@pytest.mark.parametrize(("head", "constructor"), [
    ("classification", lambda: official.hrnet_cls(18)),
    ("pose", lambda: official.get_pose_net(18, is_train=False)),  # init_weights only when training
])
def test_the_comparison_tells_pytorch_defaults_from_the_rules(hrnet, head, constructor):
    graph, ours, _, rules = hrnet[head]
    torch.manual_seed(30)
    model = constructor()
    defaults, default_starts = mapped(model.state_dict(), graph), mapped(official_start(model, None), graph)
    differ = unlike(ours, defaults)
    convs = [k for k, (kind, _) in rules.items() if kind == "normal"]  # the rules' conv weights
    # those whose std under the rule is off PyTorch's default by well over the tolerance
    apart = [k for k in convs
             if abs(std_of(rules[k]) / std_of(default_starts[k]) - 1) > 12 / math.sqrt(ours[k].numel())]
    assert len(apart) > 0.9 * len(convs)
    assert set(apart) <= differ.keys()  # each of them is told apart
    assert all(default_starts[k][0] != "constant" for k in differ)  # BatchNorm starts alike either way
    assert set(apart) <= off_starts(defaults, rules).keys()  # and off the rules' analytical starts
    if head == "pose":
        assert "nodes.heatmaps.0.0.bias" in differ  # random there, zero here



def test_resnet_starts_as_torchvision_builds_it():
    """specs/resnet.yaml's rule is torchvision's ResNet.__init__ loop (kaiming_normal_, fan_out)."""
    from archgraph.weights.torchvision import torchvision_resnet
    from tests.reference.resnet_fpn import resnet

    graph = archgraph.load("specs/resnet.yaml", depth=18)
    torch.manual_seed(0)
    ours = archgraph.build(graph).state_dict()
    torch.manual_seed(1)
    theirs = {torchvision_resnet(k, graph): v for k, v in resnet(18).state_dict().items()}
    assert unlike(ours, theirs) == {}
    torch.manual_seed(0)
    defaults = archgraph.build(dataclasses.replace(graph, init=())).state_dict()  # the check can fail
    assert len(unlike(defaults, theirs)) >= 20  # every conv weight (20 in ResNet-18) differs

# --- 2. each layer once, nothing left unset -------------------------------------------------------


# the calls that draw random values into a tensor, and those that make a new random tensor
DRAWS = {nn.init.uniform_, nn.init.normal_, nn.init.trunc_normal_, nn.init.kaiming_uniform_,
         nn.init.kaiming_normal_, nn.init.xavier_uniform_, nn.init.xavier_normal_, nn.init.orthogonal_,
         nn.init.sparse_, torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.random_,
         torch.Tensor.bernoulli_, torch.Tensor.exponential_, torch.Tensor.log_normal_, torch.Tensor.cauchy_,
         torch.Tensor.geometric_}
RANDOM_TENSORS = {torch.rand, torch.randn, torch.randint, torch.randperm, torch.normal, torch.bernoulli,
                  torch.rand_like, torch.randn_like, torch.randint_like, torch.multinomial}
ALLOCATIONS = {torch.empty, torch.empty_like, torch.empty_strided, torch.Tensor.new_empty}


class Watch(TorchFunctionMode):
    """Counts the random draws into each real (not meta) tensor, by storage address; a nested call
    (nn.init.kaiming_uniform_'s own Tensor.uniform_) is not seen, so one draw counts once. With
    ``poison``, every tensor allocated without values is filled with NaN (integers with -7), so that
    whatever a build leaves unset shows, where fresh memory would often hold zeros."""

    def __init__(self, poison: bool = False):
        super().__init__()
        self.poison = poison
        self.draws: Counter = Counter()
        self.random_tensors = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in DRAWS:
            tensor = args[0] if args else kwargs["tensor"]
            if tensor.device.type != "meta":
                self.draws[tensor.data_ptr()] += 1
        elif func in RANDOM_TENSORS:
            self.random_tensors += 1
        out = func(*args, **kwargs)
        if self.poison and func in ALLOCATIONS and out.device.type != "meta":
            with torch.no_grad():
                out.fill_(math.nan if out.is_floating_point() else -7)
        return out


@pytest.mark.parametrize("head", HEADS)
def test_each_random_start_is_drawn_once(hrnet, head):
    graph, _, _, starts = hrnet[head]
    with Watch() as watch:
        model = archgraph.build(graph)
    params = dict(model.named_parameters())
    drawn = {k: watch.draws[p.data_ptr()] for k, p in params.items()}
    assert drawn == {k: int(starts[k][0] != "constant") for k in params}
    assert sum(watch.draws.values()) == sum(drawn.values()) and watch.random_tensors == 0


def test_the_count_tells_a_second_draw():
    with Watch() as watch:
        model = official.get_seg_model(18, 19)  # PyTorch's default draws, then init_weights
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) > 100
    assert [watch.draws[w.data_ptr()] for w in convs] == [2] * len(convs)


@pytest.mark.parametrize("head", HEADS)
def test_nothing_is_left_unset(head):
    torch.manual_seed(0)
    with Watch(poison=True):
        model = archgraph.build(SPEC, width=18, head=head).eval()
    state = model.state_dict()
    assert all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point())
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) > 100
    for m in norms:
        assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))
        assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
        assert torch.equal(m.running_var, torch.ones_like(m.running_var))
        assert m.num_batches_tracked.item() == 0
    with torch.no_grad():
        out = model(torch.randn(2, 3, *SIZES[head]))
    assert torch.isfinite(out).all() and out.abs().max() > 0


def test_the_poison_shows_what_a_build_leaves_unset(monkeypatch):
    monkeypatch.setattr("archgraph.backends.torch.executor.initialise", lambda module, rules: None)
    with Watch(poison=True):
        model = archgraph.build(SPEC, width=18, head="segmentation")
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(bool(torch.isnan(w).all()) for w in convs)


# --- 3. a seed decides the start ------------------------------------------------------------------


def test_the_same_seed_gives_the_same_start_and_another_seed_another():
    graph = archgraph.load(SPEC, width=18, head="segmentation")
    states = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        states.append(archgraph.build(graph).state_dict())
    first, again, other = states
    assert all(torch.equal(first[k], again[k]) for k in first)
    random = [k for k in first if not bool(torch.all(first[k] == first[k].flatten()[0]))]
    assert len(random) > 100
    assert not any(torch.equal(first[k], other[k]) for k in random)


# --- 4. the generated source ----------------------------------------------------------------------


@pytest.mark.parametrize("head", HEADS)
def test_the_generated_source_starts_as_the_executor(hrnet, head):
    graph, ours, _, starts = hrnet[head]
    torch.manual_seed(40)
    generated = module_class(graph)().state_dict()
    assert list(generated) == list(ours)
    assert unlike(generated, ours) == {}
    assert off_starts(generated, starts) == {}


def test_the_generated_source_writes_the_rules_as_the_official_code():
    pose = generate(archgraph.load(SPEC, width=18, head="pose"))
    assert ("        for m in self.modules():\n"
            "            if isinstance(m, nn.Conv2d):\n"
            "                nn.init.normal_(m.weight, std=0.001)\n"
            "                if m.bias is not None:\n"
            "                    nn.init.constant_(m.bias, val=0.0)\n") in pose
    classification = generate(archgraph.load(SPEC, width=18, head="classification"))
    assert 'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")' in classification
    assert classification.count("for m in self.modules():") == 1
    assert "m.bias" not in classification


def test_only_a_spec_with_rules_generates_an_init_loop():
    data = yaml.safe_load(WARP)
    assert "for m in self.modules():\n" in generate(archgraph.load(data))
    del data["init"]
    source = generate(archgraph.load(data))
    assert "self.modules()" not in source and "isinstance(m," not in source


# --- 5. what no rule covers keeps its own start ---------------------------------------------------




def _warp_starts(model: nn.Module) -> dict[str, tuple[str, float]]:
    """The warp spec's starts: norms by the rule, the offset convs zero, other convs PyTorch's default."""
    start: dict[str, tuple[str, float]] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            for tensor, value in [("weight", 0.5), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0),
                                  ("num_batches_tracked", 0)]:
                start[f"{name}.{tensor}"] = ("constant", value)
        elif isinstance(m, nn.Conv2d):
            offsets = name.endswith(("delta_gen1.2", "delta_gen2.2"))
            fan_in = math.prod(m.weight.shape[1:])
            start[f"{name}.weight"] = ("constant", 0.0) if offsets else ("uniform", 1 / math.sqrt(fan_in))
            if m.bias is not None:
                start[f"{name}.bias"] = ("uniform", 1 / math.sqrt(fan_in))
    return start


@pytest.mark.parametrize("backend", ["executor", "source"])
def test_a_rule_keeps_the_other_layers_own_starts(tmp_path, backend):
    path = tmp_path / "warp.yaml"
    path.write_text(WARP)
    graph = archgraph.load(path)
    assert [r.layers for r in graph.init] == ["norm"]
    torch.manual_seed(1)
    with Watch(poison=True):
        model = archgraph.build(graph) if backend == "executor" else module_class(graph)()
    starts = _warp_starts(model)
    assert starts.keys() == model.state_dict().keys()
    offsets = [k for k, (kind, _) in starts.items() if kind == "constant" and "delta_gen" in k and ".2." in k]
    assert offsets == ["edges.out.coarse.delta_gen1.2.weight", "edges.out.coarse.delta_gen2.2.weight"]
    assert sum(type(m).__name__ == ZeroConv2d.__name__ for m in model.modules()) == 2  # the source has its own
    assert off_starts(model.state_dict(), starts) == {}
    assert sum(kind == "uniform" and model.state_dict()[k].numel() >= SMALL for k, (kind, _) in starts.items()) >= 4


def test_a_conv_rule_covers_the_offset_convs_as_the_official_loops_would():
    """A rule covers every layer of its kind, subclasses included (isinstance), in both backends."""
    data = yaml.safe_load(WARP)
    data["init"] = [{"layers": "conv", "weight": "normal", "std": 0.01}]
    graph = archgraph.load(data)
    for model in (archgraph.build(graph), module_class(graph)()):
        offsets = model.edges["out"]["coarse"].delta_gen1[2].weight
        assert offsets.abs().max() > 0
        assert off_start(offsets, ("normal", 0.01)) is None


# --- 6. bad rules ---------------------------------------------------------------------------------


RULE_LINE = TINY.count("\n") + 2  # the first rule's line, after "init:"


def _spec(tmp_path: Path, *rules: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(TINY + "init:\n" + "".join(f"  - {rule}\n" for rule in rules))
    return path


@pytest.mark.parametrize(("rule", "message"), [
    ("{layers: conv, weight: kaiming_normal, std: 0.1}", "std does not apply to weight: kaiming_normal"),
    ("{layers: conv, weight: normal, mode: fan_out}", "mode does not apply to weight: normal"),
    ("{layers: conv, weight: normal, std: 0.1, value: 1}", "value does not apply to weight: normal"),
    ("{layers: conv, weight: normal}", "weight: normal needs a positive std"),
    ("{layers: conv, weight: normal, std: 0}", "weight: normal needs a positive std"),
    ("{layers: conv, weight: constant}", "weight: constant needs a value"),
    ("{layers: norm, weight: kaiming_normal}", "a norm layer's weight is a scale: give weight: constant"),
    ("{layers: convs, weight: normal, std: 0.1}",
     "'layers' must be 'conv' or 'deconv' or 'linear' or 'norm', got 'convs' (hint: did you mean 'conv'?)"),
    ("{layers: conv, weight: normal, std: 0.1, sdt: 1}", "unknown key 'sdt' (hint: did you mean 'std'?)"),
    ("{layers: conv, weight: kaiming_normal, mode: fan_outt}",
     "'mode' must be 'fan_in' or 'fan_out', got 'fan_outt' (hint: did you mean 'fan_out'?)"),
    ("{layers: conv, weight: normal, std: 0.1, when: widht == 8}", "unknown parameter 'widht'"),
])
def test_a_bad_rule_is_an_error_at_its_line(tmp_path, rule, message):
    path = _spec(tmp_path, rule)
    result = run("validate", str(path))
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    where, _, what = line.partition(": error: ")
    assert where.startswith(f"{path}:{RULE_LINE}:")
    assert message in what


def test_two_active_rules_for_one_kind_are_an_error_at_the_second(tmp_path):
    path = _spec(tmp_path, "{layers: conv, weight: normal, std: 0.1}", "{layers: norm, weight: constant, value: 1}",
                 "{layers: conv, weight: normal, std: 0.2, when: width == 8}")
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr == (f"{path}:{RULE_LINE + 2}:14: error: a second init rule for conv layers (hint: the "
                             f"first is at line {RULE_LINE}; give them when: conditions that exclude each other)\n")


def test_rules_whose_conditions_exclude_each_other_are_fine(tmp_path):
    path = _spec(tmp_path, "{layers: conv, weight: normal, std: 0.1, when: width == 8}",
                 "{layers: conv, weight: normal, std: 0.2, when: width != 8}")
    result = run("validate", str(path))
    assert result.exit_code == 0, result.stderr
    assert [(r.std, r.when) for r in plain(path).init] == [(0.1, None)]
    assert [(r.std, r.when) for r in plain(path, width=16).init] == [(0.2, None)]
    never = _spec(tmp_path, "{layers: conv, weight: normal, std: 0.1, when: width > 8}")
    assert "init" not in plain(never).to_data()


# --- 7. expand writes the rules that apply ---------------------------------------------------------


def test_the_expanded_spec_keeps_the_rule_that_applies(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run("expand", SPEC, "--set", "width=18", "--set", "head=pose")
    assert result.exit_code == 0, result.stderr
    target = tmp_path / "pose.yaml"
    target.write_text(result.stdout)
    assert yaml.safe_load(target.read_text())["init"] == [
        {"layers": "conv", "weight": "normal", "std": 0.001, "bias": 0.0}]
    again = run("validate", str(target))
    assert again.exit_code == 0, again.stderr
    graph = archgraph.load(target)
    torch.manual_seed(50)
    expanded = archgraph.build(graph).state_dict()
    torch.manual_seed(51)
    direct = archgraph.build(SPEC, width=18, head="pose").state_dict()
    assert unlike(expanded, direct) == {}
    assert torch.equal(expanded["nodes.heatmaps.0.0.bias"], torch.zeros(17))
    assert off_start(expanded["nodes.layer1.0.conv2.weight"], ("normal", 0.001)) is None
