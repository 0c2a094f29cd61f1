"""DrSleep's Light-Weight RefineNet and RefineNet state-dict keys -> specs/refinenet.yaml's.

Both repositories build torchvision's ResNet under torchvision's names (``conv1``, ``bn1``,
``layer1`` .. ``layer4``) and name the decoder after the released MatConvNet model; unit g<k>
(k = 1 .. 4, coarsest first) is the spec's RefineNet-(5-k), ``r<5-k>``:

* ``p_ims1d2_outl<j>_dimred``: the dimension reduction of C_{6-j}, the spec's ``d<6-j>``;
* ``mflow_conv_g<k>_pool.0``: the unit's chained residual pooling (``<i>_outvar_dimred``);
* ``adapt_stage<k>_b2_joint_varout_dimred``: the fusion conv on the unit's own-resolution path,
  ``mflow_conv_g<k>_b3_joint_varout_dimred``: the one on the path from unit g<k> into g<k+1>,
  before the upsampling;
* ``clf_conv``: the classifier.

Light-Weight RefineNet (DrSleep/light-weight-refinenet ``models/resnet.py``, ``rf_lw50/101/152``)
has nothing else. RefineNet (DrSleep/refinenet-pytorch ``models/resnet.py``, ``rf101``) adds the
residual conv units, ``RCUBlock``s whose convs are ``<i>_conv`` (with bias) and
``<i>_conv_relu_varout_dimred``, the spec's ``rcu`` block's ``conv1`` and ``conv2``:
``adapt_stage<k>_b.0`` (2 RCUs on the unit's own input: in the unit's body for g1, which has one
input, and in the path node ``r<5-k>_rcu0`` for the others) and ``mflow_conv_g<k>_b.0`` (3 RCUs:
the first is the unit's output RCU, the other two, in the spec, the next unit's RCUs on the path
from this one, ``r<4-k>_rcu1``, or the two before the classifier after g4).

The mapping reads the graph for what the variant changes: where the CRP and the RCUs sit in a
node's body, and which node feeds each fusion edge. ``lw_refinenet_official`` has no rule for
the RCU keys, which a Light-Weight RefineNet checkpoint cannot hold. The pretrained weights are
plain state dicts (``model.load_state_dict(maybe_download(...))``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archgraph.weights import register
from archgraph.weights.torchvision import resnet_key

if TYPE_CHECKING:
    from archgraph.ir import ArchGraph

_RCU_CONV = {"_conv": "conv1", "_conv_relu_varout_dimred": "conv2"}


def _source(graph: ArchGraph, node: str, op: str) -> str | None:
    """The source of ``node``'s one in-edge with op ``op`` (``conv``: the own path; ``upsample``: the coarser)."""
    sources = [e.src for e in graph.in_edges(node) if e.op.tag == op] if node in graph.nodes else []
    return sources[0] if len(sources) == 1 else None


def _at(graph: ArchGraph, node: str | None, tag: str, nth: int = 0) -> str | None:
    """``nodes.<node>.<i>``: the ``nth`` block tagged ``tag`` in ``node``'s body (negative: from the end)."""
    if node is None or node not in graph.nodes:
        return None
    where = [i for i, block in enumerate(graph.nodes[node].body) if block.tag == tag]
    return f"nodes.{node}.{where[nth]}" if -len(where) <= nth < len(where) else None


def _then(prefix: str | None, rest: str) -> str | None:
    return None if prefix is None else f"{prefix}.{rest}"


def _edge(graph: ArchGraph, unit: str, op: str, rest: str) -> str | None:
    """``edges.<unit>.<source>.0.<rest>``: the conv of ``unit``'s fusion edge with op ``op``."""
    source = _source(graph, unit, op)
    return None if source is None else f"edges.{unit}.{source}.0.{rest}"


def _rcu(key: str, graph: ArchGraph) -> str | None:
    """refinenet-pytorch's RCU keys (``adapt_stage<k>_b``, ``mflow_conv_g<k>_b``), or None."""
    m = re.match(r"^(adapt_stage|mflow_conv_g)(\d)_b\.0\.(\d)(_conv|_conv_relu_varout_dimred)\.(.*)", key)
    if not m:
        return None
    k, i, rest = int(m[2]), int(m[3]), f"{_RCU_CONV[m[4]]}.{m[5]}"
    unit = f"r{5 - k}"
    if m[1] == "adapt_stage":  # the unit's input RCUs: its own body (one input) or its own path's node
        return _then(_at(graph, unit if k == 1 else _source(graph, unit, "conv"), "rcu", i - 1), rest)
    if i == 1:  # the unit's output RCU, after its CRP
        return _then(_at(graph, unit, "rcu", -1), rest)
    owner = "logits" if k == 4 else _source(graph, f"r{4 - k}", "upsample")
    return _then(_at(graph, owner, "rcu", i - 2), rest)


def _drsleep(key: str, graph: ArchGraph, rcus: bool) -> str | None:
    m = re.match(r"^p_ims1d2_outl(\d)_dimred\.(.*)", key)
    if m:
        return f"nodes.d{6 - int(m[1])}.0.0.{m[2]}"
    m = re.match(r"^mflow_conv_g(\d)_pool\.0\.(.*)", key)
    if m:
        return _then(_at(graph, f"r{5 - int(m[1])}", "crp"), m[2])
    m = re.match(r"^adapt_stage(\d)_b2_joint_varout_dimred\.(.*)", key)
    if m:
        return _edge(graph, f"r{5 - int(m[1])}", "conv", m[2])
    m = re.match(r"^mflow_conv_g(\d)_b3_joint_varout_dimred\.(.*)", key)
    if m:
        return _edge(graph, f"r{4 - int(m[1])}", "upsample", m[2])
    m = re.match(r"^clf_conv\.(.*)", key)
    if m:
        return _then(_at(graph, "logits", "conv"), f"0.{m[1]}")
    return (_rcu(key, graph) if rcus else None) or resnet_key(key, graph)


@register("lw_refinenet_official")
def lw_refinenet_official(key: str, graph: ArchGraph) -> str | None:
    """DrSleep/light-weight-refinenet's ``ResNetLW`` keys -> specs/refinenet.yaml's (variant light), or None."""
    return _drsleep(key, graph, rcus=False)


@register("refinenet_official")
def refinenet_official(key: str, graph: ArchGraph) -> str | None:
    """DrSleep/refinenet-pytorch's ``RefineNet`` keys -> specs/refinenet.yaml's (variant original), or None."""
    return _drsleep(key, graph, rcus=True)
