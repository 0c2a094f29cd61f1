"""The tables of ops, filled by discovery.

Every module in ``archgraph.ops`` whose name does not start with ``_`` is
imported and its ``@register``-ed classes land here; so adding an op is adding
one module. Ops from other installed packages come in through the
``archgraph.ops`` entry-point group (never from a spec).
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import TypeVar

from archgraph.ops.base import BlockOp, EdgeOp, Op

EDGE_OPS: dict[str, type[EdgeOp]] = {}
BLOCKS: dict[str, type[BlockOp]] = {}

T = TypeVar("T", bound=type[Op])
_loaded = False


def register(cls: T) -> T:
    """Add an op class to its table under the tag its ``op``/``block`` field defaults to."""
    table, field = (EDGE_OPS, "op") if issubclass(cls, EdgeOp) else (BLOCKS, "block")
    tag = cls.model_fields[field].default
    if not isinstance(tag, str):
        raise TypeError(f"{cls.__name__}.{field} needs a Literal default naming the op")
    if tag in table and table[tag] is not cls:
        raise ValueError(f"two ops named {tag!r}: {table[tag].__name__} and {cls.__name__}")
    cls.tag = tag
    table[tag] = cls
    return cls


def discover(package: str, group: str, skip: set[str]) -> None:
    """Import every public module of ``package`` (but ``skip``), then the plugins of entry-point ``group``."""
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        if not info.name.startswith("_") and info.name not in skip:
            importlib.import_module(f"{package}.{info.name}")
    for entry in entry_points(group=group):
        entry.load()


def load_plugin(name: str) -> None:
    """Import the Python module ``name``, whose ops and patterns register themselves as it loads.

    For ``archgraph --plugin MODULE``: it runs that module's code, like any import. Modules are
    named only by the person running archgraph (the command line, or an installed package's entry
    point), never by a spec: a spec can only refer to ops that are registered already.
    """
    from archgraph.errors import Loc, SpecError

    where = Loc("<command line>")
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise SpecError(f"--plugin expects a Python module name, got {name!r}", where,
                        "for example --plugin mypackage.ops (the module must be importable: on sys.path)")
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.startswith(error.name):  # the plugin itself, not one of its imports
            raise SpecError(f"plugin module {name!r} not found", where,
                            "is its package installed, or its folder on PYTHONPATH?") from None
        raise


def load_all() -> None:
    """Import the built-in op modules and any plugins, once."""
    global _loaded
    if not _loaded:
        _loaded = True
        discover("archgraph.ops", "archgraph.ops", {"base", "registry"})


def edge_ops() -> dict[str, type[EdgeOp]]:
    load_all()
    return EDGE_OPS


def blocks() -> dict[str, type[BlockOp]]:
    load_all()
    return BLOCKS
