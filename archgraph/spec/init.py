"""Initialisation rules: how a kind of layer starts, as a reference's ``init_weights`` sets it.

A spec's ``init`` lists rules. Each names a kind of layer (``conv``, ``deconv``, ``linear``,
``norm``: every such layer in the network, as the official codes loop over ``self.modules()``)
and how its weight, and optionally its bias, start. Whatever no rule covers keeps PyTorch's
default. A build applies the rules in one pass: a layer that a rule covers is initialised once,
not first by PyTorch's default and then again by the rule.

A rule's ``weight_init``/``bias_init`` are the ``torch.nn.init`` call it stands for (a function
name and keywords), the one definition both backends follow: the executor calls it, the
generated source writes it out.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import Field, model_validator

from archgraph.lang.strict import Strict
from archgraph.lang.values import Bool, Choice, Float

# the kinds of layer, each the torch.nn class a rule covers (and its subclasses, as isinstance)
LAYERS = {"conv": "Conv2d", "deconv": "ConvTranspose2d", "linear": "Linear", "norm": "BatchNorm2d"}
SCHEMES = ("kaiming_normal", "kaiming_uniform", "normal", "constant")
_KAIMING = ("mode", "nonlinearity")


class InitRule(Strict):
    """How every layer of one kind starts."""

    layers: Choice(*LAYERS) = Field(  # type: ignore[valid-type]
        description="the kind of layer: conv (Conv2d), deconv (ConvTranspose2d), linear, norm (BatchNorm2d)")
    weight: Choice(*SCHEMES) = Field(  # type: ignore[valid-type]
        description="torch.nn.init's kaiming_normal_, kaiming_uniform_, normal_ (mean 0) or constant_")
    mode: Optional[Choice("fan_in", "fan_out")] = Field(  # type: ignore[valid-type]
        None, description="kaiming: the fan that keeps the variance (default fan_in, as PyTorch)")
    nonlinearity: Optional[Choice("relu", "leaky_relu", "linear")] = Field(  # type: ignore[valid-type]
        None, description="kaiming: the gain's activation (default leaky_relu with slope 0, as PyTorch)")
    std: Optional[Float] = Field(None, description="normal: the standard deviation")
    value: Optional[Float] = Field(None, description="constant: the value")
    bias: Optional[Float] = Field(None, description="a constant for the bias; omitted: PyTorch's default")
    when: Optional[Bool] = Field(None, description="apply this rule only if the expression is true")
    doc: str = ""

    @model_validator(mode="after")
    def _fields_fit_the_scheme(self) -> "InitRule":
        wrong = [f for f in _KAIMING if getattr(self, f) is not None and not self.weight.startswith("kaiming")]
        if self.std is not None and self.weight != "normal":
            wrong.append("std")
        if self.value is not None and self.weight != "constant":
            wrong.append("value")
        if wrong:
            raise ValueError(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to "
                             f"weight: {self.weight}")
        if self.weight == "normal" and (self.std is None or not self.std > 0):
            raise ValueError("weight: normal needs a positive std")
        if self.weight == "constant" and self.value is None:
            raise ValueError("weight: constant needs a value")
        if self.layers == "norm" and self.weight != "constant":
            raise ValueError("a norm layer's weight is a scale: give weight: constant and a value (1 in "
                             "PyTorch's default)")
        return self

    def weight_init(self) -> tuple[str, dict[str, Any]]:
        """The ``torch.nn.init`` function and its keywords for the weight."""
        if self.weight == "normal":
            return "normal_", {"std": self.std}
        if self.weight == "constant":
            return "constant_", {"val": self.value}
        keywords = {f: getattr(self, f) for f in _KAIMING if getattr(self, f) is not None}
        return self.weight + "_", keywords

    def bias_init(self) -> Optional[tuple[str, dict[str, Any]]]:
        """The ``torch.nn.init`` call for the bias, or None for PyTorch's default."""
        return None if self.bias is None else ("constant_", {"val": self.bias})

    def data(self) -> dict[str, Any]:
        """The rule as spec data, without ``when`` (for the plain spec)."""
        rest = self.model_dump(exclude_none=True, exclude_defaults=True, exclude={"layers", "weight", "when"})
        return {"layers": self.layers, "weight": self.weight, **rest}
