"""A spec's init rules (:mod:`archgraph.spec.init`) applied to a built module, in one pass.

The reference codes initialise twice: each layer's constructor draws PyTorch's default
random start, then ``init_weights`` overwrites it. The executor builds a network that has
rules inside :func:`skipping_default_draws`, where those draws leave the tensors as
allocated, and then calls :func:`initialise`: a layer a rule covers gets the rule's values,
every other layer runs its own ``reset_parameters``, which is how its constructor started
it. So every layer starts as the reference's would, drawn once. A layer whose starting
values are not PyTorch's default must set them in ``reset_parameters``
(``_layers.ZeroConv2d``), not after construction, or this would lose them.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from archgraph.spec.init import LAYERS, InitRule

# what PyTorch's layers call for their default random start (Conv*, Linear: kaiming_uniform_
# for the weight, uniform_ for the bias); inside nn.init's own functions the mode is off
_DEFAULT_DRAWS = frozenset({nn.init.kaiming_uniform_, nn.init.uniform_, torch.Tensor.uniform_})


class skipping_default_draws(TorchFunctionMode):
    """Within it, layers are constructed without drawing their default random start: their
    tensors keep whatever memory they were given, for :func:`initialise` to fill."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _DEFAULT_DRAWS:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def initialise(module: nn.Module, rules: Iterable[InitRule]) -> None:
    """Set every parameter and buffer of ``module`` (built in :func:`skipping_default_draws`: some hold
    garbage)."""
    kinds = [(getattr(nn, LAYERS[rule.layers]), rule) for rule in rules]
    with torch.no_grad():
        for layer in module.modules():
            if not (layer._parameters or layer._buffers):  # a container
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


def _default_bias(layer: nn.Module) -> None:
    """The bias PyTorch's ``reset_parameters`` gives: zero for a norm layer, else U(-1/sqrt(fan_in), +)."""
    if isinstance(layer, nn.modules.batchnorm._NormBase):
        nn.init.zeros_(layer.bias)
        return
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    nn.init.uniform_(layer.bias, -bound, bound)
