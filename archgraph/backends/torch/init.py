"""A spec's init rules (:mod:`archgraph.spec.init`) applied to a built module, in one pass.

The executor builds a network with rules on the meta device, materialises it with
``to_empty`` and calls :func:`initialise`: a layer a rule covers gets the rule's values
once, where the reference codes first run PyTorch's default initialisation in each layer's
constructor and then overwrite it in ``init_weights``. Every other layer runs its own
``reset_parameters``, which is how it was initialised when constructed (a layer with
its own starting values, such as ``_layers.ZeroConv2d``, keeps them that way).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from archgraph.spec.init import LAYERS, InitRule

def initialise(module: nn.Module, rules: Iterable[InitRule]) -> None:
    """Set every parameter and buffer of ``module`` (freshly materialised: its values are garbage)."""
    kinds = [(getattr(nn, LAYERS[rule.layers]), rule) for rule in rules]
    with torch.no_grad():
        for layer in module.modules():
            if not _holds_tensors(layer):
                continue
            rule = next((r for t, r in kinds if isinstance(layer, t)), None)
            if rule is None:
                reset = getattr(layer, "reset_parameters", None)
                if reset is None:
                    raise TypeError(f"cannot initialise {type(layer).__name__}: it has no reset_parameters")
                reset()
                continue
            name, keywords = rule.weight_init()
            getattr(nn.init, name)(layer.weight, **keywords)
            if layer.bias is not None:
                bias = rule.bias_init()
                if bias is None:
                    _default_bias(layer)
                else:
                    getattr(nn.init, bias[0])(layer.bias, **bias[1])
            if isinstance(layer, nn.modules.batchnorm._NormBase):
                layer.reset_running_stats()


def _holds_tensors(layer: nn.Module) -> bool:
    return any(True for _ in layer.parameters(recurse=False)) or any(True for _ in layer.buffers(recurse=False))


def _default_bias(layer: nn.Module) -> None:
    """The bias PyTorch's ``reset_parameters`` gives: zero for a norm layer, else U(-1/sqrt(fan_in), +)."""
    if isinstance(layer, nn.modules.batchnorm._NormBase):
        nn.init.zeros_(layer.bias)
        return
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    nn.init.uniform_(layer.bias, -bound, bound)
