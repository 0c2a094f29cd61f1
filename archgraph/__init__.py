"""archgraph: multi-resolution vision networks as validated graphs.

Write the architecture once as a YAML/JSON graph of resolution nodes and fusion
edges; validate it, expand it, and build it into a PyTorch module::

    import archgraph
    graph = archgraph.load("specs/hrnet.yaml", width=48)   # validated IR, no torch
    model = archgraph.build("specs/hrnet.yaml", width=18)  # torch.nn.Module

Importing this package does not import torch; ``build`` does.
"""

from archgraph.errors import SpecError, SpecErrors
from archgraph.api import build, load

__version__ = "0.1.0"
__all__ = ["SpecError", "SpecErrors", "build", "load", "__version__"]
