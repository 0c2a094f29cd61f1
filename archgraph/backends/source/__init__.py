"""The source backend: a verified graph as one standalone, readable PyTorch file.

``generate(graph)`` gives the file's text (no torch needed); :mod:`.export` loads it, checks
it against the executor, and exports it (TorchScript, ONNX). See docs/compile.md.
"""

from archgraph.backends.source.codegen import generate, templates_dir

__all__ = ["generate", "templates_dir"]
