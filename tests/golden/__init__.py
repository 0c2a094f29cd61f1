"""Golden files of the source backend: each ``<name>.yaml`` here and the ``<name>.py`` it compiles to.

``tests/test_source_backend.py`` compares them byte for byte; ``python -m tests.golden.refresh``
rewrites the ``.py`` files on purpose (see docs/compile.md).
"""
