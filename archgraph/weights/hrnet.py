"""The official HRNet's state-dict keys (classification, pose, segmentation) -> specs/hrnet.yaml's.

The official code (HRNet/HRNet-Image-Classification ``cls_hrnet.py``, timm's copy of it,
leoxiaobin/deep-high-resolution-net.pytorch ``pose_hrnet.py``, HRNet/HRNet-Semantic-Segmentation
``seg_hrnet.py``) names its weights ``conv1``/``bn1``/``conv2``/``bn2`` (the stem), ``layer1``,
``transition<K>.<I>``, ``stage<K>.<M>.branches.<I>...``, ``stage<K>.<M>.fuse_layers.<I>.<J>...``
and a head: ``incre_modules``, ``downsamp_modules``, ``final_layer`` and ``classifier`` (``fc``
in some copies) for classification, ``final_layer`` for pose, ``last_layer`` for segmentation.

The mapping reads the graph for what depends on the spec's parameters: which head is there, and
where each stage's transition to a new branch reads from (the last fuse node of the previous
stage, whose name holds that stage's module count).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archgraph.weights import register

if TYPE_CHECKING:
    from archgraph.ir import ArchGraph

_RULES = [
    (r"^conv1\.(.*)", r"nodes.stem.0.0.\1"),
    (r"^bn1\.(.*)", r"nodes.stem.0.1.\1"),
    (r"^conv2\.(.*)", r"nodes.stem.1.0.\1"),
    (r"^bn2\.(.*)", r"nodes.stem.1.1.\1"),
    (r"^layer1\.(.*)", r"nodes.layer1.\1"),
    (r"^stage(\d)\.(\d+)\.branches\.(\d+)\.(.*)", r"nodes.s\1_m\2_b\3.\4"),
    (r"^stage(\d)\.(\d+)\.fuse_layers\.(\d+)\.(\d+)\.(.*)", r"edges.s\1_m\2_f\3.s\1_m\2_b\4.\5"),
    (r"^incre_modules\.(\d+)\.(.*)", r"nodes.classifier_incre\1.\2"),
    (r"^(?:classifier|fc)\.(.*)", r"nodes.classifier.2.\1"),
    (r"^last_layer\.0\.(.*)", r"nodes.segmentation.0.0.\1"),
    (r"^last_layer\.1\.(.*)", r"nodes.segmentation.0.1.\1"),
    (r"^last_layer\.3\.(.*)", r"nodes.segmentation.1.0.\1"),
]


def _weighted_source(graph: ArchGraph, node: str) -> str | None:
    """The source of the one in-edge of ``node`` that has weights (a transition, a downsampling)."""
    sources = [e.src for e in graph.in_edges(node) if e.op.tag != "identity"]
    return sources[0] if len(sources) == 1 else None


@register("hrnet_official")
def hrnet_official(key: str, graph: ArchGraph) -> str | None:
    """One official HRNet key -> specs/hrnet.yaml's, or None."""
    m = re.match(r"^transition(\d)\.(\d+)\.(.*)", key)
    if m:  # transitionK makes the inputs of stage K+1: s<K+1>_t<I>, from layer1 or the last fuse node
        node = f"s{int(m[1]) + 1}_t{m[2]}"
        src = _weighted_source(graph, node) if node in graph.nodes else None
        return None if src is None else f"edges.{node}.{src}.{m[3]}"
    m = re.match(r"^downsamp_modules\.(\d+)\.(.*)", key)
    if m:  # y_{i+1} = incre_{i+1}(x_{i+1}) + downsamp_i(y_i)
        node = f"classifier_y{int(m[1]) + 1}"
        src = _weighted_source(graph, node) if node in graph.nodes else None
        return None if src is None else f"edges.{node}.{src}.0.{m[2]}"
    m = re.match(r"^final_layer\.(.*)", key)
    if m:  # classification: 1x1 conv + BN to 2048; pose: the 1x1 conv to the heatmaps
        if "heatmaps" in graph.nodes:
            return f"nodes.heatmaps.0.0.{m[1]}"
        return f"nodes.classifier.0.{m[1]}"
    for pattern, replacement in _RULES:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    return None
