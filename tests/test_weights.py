"""`archgraph weights import`: checkpoints with another implementation's key names, onto archgraph's module.

Oracles: checkpoints written by independent implementations of the official layouts (the ports of
the official HRNet code in tests/reference/hrnet_official.py, of torchvision's ResNet and
BackboneWithFPN in tests/reference/resnet_fpn.py), with random weights and BN statistics. After
the import, ``archgraph.build(spec, ...)`` loads the written state dict with ``strict=True`` and
computes the same outputs (atol 1e-5). Broken checkpoints exit with 2, say what is wrong (the key,
both shapes, a did-you-mean), and leave no file.

Budget: HRNet at W18 (the heads' widths do not shrink with C), ResNet-18; inputs of 64x64 and less.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import archgraph
from archgraph.api import plain
from archgraph.backends.source.export import randomize
from archgraph.cli import app
from archgraph.errors import SpecError
from archgraph.weights import checkpoint, key_maps
from tests.reference import hrnet_official as official
from tests.reference import resnet_fpn as tv

ROOT = Path(__file__).resolve().parent.parent
HRNET, RESNET, FPN = (str(ROOT / "specs" / f"{name}.yaml") for name in ("hrnet", "resnet", "fpn"))



def run(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def written_by(model: torch.nn.Module, path: Path, wrap=lambda state: state) -> torch.nn.Module:
    """``model`` with random weights, its state dict saved to ``path`` (through ``wrap``), in eval mode."""
    randomize(model, seed=1)
    with torch.no_grad():  # num_batches_tracked too, so that a dropped one would show
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(7)
    torch.save(wrap(model.state_dict()), path)
    return model.eval()


CASES = {
    "hrnet-cls": (lambda: official.hrnet_cls(18), HRNET, ["width=18"], (64, 64)),
    "hrnet-pose": (lambda: official.hrnet_pose(18), HRNET, ["width=18", "head=pose"], (64, 96)),
    "hrnet-seg": (lambda: official.hrnet_seg(18), HRNET, ["width=18", "head=segmentation"], (70, 50)),
    "resnet18": (lambda: tv.resnet(18), RESNET, ["depth=18"], (64, 64)),
    "fpn-resnet18": (lambda: tv.resnet_fpn(18), FPN, ["depth=18"], (70, 50)),
}
WRAPS = {  # how training scripts save: plain; {"state_dict": ...} with DataParallel's "module." prefix
    "hrnet-pose": lambda state: {"epoch": 140, "state_dict": {f"module.{k}": v for k, v in state.items()}},
    "fpn-resnet18": lambda state: {"model": state, "optimizer": {"lr": torch.tensor(0.1)}},
}


@pytest.mark.parametrize("case", list(CASES))
def test_imported_weights_give_the_reference_outputs(case, tmp_path):
    make, spec, sets, size = CASES[case]
    torch.manual_seed(0)
    theirs = written_by(make(), tmp_path / "theirs.pth", WRAPS.get(case, lambda s: s))
    args = [x for s in sets for x in ("--set", s)]
    result = run("weights", "import", spec, tmp_path / "theirs.pth", "-o", tmp_path / "ours.pt", *args)
    assert result.exit_code == 0, result.stderr
    assert "wrote" in result.stdout and f"{sum(p.numel() for p in theirs.parameters()):,} parameters" in result.stdout

    params = dict(s.split("=") for s in sets)
    ours = archgraph.build(spec, **{k: v if not v.isdigit() else int(v) for k, v in params.items()}).eval()
    state = torch.load(tmp_path / "ours.pt", weights_only=True)
    ours.load_state_dict(state, strict=True)
    assert all(int(v) == 7 for k, v in state.items() if k.endswith("num_batches_tracked"))
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        got, expected = ours(x), theirs(x)
    if isinstance(got, dict):  # FPN: P2..P5 against torchvision's '0'..'3'
        assert len(got) == len(expected)
        pairs = list(zip(got.values(), expected.values()))
    else:
        pairs = [(got, expected)]
    for g, e in pairs:
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


def test_old_checkpoints_without_num_batches_tracked_import(tmp_path):
    state = {k: v for k, v in written_by(tv.resnet(18), tmp_path / "x.pth").state_dict().items()
             if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    result = run("weights", "import", RESNET, tmp_path / "old.pth", "-o", tmp_path / "ours.pt", "--set", "depth=18")
    assert result.exit_code == 0, result.stderr
    ours = torch.load(tmp_path / "ours.pt", weights_only=True)
    assert int(ours["nodes.resnet_stem.0.1.num_batches_tracked"]) == 0


# --- checkpoints that do not fit --------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    model = tv.resnet(18)
    randomize(model, seed=2)
    return dict(model.state_dict())


def failing(tmp_path: Path, state, *args: str) -> str:
    path = tmp_path / "bad.pth"
    if isinstance(state, (bytes, str)):
        path.write_bytes(state if isinstance(state, bytes) else state.encode())
    else:
        torch.save(state, path)
    out = tmp_path / "out.pt"
    result = run("weights", "import", RESNET, path, "-o", out, "--set", "depth=18", *args)
    assert result.exit_code == 2, result.stdout
    assert not out.exists() and list(tmp_path.iterdir()) == [path]  # nothing written, no temporary left
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(line.startswith(f"{path}: error: ") for line in lines), lines
    return result.stderr


def test_a_missing_key_is_named(tmp_path, resnet18_state):
    state = {k: v for k, v in resnet18_state.items() if k != "layer2.0.downsample.0.weight"}
    err = failing(tmp_path, state)
    assert "ResNet's 'nodes.resnet_c3.0.downsample.0.weight' has no key in the checkpoint" in err
    assert "1 missing" in err


def test_a_misspelt_key_gets_a_did_you_mean(tmp_path, resnet18_state):
    state = dict(resnet18_state)
    state["layer1.1.con1.weight"] = state.pop("layer1.1.conv1.weight")
    err = failing(tmp_path, state)
    assert ("checkpoint key 'layer1.1.con1.weight' maps to 'nodes.resnet_c2.1.con1.weight', which ResNet does not "
            "have (hint: did you mean 'nodes.resnet_c2.1.conv1.weight'?)") in err
    assert ("ResNet's 'nodes.resnet_c2.1.conv1.weight' has no key in the checkpoint (hint: did you mean checkpoint "
            "key 'layer1.1.con1.weight'?)") in err


def test_an_extra_key_is_named(tmp_path, resnet18_state):
    err = failing(tmp_path, {**resnet18_state, "aux_head.weight": torch.zeros(3)})
    assert "checkpoint key 'aux_head.weight' has no rule in torchvision_resnet" in err
    assert "1 without a rule" in err


def test_a_wrong_shape_shows_both_shapes(tmp_path, resnet18_state):
    state = {**resnet18_state, "fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}
    err = failing(tmp_path, state)
    assert "checkpoint key 'fc.weight' has shape 10x512, but ResNet's 'nodes.classifier.1.weight' has shape 1000x512" \
        in err
    assert "2 of another shape (hint: check the --set parameters against the checkpoint's variant)" in err


def test_another_network_s_checkpoint_is_refused_in_a_few_lines(tmp_path, resnet18_state):
    err = failing(tmp_path, resnet18_state, "--set", "depth=50")
    assert len(err.splitlines()) <= 4 * (checkpoint.SHOWN + 1) + 1
    assert "... and " in err and "more shape mismatches" in err


@pytest.mark.parametrize(("data", "message"), [
    (b"archgraph: 1\nname: not a checkpoint\n", "not a checkpoint torch can read"),
    (b"", "not a checkpoint torch can read"),
    ([1, 2, 3], "the checkpoint holds a value of type list, not a state dict"),
    ({"epoch": 3, "arch": "resnet18"},
     "the checkpoint is not a state dict: 'epoch' holds a value of type int, not a tensor"),
    ({}, "the checkpoint's state dict is empty"),
])
def test_not_a_checkpoint(tmp_path, data, message):
    assert message in failing(tmp_path, data)


def test_pickled_code_is_refused(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")  # a whole module: needs unpickling code
    out = tmp_path / "out.pt"
    result = run("weights", "import", RESNET, tmp_path / "module.pth", "-o", out)
    assert result.exit_code == 2 and "not a checkpoint torch can read" in result.stderr
    assert "weights_only=True" in result.stderr and not out.exists()


def test_a_missing_checkpoint_file(tmp_path):
    result = run("weights", "import", RESNET, tmp_path / "nope.pth", "-o", tmp_path / "out.pt")
    assert result.exit_code == 2 and "nope.pth" in result.stderr


def test_formats_come_from_the_spec(tmp_path, resnet18_state):
    torch.save(resnet18_state, tmp_path / "r.pth")
    result = run("weights", "import", RESNET, tmp_path / "r.pth", "-o", tmp_path / "o.pt", "--from", "torchvison")
    assert result.exit_code == 2
    assert result.stderr == ("<command line>: error: --from 'torchvison' is not a checkpoint format of ResNet "
                             "(hint: did you mean 'torchvision'?)\n")
    spec = tmp_path / "bare.yaml"
    spec.write_text(Path(RESNET).read_text().replace("weights: {torchvision: torchvision_resnet}\n", ""))
    result = run("weights", "import", spec, tmp_path / "r.pth", "-o", tmp_path / "o.pt")
    assert result.exit_code == 2 and "ResNet names no checkpoint formats to import weights from" in result.stderr
    spec.write_text(Path(RESNET).read_text().replace("torchvision_resnet}", "torchvison_resnet}"))
    result = run("weights", "import", spec, tmp_path / "r.pth", "-o", tmp_path / "o.pt")
    assert result.exit_code == 2
    assert f"{spec}:" in result.stderr and "unknown key mapping 'torchvison_resnet' for format 'torchvision' (hint: " \
        "did you mean 'torchvision_resnet'?)" in result.stderr
    assert not (tmp_path / "o.pt").exists()


def test_the_weights_header_is_validated_and_expanded(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(Path(RESNET).read_text().replace("weights: {torchvision: torchvision_resnet}",
                                                     "weights: {torchvision: [1, 2]}"))
    with pytest.raises(SpecError, match="weights"):
        archgraph.load(spec)
    assert plain(RESNET).to_data()["weights"] == {"torchvision": "torchvision_resnet"}


def test_unwrap():
    t = torch.zeros(1)
    assert checkpoint.unwrap({"state_dict": {"module.a.b": t, "module.c": t}, "epoch": 1}) == {"a.b": t, "c": t}
    assert checkpoint.unwrap({"model": {"model.x": t}}) == {"x": t}
    assert checkpoint.unwrap({"a": t}) == {"a": t}
    assert checkpoint.unwrap({"segmenter": {"module.a": t}, "epoch_start": 3}) == {"a": t}


def test_numpy_scalars_beside_the_weights_are_read(tmp_path, resnet18_state):
    # training scripts save metrics as numpy scalars: SFSegNets' mean_iu, light-weight-refinenet's best_val
    snapshot = {"segmenter": {f"module.{k}": v for k, v in resnet18_state.items()},
                "best_val": np.mean(np.array([0.5, 0.7])), "epoch_start": np.int64(3), "ok": np.bool_(True)}
    torch.save(snapshot, tmp_path / "new.pth")
    torch.save(snapshot, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    # as numpy 1 pickled them, under its module name (numpy 2 moved numpy.core to numpy._core)
    legacy = (tmp_path / "legacy.pth").read_bytes()
    old = legacy.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old != legacy
    (tmp_path / "old.pth").write_bytes(old)
    for name in ("new.pth", "old.pth"):
        assert checkpoint.read(tmp_path / name).keys() == resnet18_state.keys()
    result = run("weights", "import", RESNET, tmp_path / "new.pth", "-o", tmp_path / "o.pt", "--set", "depth=18")
    assert result.exit_code == 0, result.stderr
    # arrays are not scalars: still refused
    (tmp_path / "arrays").mkdir()
    err = failing(tmp_path / "arrays", {"state_dict": resnet18_state, "confusion": np.zeros((2, 2))})
    assert "not a checkpoint torch can read" in err


def test_every_spec_names_registered_mappings():
    maps = key_maps()
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        for fmt, mapping in plain(path).weights.items():
            assert mapping in maps, (path.name, fmt)
