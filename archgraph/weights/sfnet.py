"""SFNet's official state-dict keys (lxtGH/SFSegNets, the ResNet trunks) -> specs/sfnet.yaml's.

``AlignNetResNet`` (``network/sfnet_resnet.py``) keeps the deep-stem trunk of
``network/resnet_d.py`` as ``layer0`` = Sequential(``conv1``, ``bn1``, ``relu``, ``maxpool``), whose
``conv1`` is itself a Sequential of three 3x3 convs with BN and ReLU between them: the convs are
``layer0.0.0``, ``.0.3`` and ``.0.6``, their BNs ``layer0.0.1``, ``.0.4`` and ``layer0.1``. Then
``layer1`` .. ``layer4`` (torchvision's block names) and the ``head`` (``UperNetAlignHead``):
``head.ppm`` (PSPModule: ``stages.<b>.1``/``.2``, ``bottleneck.0``/``.1``), ``head.fpn_in.<i>``
(the lateral of C_{i+2}: conv with bias ``.0``, BN ``.1``), ``head.fpn_out_align.<i>`` (the FAM
into level i+2: ``down_h``, ``down_l``, ``flow_make``), ``head.fpn_out.<i>.0`` (3x3 conv ``.0``,
BN ``.1``), ``head.conv_last`` (3x3 conv and BN at ``.0.0``/``.0.1``, the classifier with
bias at ``.1``) and, in a checkpoint trained with ``fpn_dsn=True`` (``DeepR18_SF_deeply_dsn``, the
README's "+dsn"), ``head.dsn.<i>`` (the deep-supervision head on f_{i+2}: 3x3 conv with bias ``.0``,
BN ``.1``, ReLU, Dropout2d, the classifier ``.4``), the spec's nodes ``dsn<i+2>`` with
``deep_supervision=true``, whose two conv blocks leave the Dropout2d out (the identity in eval mode,
without weights): ``head.dsn.<i>.4`` is ``nodes.dsn<i+2>.1.0``. Training saves ``{"state_dict":
net.state_dict(), "optimizer": ..., "epoch": ..., "mean_iu": ..., "command": ...}`` from a
DataParallel or apex DDP module (``utils/misc.py``, ``evaluate_eval``), so every key starts with
``module.``, which :func:`archgraph.weights.checkpoint.unwrap` drops.

The mapping reads the graph for the trunk's name and for the source of each FAM edge (the next
coarser level, or the PPM above level 4). Without ``deep_supervision`` the graph has no ``dsn``
nodes, and the import names a "+dsn" checkpoint's ``head.dsn`` keys as keys the module lacks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archgraph.weights import register
from archgraph.weights.torchvision import trunk

if TYPE_CHECKING:
    from archgraph.ir import ArchGraph

# layer0.0 = resnet_d's conv1 Sequential (conv, BN, ReLU, conv, BN, ReLU, conv); layer0.1 = bn1
_STEM = {"0.0": "0.0", "0.1": "0.1", "0.3": "1.0", "0.4": "1.1", "0.6": "2.0", "1": "2.1"}

_HEAD = [
    (r"^head\.ppm\.(.*)", r"nodes.ppm.0.\1"),
    (r"^head\.fpn_in\.(\d)\.([01])\.(.*)", lambda m: f"nodes.lat{int(m[1]) + 2}.0.{m[2]}.{m[3]}"),
    (r"^head\.fpn_out\.(\d)\.0\.([01])\.(.*)", lambda m: f"nodes.p{int(m[1]) + 2}.0.{m[2]}.{m[3]}"),
    (r"^head\.conv_last\.0\.([01])\.(.*)", r"nodes.fused.0.\1.\2"),
    (r"^head\.conv_last\.1\.(.*)", r"nodes.fused.1.0.\1"),
    (r"^head\.dsn\.(\d)\.([01])\.(.*)", lambda m: f"nodes.dsn{int(m[1]) + 2}.0.{m[2]}.{m[3]}"),
    (r"^head\.dsn\.(\d)\.4\.(.*)", lambda m: f"nodes.dsn{int(m[1]) + 2}.1.0.{m[2]}"),
]


@register("sfnet_official")
def sfnet_official(key: str, graph: ArchGraph) -> str | None:
    """One key of the official SFNet (``AlignNetResNet``, head v1) -> specs/sfnet.yaml's, or None."""
    name = trunk(graph)
    m = re.match(r"^layer0\.(0\.\d|1)\.(.*)", key)
    if m:
        return None if name is None or m[1] not in _STEM else f"nodes.{name}_stem.{_STEM[m[1]]}.{m[2]}"
    m = re.match(r"^layer([1-4])\.(.*)", key)
    if m:
        return None if name is None else f"nodes.{name}_c{int(m[1]) + 1}.{m[2]}"
    m = re.match(r"^head\.fpn_out_align\.(\d)\.(.*)", key)
    if m:  # the FAM into f_{i+2}: its flow_warp in-edge, from f_{i+3} or the PPM
        node = f"f{int(m[1]) + 2}"
        sources = [e.src for e in graph.in_edges(node) if e.op.tag == "flow_warp"] if node in graph.nodes else []
        return f"edges.{node}.{sources[0]}.{m[2]}" if len(sources) == 1 else None
    for pattern, replacement in _HEAD:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    return None
