"""archgraph's benchmark suite: ``python -m benchmarks.run`` (from the repository root).

Measures, in one process, the executor (``archgraph.build``), the generated source and the
inference-optimised module against hand-written references (the official HRNet port and
torchvision's ResNet-FPN, in ``tests/reference``) with the same weights; the executor's own
Python overhead; the tools' speed; and peak activation memory. Results and the conditions they
were taken under are printed as Markdown (docs/benchmarks.md explains them). Nothing here is a
test: there are no timing assertions anywhere in the test suite.
"""
