"""The benchmark suite's plumbing, with nothing timed: no test asserts a speed (docs/benchmarks.md).

Without a CUDA device ``python -m benchmarks.run gpu`` says so, measures nothing and succeeds; the
timers are interchangeable in ``interleaved``; the GPU section's output check refuses a wrong output
and accepts float rounding. The section's code as a whole runs on the CPU with ``python -m
benchmarks.run gpu --quick``, which torch.compile makes too slow for this suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from benchmarks import gpu
from benchmarks.timing import interleaved, wall

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a CUDA device the section runs for many minutes")
def test_gpu_section_without_cuda_measures_nothing(tmp_path):
    raw = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks.run", "gpu", "--json", str(raw)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert "\nno CUDA device: the GPU section was not run.\n" in run.stdout
    assert json.loads(raw.read_text())["gpu"] == {"measured": False, "reason": "no CUDA device"}


def test_interleaved_times_with_the_timer_it_is_given():
    timed = []

    def timer(call):
        timed.append(call())
        return 0.25

    times = interleaved({"a": lambda: "a", "b": lambda: "b"}, rounds=3, warmup=1, timer=timer)
    assert times == {"a": [0.25] * 3, "b": [0.25] * 3}
    assert sorted(timed) == ["a"] * 3 + ["b"] * 3  # the warm-up round is not timed
    assert len(interleaved({"a": lambda: None}, rounds=2, timer=wall)["a"]) == 2
    assert gpu.modes("cpu") == ("eager", "torch.compile")


def test_gpu_check_refuses_a_wrong_output_and_accepts_rounding():
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    reference[1].running_mean.uniform_(-1, 1)
    reference[1].running_var.uniform_(0.5, 2)
    folded = fuse_conv_bn_eval(reference[0], reference[1])  # other float rounding, same function
    wrong = nn.Conv2d(3, 4, 3).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        checked = gpu.check({"folded, eager": lambda: folded(x)}, reference, x)
        assert 0 < checked["diffs"]["folded, eager"] <= checked["limit"] == 1e-4
        with pytest.raises(AssertionError, match="wrong, eager differs from the eager reference"):
            gpu.check({"wrong, eager": lambda: wrong(x)}, reference, x)
