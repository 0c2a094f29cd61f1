"""torchvision's ResNet and FPN state-dict keys -> specs/resnet.yaml's and specs/fpn.yaml's.

``torchvision.models.resnetNN()``: ``conv1``, ``bn1``, ``layer1`` .. ``layer4`` (BasicBlock and
Bottleneck keep their names: ``conv1``, ``bn1``, ..., ``downsample.0/1``), ``fc``. The specs write
the ResNet with ``use: resnet``, whose nodes are ``<name>_stem`` and ``<name>_c2`` .. ``<name>_c5``;
the mapping finds ``<name>`` in the graph.

``BackboneWithFPN`` (``torchvision.models.detection``): ``body.`` + the ResNet's keys, and
``fpn.inner_blocks.<i>`` (the 1x1 lateral of C_{i+2}) and ``fpn.layer_blocks.<i>`` (the 3x3 conv on
M_{i+2}), as plain convs (``...<i>.weight``) or, in later torchvision, ``Conv2dNormActivation``
(``...<i>.0.weight``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archgraph.weights import register

if TYPE_CHECKING:
    from archgraph.ir import ArchGraph


def trunk(graph: ArchGraph) -> str | None:
    """The name of the ``use: resnet`` pattern: the prefix of its ``_stem`` node."""
    stems = [name[: -len("_stem")] for name in graph.nodes
             if name.endswith("_stem") and f"{name[: -len('_stem')]}_c5" in graph.nodes]
    return stems[0] if len(stems) == 1 else None


def resnet_key(key: str, graph: ArchGraph) -> str | None:
    """A key of torchvision's ResNet trunk (``conv1``, ``bn1``, ``layer1`` .. ``layer4``) -> the pattern's."""
    name = trunk(graph)
    if name is None:
        return None
    m = re.match(r"^(conv1|bn1)\.(.*)", key)
    if m:
        return f"nodes.{name}_stem.0.{0 if m[1] == 'conv1' else 1}.{m[2]}"
    m = re.match(r"^layer([1-4])\.(.*)", key)
    if m:
        return f"nodes.{name}_c{int(m[1]) + 1}.{m[2]}"
    return None


@register("torchvision_resnet")
def torchvision_resnet(key: str, graph: ArchGraph) -> str | None:
    """``torchvision.models.resnetNN()``'s keys: the trunk and ``fc`` (the ``classifier`` node's linear)."""
    m = re.match(r"^fc\.(.*)", key)
    if m:
        return f"nodes.classifier.1.{m[1]}" if "classifier" in graph.nodes else None
    return resnet_key(key, graph)


@register("torchvision_fpn")
def torchvision_fpn(key: str, graph: ArchGraph) -> str | None:
    """``BackboneWithFPN``'s keys: ``body.`` (the trunk) and ``fpn.inner_blocks``/``fpn.layer_blocks``."""
    name = trunk(graph)
    m = re.match(r"^fpn\.inner_blocks\.(\d)\.(?:0\.)?(weight|bias)$", key)
    if m and name is not None:
        level = int(m[1]) + 2
        return f"edges.m{level}.{name}_c{level}.0.{m[2]}"
    m = re.match(r"^fpn\.layer_blocks\.(\d)\.(?:0\.)?(weight|bias)$", key)
    if m:
        return f"nodes.p{int(m[1]) + 2}.0.0.{m[2]}"
    m = re.match(r"^body\.(.*)", key)
    return resnet_key(m[1], graph) if m else None
