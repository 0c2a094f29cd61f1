"""The official AlignSeg's state-dict keys (speedinghzl/AlignSeg ``networks/alignseg.py``) -> specs/alignseg.yaml's.

The official ``ResNet`` names its weights ``conv1``/``bn1`` .. ``conv3``/``bn3`` (the deep stem),
``layer1`` .. ``layer4`` (torchvision's Bottleneck names), ``RRB1a``, ``RRB2a`` .. ``RRB5a``,
``RRB2b`` .. ``RRB5b``, ``CAB2`` .. ``CAB5``, ``CAM``, and the heads ``head`` and ``dsn``
(``0`` conv, ``1`` ABN, ``2`` Dropout2d, ``3`` conv). In the spec they are nodes ``resnet_stem``,
``resnet_c2`` .. ``resnet_c5``, ``d1``, ``a2`` .. ``a5``, ``d2`` .. ``d5`` (each one ``rrb``
block), the edges ``d<k> <- a<k>`` (``flow_warp``), the node ``cam`` and the heads ``logits`` and
``dsn``, whose convs are two blocks (the Dropout2d is left out): ``head.3`` is
``nodes.logits.1.0``.

Every BatchNorm of the official network is ``inplace_abn``'s ``InPlaceABNSync`` (the trunk's with
activation "identity"), which scales by |weight| + eps (``src/inplace_abn_cpu.cpp``,
``forward_cpu``; eps = 1e-5, its default) where ``nn.BatchNorm2d`` scales by the weight. The
import stores |weight| + eps, so that archgraph's network computes what the official one does,
whatever the signs the training left.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archgraph.weights import register

if TYPE_CHECKING:
    import torch

    from archgraph.ir import ArchGraph

ABN_EPS = 1e-5  # inplace_abn's default eps, which every InPlaceABNSync of the official network keeps
_HEADS = {"head": "logits", "dsn": "dsn"}  # the official heads -> the spec's nodes

_RULES = [
    (r"^conv([123])\.(.*)", lambda m: f"nodes.resnet_stem.{int(m[1]) - 1}.0.{m[2]}"),
    (r"^bn([123])\.(.*)", lambda m: f"nodes.resnet_stem.{int(m[1]) - 1}.1.{m[2]}"),
    (r"^layer([1-4])\.(.*)", lambda m: f"nodes.resnet_c{int(m[1]) + 1}.{m[2]}"),
    (r"^RRB1a\.(.*)", lambda m: f"nodes.d1.0.{m[1]}"),
    (r"^RRB([2-5])([ab])\.(.*)", lambda m: f"nodes.{'a' if m[2] == 'a' else 'd'}{m[1]}.0.{m[3]}"),
    (r"^CAB([2-5])\.(.*)", lambda m: f"edges.d{m[1]}.a{m[1]}.{m[2]}"),
    (r"^CAM\.(.*)", lambda m: f"nodes.cam.0.{m[1]}"),
    (r"^(head|dsn)\.([01])\.(.*)", lambda m: f"nodes.{_HEADS[m[1]]}.0.{m[2]}.{m[3]}"),  # conv, ABN
    (r"^(head|dsn)\.3\.(.*)", lambda m: f"nodes.{_HEADS[m[1]]}.1.0.{m[2]}"),  # the 1x1 conv to the classes
]


def _abn_scale(key: str, tensor: torch.Tensor) -> torch.Tensor:
    """An InPlaceABNSync's weight (every 1-d ``weight`` of the official network: its convs' are 4-d) as
    the scale BatchNorm needs, |weight| + eps; everything else as it is."""
    if key.endswith(".weight") and tensor.dim() == 1:
        return tensor.abs() + ABN_EPS
    return tensor


@register("alignseg_official", values=_abn_scale)
def alignseg_official(key: str, graph: ArchGraph) -> str | None:
    """One official AlignSeg key -> specs/alignseg.yaml's, or None."""
    for pattern, replacement in _RULES:
        m = re.match(pattern, key)
        if m:
            return replacement(m)
    return None
