"""archgraph: multi-resolution vision networks as validated graphs.

Write the architecture once as a YAML/JSON graph of resolution nodes and fusion
edges; validate it, expand it, and build it into a PyTorch module::

    import archgraph
    graph = archgraph.load("specs/hrnet.yaml", width=48)   # validated IR, no torch
    model = archgraph.build("specs/hrnet.yaml", width=18)  # torch.nn.Module

Importing this package does not import torch; ``build`` does.
"""

import gc as _gc

# The garbage collector paused while the package imports: pydantic's model classes make many
# objects, and the full collections they trigger were a fifth of `archgraph validate`'s time
# (docs/benchmarks.md). Nothing is leaked: collection resumes, as it was, once the imports are done.
_collecting = _gc.isenabled()
_gc.disable()
try:
    from archgraph.errors import SpecError, SpecErrors
    from archgraph.limits import Limits
    from archgraph.api import build, load, optimize
finally:
    if _collecting:
        _gc.enable()

__version__ = "0.1.0"
__all__ = ["Limits", "SpecError", "SpecErrors", "build", "load", "optimize", "__version__"]
