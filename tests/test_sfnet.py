"""specs/sfnet.yaml builds the official SFNet: the same outputs for the same weights, checkpoints import.

Oracle: a port of the official code (lxtGH/SFSegNets: ``AlignNetResNet`` with the deep-stem
ResNet of ``resnet_d.py``, ``UperNetAlignHead``, ``PSPModule`` and ``AlignedModule``;
tests/reference/sfnet_official.py), whose weights (random, BN statistics too) go into the
archgraph module through the ``sfnet_official`` key mapping, strictly, and must then give its
outputs. Its dilated trunk ("variant D") is checked to matter: the undilated spec matches the
undilated port, and not the dilated one. fvcore counts the port's FLOPs as the static cost model
counts the spec's. With ``deep_supervision`` the spec has the port's ``fpn_dsn`` heads: their
parameters, their keys (a "+dsn" checkpoint imports) and the maps the head returns for its loss.

Budget: ResNet-18 forwards at 64x64, 68x52 and 70x50; ResNet-50 and -101 only on the meta device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import archgraph
from archgraph.analysis import convention, profile
from archgraph.cli import app
from archgraph.errors import SpecErrors
from archgraph.weights import checkpoint
from tests.reference import sfnet_official as official
from tests.test_refinenet import scaled_weights

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "specs" / "sfnet.yaml")
OFFICIAL = {18: 12_869_715, 50: 31_325_139, 101: 50_317_267}  # AlignNetResNet, 19 classes
DSN = {18: 13_320_588, 50: 33_111_564, 101: 52_103_692}  # AlignNetResNet(fpn_dsn=True), 19 classes
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def theirs(depth: int = 18, variant: str = "D", fpn_dsn: bool = False) -> torch.nn.Module:
    """The port with random weights and BN statistics, in eval mode."""
    torch.manual_seed(0)
    model = official.sfnet(depth, variant=variant, fpn_dsn=fpn_dsn)
    scaled_weights(model)
    return model.eval()


def ours(model: torch.nn.Module, **params) -> torch.nn.Module:
    """specs/sfnet.yaml's module with ``model``'s weights, through the registered key mapping."""
    return checkpoint.load(archgraph.load(SPEC, **params), model.state_dict(), "sfnet_official").eval()


def undilated(path: Path) -> Path:
    """specs/sfnet.yaml with the trunk left undilated (the official code's other variants)."""
    text = Path(SPEC).read_text()
    line = "    dilation: [1, 1, 2, 4]"
    assert line in text
    path.write_text(text.replace(line, "    dilation: [1, 1, 1, 1]"))
    return path


# 68x52: the strides 8 to 32 are odd sizes (9x7, 5x4, 3x2), each warped onto its finer guide's grid;
# 70x50: neither side a multiple of 4 (stride 4 is 18x13): the logits are resized to the input's size
@pytest.mark.parametrize("size", [(64, 64), (68, 52), (70, 50)])
def test_same_outputs_as_the_official_code_for_the_same_weights(size):
    reference = theirs()
    model = ours(reference)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        got, expected = model(x), reference(x)
    assert got.shape == expected.shape == (2, 19, *size)
    assert 1e-2 < expected.abs().max() < 1e3  # random weights that neither vanish nor explode
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def with_heads(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The port's eval output (``main_out``) and the deep-supervision maps its head returns beside the
    stride-4 logits (``out``: dsn[2](f4), dsn[1](f3), dsn[0](f2)), which only its training branch uses."""
    seen = []
    handle = model.head.register_forward_hook(lambda module, args, result: seen.append(result))
    try:
        with torch.no_grad():
            main_out = model(x)
    finally:
        handle.remove()
    (_, out), = seen
    return {"logits": main_out, **dict(zip(["dsn4", "dsn3", "dsn2"], out, strict=True))}


def test_the_deep_supervision_heads_give_the_official_maps():
    # 68x52: the dsn maps keep their levels' odd sizes (17x13, 9x7, 5x4); the logits are the same as without them
    reference = theirs(fpn_dsn=True)
    model = ours(reference, deep_supervision=True)
    x = torch.randn(2, 3, 68, 52)
    expected = with_heads(reference, x)
    with torch.no_grad():
        got = model(x)
    assert list(got) == ["logits", "dsn4", "dsn3", "dsn2"]
    assert [tuple(t.shape[2:]) for t in got.values()] == [(68, 52), (5, 4), (9, 7), (17, 13)]
    for name, tensor in expected.items():
        assert 1e-2 < tensor.abs().max() < 1e3, name
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=1e-5, msg=name)
    without = theirs()  # the same weights but the dsn heads': the default spec's logits are the same
    without.load_state_dict({k: v for k, v in reference.state_dict().items() if ".dsn." not in k})
    with torch.no_grad():
        torch.testing.assert_close(ours(without)(x), got["logits"], rtol=0, atol=1e-5)


def test_the_dilation_is_the_official_codes(tmp_path):
    # without variant D both are undilated and agree; the dilated spec does not give the undilated outputs
    plain = theirs(variant="none")
    x = torch.randn(1, 3, 64, 64)
    spec = undilated(tmp_path / "sfnet.yaml")
    model = checkpoint.load(archgraph.load(spec), plain.state_dict(), "sfnet_official").eval()
    with torch.no_grad():
        expected = plain(x)
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-5)
        assert (ours(plain)(x) - expected).abs().max() > 1e-2
    graph = archgraph.load(SPEC)
    for node, dilation in (("resnet_c2", 1), ("resnet_c3", 1), ("resnet_c4", 2), ("resnet_c5", 4)):
        assert [block.dilation for block in graph.nodes[node].body] == [dilation] * 2, node


@pytest.mark.parametrize("dsn", [False, True])
@pytest.mark.parametrize("depth", list(OFFICIAL))
def test_parameters_and_keys_are_the_official_codes(depth, dsn):
    with torch.device("meta"):
        reference = official.sfnet(depth, fpn_dsn=dsn)
        model = archgraph.build(SPEC, depth=depth, deep_supervision=dsn)
    assert sum(p.numel() for p in reference.parameters()) == sum(p.numel() for p in model.parameters()) \
        == (DSN if dsn else OFFICIAL)[depth]
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    graph = archgraph.load(SPEC, depth=depth, deep_supervision=dsn)
    mapped = checkpoint.map_keys(reference.state_dict(), graph, "sfnet_official", expected)
    assert list(mapped) == list(expected)


@pytest.mark.parametrize("size", [(64, 64), (70, 50)])  # 70x50: the final resize to the input's size
def test_fvcore_counts_the_official_code_as_the_static_model_counts_the_spec(size):
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(theirs(), torch.zeros(1, 3, *size))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    assert int(analysis.total()) == convention("fvcore").count(profile(archgraph.load(SPEC), size).total)


# --- archgraph weights import ---------------------------------------------------------------------


def training_snapshot(model: torch.nn.Module) -> dict:
    """What SFSegNets' training saves (utils/misc.py, evaluate_eval): the DataParallel/DDP module's state
    dict, its keys prefixed with 'module.', beside the optimizer state, the epoch, the mean IoU (a numpy
    float) and the command line."""
    return {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]},
            "epoch": 299, "mean_iu": np.nanmean(np.array([0.79, 0.81])), "command": "--arch x"}


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_an_official_training_snapshot_imports(tmp_path):
    reference = theirs()
    torch.save(training_snapshot(reference), tmp_path / "best_epoch_299_mean-iu_0.80000.pth")
    result = run("weights", "import", SPEC, tmp_path / "best_epoch_299_mean-iu_0.80000.pth", "-o", tmp_path / "o.pt")
    assert result.exit_code == 0, result.stderr
    assert f"{OFFICIAL[18]:,} parameters" in result.stdout
    model = archgraph.build(SPEC).eval()
    model.load_state_dict(torch.load(tmp_path / "o.pt", weights_only=True), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-5)


def test_a_dsn_training_snapshot_imports_with_deep_supervision(tmp_path):
    # the README's "+dsn" checkpoint (DeepR18_SF_deeply_dsn): strictly, with every output the port's head gives
    reference = theirs(fpn_dsn=True)
    ckpt = tmp_path / "best_epoch_299_mean-iu_0.80000.pth"
    torch.save(training_snapshot(reference), ckpt)
    result = run("weights", "import", SPEC, ckpt, "-o", tmp_path / "o.pt", "--set", "deep_supervision=true")
    assert result.exit_code == 0, result.stderr
    assert f"{DSN[18]:,} parameters" in result.stdout
    model = archgraph.build(SPEC, deep_supervision=True).eval()
    model.load_state_dict(torch.load(tmp_path / "o.pt", weights_only=True), strict=True)
    x = torch.randn(1, 3, 64, 64)
    expected = with_heads(reference, x)
    with torch.no_grad():
        got = model(x)
    assert list(got) == list(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=1e-5, msg=name)


def test_a_dsn_snapshot_without_deep_supervision_is_refused_naming_its_heads(tmp_path):
    torch.save(training_snapshot(theirs(fpn_dsn=True)), tmp_path / "dsn.pth")
    result = run("weights", "import", SPEC, tmp_path / "dsn.pth", "-o", tmp_path / "o.pt")
    assert result.exit_code == 2 and not (tmp_path / "o.pt").exists()
    assert ("checkpoint key 'head.dsn.0.0.weight' maps to 'nodes.dsn2.0.0.weight', which SFNet does not have"
            in result.stderr)
    assert ("the checkpoint does not fit SFNet (depth=18 classes=19 deep_supervision=False) under sfnet_official: "
            "27 extra (hint: check the --set parameters against the checkpoint's variant)") in result.stderr
    # and the other way: deep_supervision asks for heads a plain snapshot lacks
    torch.save(training_snapshot(theirs()), tmp_path / "plain.pth")
    result = run("weights", "import", SPEC, tmp_path / "plain.pth", "-o", tmp_path / "o.pt",
                 "--set", "deep_supervision=true")
    assert result.exit_code == 2 and not (tmp_path / "o.pt").exists()
    assert "SFNet's 'nodes.dsn4.0.0.weight' has no key in the checkpoint" in result.stderr
    assert "under sfnet_official: 24 missing (hint: check the --set parameters" in result.stderr


def test_keys_without_a_rule_are_named():
    state = dict(theirs().state_dict())
    state["head.fpn_out_align.3.down_h.weight"] = torch.zeros(64, 128, 1, 1)  # no fourth FAM
    state["head.aux.0.weight"] = torch.zeros(19, 128, 1, 1)
    with pytest.raises(SpecErrors) as info:
        checkpoint.load(archgraph.load(SPEC), state, "sfnet_official")
    text = str(info.value)
    assert "checkpoint key 'head.fpn_out_align.3.down_h.weight' has no rule in sfnet_official" in text
    assert "checkpoint key 'head.aux.0.weight' has no rule in sfnet_official" in text
    assert ("the checkpoint does not fit SFNet (depth=18 classes=19 deep_supervision=False) under sfnet_official: "
            "2 without a rule") in text


def test_the_resnet_pattern_takes_one_dilation_per_layer(tmp_path):
    spec = tmp_path / "sfnet.yaml"
    spec.write_text(Path(SPEC).read_text().replace("dilation: [1, 1, 2, 4]", "dilation: [2, 4]"))
    with pytest.raises(archgraph.SpecError, match=r"dilation needs one value per layer \(4\), got 2"):
        archgraph.load(spec)
