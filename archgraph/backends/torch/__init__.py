"""The PyTorch backend."""

from archgraph.backends.torch.executor import GraphModule

__all__ = ["GraphModule"]
